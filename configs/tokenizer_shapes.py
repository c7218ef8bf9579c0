r"""VQ tokenizer on the procedural `shapes` scenes (32 px -> 8x8 tokens).

  python -m maskgit_edit.train --config configs/tokenizer_shapes.py \
      --workdir runs/shapes/tokenizer

`--config configs/tokenizer_shapes.py:runlocal` is a seconds-long smoke run.
"""

from maskgit_edit import config_defaults


def get_config(arg: str = ""):
  c = config_defaults.base("tokenizer", total_steps=1500, batch_size=32)
  c.tokenizer = config_defaults.tokenizer()
  c.optim.lr = 2e-3
  c.eval_every = 500
  if arg == "runlocal":
    c.total_steps, c.batch_size, c.log_every = 4, 8, 2
    c.checkpoint_every, c.eval_every, c.num_eval = 2, 0, 16
    c.eval_batch_size = 16
    c.data.num_train, c.data.num_test, c.data.image_size = 64, 16, 16
    c.tokenizer.update(filters=8, codebook_size=16, embedding_dim=8,
                       norm_groups=4, channel_multipliers=(1, 2))
  return c
