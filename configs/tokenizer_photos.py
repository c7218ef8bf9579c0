r"""Tokenizer on `photos` (crops of the scikit-image / scikit-learn photographs).

Same network as tokenizer_shapes.py with the data source switched; see that file. Used by
`python scripts/main.py --data photos`.
"""

import os

from maskgit_edit import config_defaults


def get_config(arg: str = ""):
  base = os.path.join(os.path.dirname(__file__), "tokenizer_shapes.py")
  c = config_defaults.load(base + (f":{arg}" if arg else ""))
  c.data.name = "photos"
  if not arg:
    # The settings of the photos results in the README (8x8 tokens; not
    # re-tuned since shapes moved to 16x16 tokens).
    c.total_steps, c.batch_size = 1500, 32
    c.optim.lr = 2e-3
    c.tokenizer.update(filters=128, patch_size=4, codebook_size=512,
                       usage_decay=0.99)
  return c
