r"""Judge: a CNN classifier of real Fashion-MNIST garments, whose features
measure sample and edit quality.

  python -m maskgit_edit.train --config configs/judge_fashion_mnist.py \
      --workdir runs/fashion_mnist/judge

Trained on the train split only; one judge serves both budgets. `:runlocal`
is a seconds-long smoke run.
"""

import os

from maskgit_edit import config_defaults


def get_config(arg: str = ""):
  base = os.path.join(os.path.dirname(__file__), "judge_shapes.py")
  c = config_defaults.load(base + (f":{arg}" if arg else ""))
  c.data.name = "fashion_mnist"
  c.judge.map_classes = 0  # Fashion-MNIST has no per-cell labels.
  c.judge.flip = True
  if arg == "runlocal":
    c.data.image_size = 16
  return c
