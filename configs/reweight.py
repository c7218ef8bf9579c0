r"""`reweight`: learn the self-guidance kernel K (transformer frozen).

  python -m maskgit_edit.train --config configs/reweight.py \
      --config.transformer_workdir=runs/fashion_mnist/maskgit \
      --workdir runs/fashion_mnist/reweight

It reads only the transformer run (and through it the tokenizer run and its
data), so one config serves every data set.

`:reference` trains longer (the reference budget); `:runlocal` is a
seconds-long smoke run.
"""

from maskgit_edit import config_defaults

ARGS = ("", "reference", "runlocal")


def get_config(arg: str = ""):
  config_defaults.check_arg(arg, ARGS)
  c = config_defaults.base("reweight", total_steps=300, batch_size=16)
  c.transformer_workdir = "runs/fashion_mnist/maskgit"
  c.mvtm = dict(schedule="cosine", label_smoothing=0.0)
  # "strokes": (stroke codes, true codes) pairs; "samples": own samples.
  c.reweight = dict(guide_source="strokes", num_stroke_pairs=1000)
  c.optim.update(lr=3e-2, warmup_steps=20, weight_decay=0.0)
  c.checkpoint_every = 100
  if arg == "reference":
    c.total_steps = 600
  if arg == "runlocal":
    c.total_steps, c.batch_size, c.log_every = 4, 8, 2
    c.checkpoint_every, c.num_eval = 2, 16
    c.reweight.num_stroke_pairs = 16
  return c
