r"""Class-conditional generation and editing with the released ImageNet 512 MaskGIT.

Same as configs/imagenet256.py (see its docstring for every command) with 512
in place of 256: the tokenizer is the same architecture, the transformer reads
32x32 tokens, and the runs live in runs/imagenet512/{tokenizer,maskgit}:

  python scripts/import_released.py --image_size 512 --out runs/imagenet512 \
      --transformer checkpoints/released/maskgit_imagenet512_checkpoint \
      --tokenizer checkpoints/released/tokenizer_imagenet512_checkpoint
  python -m maskgit_edit.edit --config configs/imagenet512.py:edit \
      --source s.png --stroke k.png --mask m.png --label 207 \
      --variant self_fixed --knob 2 --out e.png
"""

import os

from maskgit_edit import config_files


def get_config(arg: str = "edit"):
  sibling = os.path.join(
      os.path.dirname(os.path.abspath(__file__)), "imagenet256.py"
  )
  return config_files.load_module(sibling).released_config(512, arg)
