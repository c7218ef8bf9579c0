r"""MaskGIT transformer on `photos` (or a user's images): unconditional.

The shapes transformer (maskgit_shapes.py, same arguments) without the class
token: photo labels name different photographs in the train and test splits
(whole photographs are held out), and a user's folder may have no labels. Used by
`python scripts/main.py --data photos` and `--data folder:PATH`:

  python -m maskgit_edit.train --config configs/maskgit_photos.py \
      --config.tokenizer_workdir=runs/photos/tokenizer \
      --workdir runs/photos/maskgit
"""

import os

from maskgit_edit import config_files


def get_config(arg: str = ""):
  base = os.path.join(os.path.dirname(__file__), "maskgit_shapes.py")
  c = config_files.load(base + (f":{arg}" if arg else ""))
  c.model.class_conditional = False
  c.tokenizer_workdir = c.tokenizer_workdir.replace("shapes", "photos")
  return c
