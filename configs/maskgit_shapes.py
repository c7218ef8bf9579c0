r"""MaskGIT transformer (MVTM) on the token cache of the shapes tokenizer.

  python -m maskgit_edit.train --config configs/maskgit_shapes.py \
      --config.tokenizer_workdir=runs/shapes/tokenizer \
      --workdir runs/shapes/maskgit

Arguments: none (the Quickstart budget, about 6 minutes on 2 cores),
`:reference` (the reference budget: a 6-layer, 256-wide model for about an
hour on 2 cores, over `tokenizer_shapes.py:reference`) or `:runlocal` (a
seconds-long smoke run; still needs a tokenizer run).
"""

from ml_collections import config_dict

from maskgit_edit import config_defaults

ARGS = ("", "reference", "runlocal")


def get_config(arg: str = ""):
  config_defaults.check_arg(arg, ARGS)
  # 32 sequences of 65 tokens (8x8 + class) per step.
  c = config_defaults.base("maskgit", total_steps=1800, batch_size=32)
  c.tokenizer_workdir = "runs/shapes/tokenizer"
  # A transformer run whose weights start this one (same sizes), e.g. to
  # train a finished run further; unset: a fresh init.
  c.init_from = config_dict.placeholder(str)
  # No dropout: the runs see few epochs.
  c.model = config_defaults.transformer(
      num_layers=4, num_heads=4, dropout_rate=0.0
  )
  # Informed initial embeddings (see trainers/maskgit.py): with random ones
  # the 16x16-token model stayed below 1% train accuracy for 500 steps.
  c.mvtm = dict(
      schedule="cosine",
      label_smoothing=0.1,
      init_words="codebook",
      init_positions="sincos2d",
  )
  c.sample = config_defaults.decode()
  c.optim.update(lr=2e-3, warmup_steps=100, ema_decay=0.0)
  c.log_every, c.checkpoint_every = 100, 500
  if arg == "reference":
    c.tokenizer_workdir = "runs/shapes_reference/tokenizer"
    c.total_steps = 7000
    c.model = config_defaults.transformer(
        hidden_size=256,
        num_layers=6,
        num_heads=8,
        intermediate_size=1024,
        dropout_rate=0.0,
    )
    c.optim.update(lr=1e-3, warmup_steps=500, ema_decay=0.999)
    c.eval_every = 1000
  if arg == "runlocal":
    c.total_steps, c.batch_size, c.log_every = 4, 8, 2
    c.checkpoint_every, c.num_eval = 2, 16
    c.model.update(
        hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64
    )
    c.sample.num_steps = 4
  return c
