r"""VQ tokenizer on the procedural `shapes` scenes (32 px -> 16x16 tokens).

  python -m maskgit_edit.train --config configs/tokenizer_shapes.py \
      --workdir runs/shapes/tokenizer

`--config configs/tokenizer_shapes.py:runlocal` is a seconds-long smoke run.
"""

from maskgit_edit import config_defaults


def get_config(arg: str = ""):
  # Many small steps: in the same time, batch 8 reached 0.5 dB more than
  # batch 32 (8x8 tokens, 4096 codes).
  c = config_defaults.base("tokenizer", total_steps=3200, batch_size=8)
  # 2x2 pixel patches folded into channels, then 64-wide convolutions at the
  # 16x16 token resolution. 8x8 tokens (4x4 patches, 128 wide) stalled at
  # 26.1 dB even with 2048 codes: 31 dB on flat pixels but 20.4 dB on the
  # 23% of pixels at an edge, whose sub-pixel position 11 bits per 4x4 patch
  # cannot hold. Here 512 codes reach 30.4 dB.
  c.tokenizer = config_defaults.tokenizer(
      filters=64, channel_multipliers=(1,), patch_size=2, codebook_size=512,
      usage_decay=0.98)
  c.optim.lr = 4e-3
  c.log_every, c.eval_every, c.checkpoint_every = 200, 800, 800
  if arg == "runlocal":
    c.total_steps, c.batch_size, c.log_every = 4, 8, 2
    c.checkpoint_every, c.eval_every, c.num_eval = 2, 0, 16
    c.eval_batch_size = 16
    c.data.num_train, c.data.num_test, c.data.image_size = 64, 16, 16
    c.tokenizer.update(filters=8, codebook_size=16, embedding_dim=8,
                       norm_groups=4, channel_multipliers=(1, 2), patch_size=1)
  return c
