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

import importlib.util
import os


def _imagenet256():
  # Config files are loaded by path, not as a package: load the sibling the same way.
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet256.py")
  spec = importlib.util.spec_from_file_location("_imagenet256", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(arg: str = "edit"):
  return _imagenet256().released_config(512, arg)
