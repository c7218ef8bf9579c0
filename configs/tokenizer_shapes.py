r"""VQ tokenizer on the procedural `shapes` scenes.

  python -m maskgit_edit.train --config configs/tokenizer_shapes.py \
      --workdir runs/shapes/tokenizer

32 px images -> 8x8 tokens. Arguments: none (the Quickstart budget, about
3 minutes on 2 cores), `:reference` (the reference budget: longer, on more
scenes) or `:runlocal` (a seconds-long smoke run).
"""

from maskgit_edit import config_defaults

ARGS = ("", "reference", "runlocal")


def get_config(arg: str = ""):
  config_defaults.check_arg(arg, ARGS)
  # Many small steps: in the same time, batch 8 reached 0.5 dB more than
  # batch 32.
  c = config_defaults.base("tokenizer", total_steps=4000, batch_size=8)
  # 4x4 pixel patches folded into channels, then 128-wide convolutions at
  # the 8x8 token resolution: 65-token sequences (with the class) keep the
  # transformer cheap enough to learn whole shapes on a CPU. 16x16 tokens
  # reached 30.4 dB but their 257-token transformer only learnt blobs
  # (docs/shapes_recipe.md).
  c.tokenizer = config_defaults.tokenizer(
      filters=128,
      channel_multipliers=(1,),
      patch_size=4,
      codebook_size=512,
      usage_decay=0.99,
  )
  c.optim.lr = 4e-3
  c.log_every, c.eval_every, c.checkpoint_every = 500, 0, 1000
  if arg == "reference":
    # More steps, and more scenes so that the hour-long transformer run does
    # not repeat them.
    c.total_steps, c.eval_every = 8000, 4000
    c.data.num_train = 60000
  if arg == "runlocal":
    c.total_steps, c.batch_size, c.log_every = 4, 8, 2
    c.checkpoint_every, c.eval_every, c.num_eval = 2, 0, 16
    c.eval_batch_size = 16
    c.data.num_train, c.data.num_test, c.data.image_size = 64, 16, 16
    c.tokenizer.update(
        filters=8,
        codebook_size=16,
        embedding_dim=8,
        norm_groups=4,
        channel_multipliers=(1, 2),
        patch_size=1,
    )
  return c
