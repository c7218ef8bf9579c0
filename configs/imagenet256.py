r"""Class-conditional generation and editing with the released ImageNet 256 MaskGIT.

The released checkpoints enter the project as imported run folders, so every
tool (Editor, generation, `reweight`, `iterate`) works on them unchanged:

  python scripts/download_released.py --out_dir checkpoints/released
  python scripts/import_released.py --image_size 256 --out runs/imagenet256 \
      --transformer checkpoints/released/maskgit_imagenet256_checkpoint \
      --tokenizer checkpoints/released/tokenizer_imagenet256_checkpoint \
      [--data tfds:imagenet2012 --num_train 100000 --num_test 10000]

`--data` also writes the token caches that `reweight` / `iterate` train on
(the Editor and generation do not need them). Edit one image (PNG, RGB; the
mask's non-zero pixels are edited; `--label` is the source image's class):

  python -m maskgit_edit.edit --config configs/imagenet256.py:edit \
      --source s.png --stroke k.png --mask m.png --label 207 \
      --variant self_fixed --knob 2 --out e.png [--config.decode.num_steps=8]

(`:fast_edit`: fewer steps, a window and bfloat16 products, ~9x faster on a
CPU with AVX-512 BF16; docs/decoding.md.)

Generate (`:generate` holds the release's sampling settings):

  cfg = config_files.load("configs/imagenet256.py:generate")
  editor = edit.Editor.from_workdirs(cfg.tokenizer_workdir, cfg.transformer_workdir)
  sampler = sampling.Sampler(editor.sampler.model, editor.layout,
                             sampling.DecodeSettings.from_config(cfg.decode))
  tokens = sampler.generate(editor.params, jax.random.key(cfg.seed),
                            cfg.batch_size, labels_B=np.full(cfg.batch_size, cfg.label))
  images = editor.detokenize(tokens)  # float [B, 256, 256, 3], clip to [0, 1]

Fine-tune the guided variants from the released weights (one GPU; needs the
token caches of `--data`), then pass the runs to the Editor with
`--config.reweight_workdir=...` / `--config.iterate_workdir=...`:

  python -m maskgit_edit.train --config configs/imagenet256.py:reweight \
      --workdir runs/imagenet256/reweight
  python -m maskgit_edit.train --config configs/imagenet256.py:iterate \
      --workdir runs/imagenet256/iterate

Pixels are float RGB in [0, 1] everywhere (`pixel_range`): the released
tokenizer was trained on that range.
"""

import os

import ml_collections
from ml_collections import config_dict

from maskgit_edit import released
from maskgit_edit import config_defaults
from maskgit_edit import config_files
from maskgit_edit import data

MODES = ("edit", "fast_edit", "generate", "reweight", "iterate")
# Fine-tuning batches on one 80 GB GPU at 256 px (a quarter at 512 px).
FINE_TUNE_BATCH = {"reweight": 64, "iterate": 32}


def released_sections(image_size: int) -> ml_collections.ConfigDict:
  """Sizes of the released models as run-config sections.

  Returns:
    ConfigDict with image_size, num_classes, `tokenizer` (config_defaults
    tokenizer section) and `model` (transformer section), the fields that
    `scripts/import_released.py` writes into the imported run folders.
  """
  architecture = released.released_config(image_size)
  s = ml_collections.ConfigDict()
  s.image_size = image_size
  s.num_classes = architecture["num_classes"]
  s.tokenizer = config_defaults.tokenizer(**architecture["tokenizer"])
  sizes = {
      k: v
      for k, v in architecture["transformer"].items()
      if k not in ("vocab_size", "seq_len")
  }
  s.model = config_defaults.transformer(**sizes, class_conditional=True)
  return s


def fine_tune_config(
    image_size: int, trainer: str
) -> ml_collections.ConfigDict:
  """The `reweight` / `iterate` recipe (configs/reweight.py, iterate.py) on
  the imported released run."""
  recipe = os.path.join(
      os.path.dirname(os.path.abspath(__file__)), f"{trainer}.py"
  )
  c = config_files.load(recipe)
  c.transformer_workdir = f"runs/imagenet{image_size}/maskgit"
  # The 512 px model's sequence is 4x longer.
  per_image = 1 if image_size == 256 else 4
  c.batch_size = FINE_TUNE_BATCH[trainer] // per_image
  c.eval_batch_size = 64 // per_image
  return c


def released_config(image_size: int, mode: str) -> ml_collections.ConfigDict:
  """Generation ("generate"), editing ("edit") or fine-tuning ("reweight",
  "iterate") config of the released models at `image_size`."""
  if mode not in MODES:
    raise ValueError(f"Unknown mode {mode!r}; expected one of {MODES}.")
  if mode in FINE_TUNE_BATCH:
    return fine_tune_config(image_size, mode)
  c = released_sections(image_size)
  runs = f"runs/imagenet{image_size}"
  c.tokenizer_workdir = f"{runs}/tokenizer"
  c.transformer_workdir = f"{runs}/maskgit"
  c.reweight_workdir = config_dict.placeholder(str)  # f"{runs}/reweight"
  c.iterate_workdir = config_dict.placeholder(str)  # f"{runs}/iterate"
  c.pixel_range = (0.0, 1.0)
  c.data = data.default_data_config()
  c.data.update(
      name="tfds:imagenet2012",
      image_size=image_size,
      tfds_test_split="validation",
  )  # ImageNet's test split is unlabelled.
  c.label = 207  # ImageNet class of the samples / of the edited image.
  c.seed = 0
  # Images per device batch on one 80 GB GPU (the 512 px model's sequence is
  # 4x longer).
  c.batch_size = 32 if image_size == 256 else 8
  if mode == "generate":
    c.decode = config_defaults.decode(num_steps=16)
  else:
    c.decode = config_defaults.decode(start_iter=2)
    c.dilation = 1  # Tokens added around those the mask touches.
    c.composite = "feather"
    # Eighth of a token (16 px): hides the seam without blurring the edit.
    c.feather_sigma_px = 2.0 * image_size / 256
    c.kernel = (
        "l2"  # self_fixed affinity: "l2" (codebook distances) or "identity".
    )
  if mode == "fast_edit":
    # 6 steps over a window of 1 token ring, bfloat16 products: the decode
    # of a 15% edit at 256 px in 0.42 s on 2 cores with AVX-512 BF16,
    # against 3.9 s for `edit` (not timed at 512 px); the 6-step bfloat16
    # edit keeps every paired interval of the 10-step float32 one on
    # Fashion-MNIST (docs/decoding.md).
    c.decode = config_defaults.decode(num_steps=7, start_iter=1)
    c.window = 1
    c.matmul_dtype = "bfloat16"
  return c


def get_config(arg: str = "edit") -> ml_collections.ConfigDict:
  return released_config(256, arg)
