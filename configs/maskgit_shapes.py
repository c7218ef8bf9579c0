r"""MaskGIT transformer (MVTM) on the token cache of the shapes tokenizer.

  python -m maskgit_edit.train --config configs/maskgit_shapes.py \
      --config.tokenizer_workdir=runs/shapes/tokenizer \
      --workdir runs/shapes/maskgit

`:runlocal` is a seconds-long smoke run (still needs a tokenizer run).
"""

from maskgit_edit import config_defaults


def get_config(arg: str = ""):
  # 8 sequences of 257 tokens (16x16 + class) per step.
  c = config_defaults.base("maskgit", total_steps=1100, batch_size=8)
  c.tokenizer_workdir = "runs/shapes/tokenizer"
  # No dropout: less than one epoch is seen, and without it the test masked
  # accuracy after 1100 steps was 10.1% instead of 5.9% (4 heads; random
  # init, lr 1e-3). 2 heads of 64: at 257 tokens the attention softmax
  # dominates XLA:CPU time; the forward runs 1.4x faster than with 4 heads of
  # 32, for 7.1% instead of 10.1% (1 head: 1.9x, 4.4%; same init and lr).
  # The time keeps the main job within 20 min.
  c.model = config_defaults.transformer(num_layers=3, num_heads=2,
                                        dropout_rate=0.0)
  # Informed initial embeddings (see trainers/maskgit.py): test accuracy after
  # 1100 steps at lr 1e-3 was 28.3% with both, 24.3% with codebook words only,
  # 14.4% with sincos2d positions only, 7.1% with neither; lr 2e-3 then gave
  # 30.1% (4e-3: 0.5% train accuracy at step 250, stopped there).
  c.mvtm = dict(schedule="cosine", label_smoothing=0.1,
                init_words="codebook", init_positions="sincos2d")
  c.sample = config_defaults.decode()
  c.optim.update(lr=2e-3, warmup_steps=100, ema_decay=0.0)
  if arg == "runlocal":
    c.total_steps, c.batch_size, c.log_every = 4, 8, 2
    c.checkpoint_every, c.num_eval = 2, 16
    c.model.update(hidden_size=32, num_layers=1, num_heads=2,
                   intermediate_size=64)
    c.sample.num_steps = 4
  return c
