r"""Class-conditional MaskGIT transformer on the Fashion-MNIST tokens.

  python -m maskgit_edit.train --config configs/maskgit_fashion_mnist.py \
      --config.tokenizer_workdir=runs/fashion_mnist/tokenizer \
      --workdir runs/fashion_mnist/maskgit

The shapes transformer (maskgit_shapes.py, same arguments) with class
dropout: one training example in ten sees the null class, so class guidance
(the sample grid's and `scripts/sample_quality.py`'s) costs two forward
passes a step.
"""

import os

from maskgit_edit import config_files


def get_config(arg: str = ""):
  base = os.path.join(os.path.dirname(__file__), "maskgit_shapes.py")
  c = config_files.load(base + (f":{arg}" if arg else ""))
  c.tokenizer_workdir = c.tokenizer_workdir.replace("shapes", "fashion_mnist")
  c.model.class_dropout = 0.1
  c.sample.class_guidance = 1.5
  if arg == "reference":
    c.total_steps = 6000
  return c
