r"""`iterate`: fine-tune the transformer for iterative re-embedding.

  python -m maskgit_edit.train --config configs/iterate.py \
      --config.transformer_workdir=runs/fashion_mnist/maskgit \
      --workdir runs/fashion_mnist/iterate

It reads only the transformer run (and through it the tokenizer run and its
data), so one config serves every data set.

`:reference` trains longer (the reference budget); `:runlocal` is a
seconds-long smoke run.
"""

from maskgit_edit import config_defaults

ARGS = ("", "reference", "runlocal")


def get_config(arg: str = ""):
  config_defaults.check_arg(arg, ARGS)
  c = config_defaults.base("iterate", total_steps=100, batch_size=8)
  c.transformer_workdir = "runs/fashion_mnist/maskgit"
  c.mvtm = dict(schedule="cosine", label_smoothing=0.1)
  c.iterate = dict(max_scale=2.0)
  c.optim.update(lr=2e-4, warmup_steps=20)
  c.checkpoint_every = 100
  if arg == "reference":
    c.total_steps, c.batch_size = 400, 16
    c.checkpoint_every = 200
  if arg == "runlocal":
    c.total_steps, c.batch_size, c.log_every = 4, 8, 2
    c.checkpoint_every, c.num_eval = 2, 16
  return c
