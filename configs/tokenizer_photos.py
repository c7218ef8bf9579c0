r"""Tokenizer on `photos` (crops of the scikit-image / scikit-learn photographs).

The shapes tokenizer (tokenizer_shapes.py, same arguments) with the data
source switched. Used by `python scripts/main.py --data photos`.
"""

import os

from maskgit_edit import config_files


def get_config(arg: str = ""):
  base = os.path.join(os.path.dirname(__file__), "tokenizer_shapes.py")
  c = config_files.load(base + (f":{arg}" if arg else ""))
  c.data.name = "photos"
  return c
