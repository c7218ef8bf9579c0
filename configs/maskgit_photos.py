r"""MaskGIT transformer on `photos` (crops of the scikit-image / scikit-learn photographs).

Same as maskgit_shapes.py with the data source switched; see that file. Used by
`python scripts/main.py --data photos`.
"""

import os

from maskgit_edit import config_defaults


def get_config(arg: str = ""):
  base = os.path.join(os.path.dirname(__file__), "maskgit_shapes.py")
  c = config_defaults.load(base + (f":{arg}" if arg else ""))
  c.data.name = "photos"
  return c
