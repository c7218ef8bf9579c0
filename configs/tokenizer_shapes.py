r"""VQ tokenizer on the procedural `shapes` scenes (32 px -> 8x8 tokens).

  python -m maskgit_edit.train --config configs/tokenizer_shapes.py \
      --workdir runs/shapes/tokenizer

`--config configs/tokenizer_shapes.py:runlocal` is a seconds-long smoke run.
"""

from maskgit_edit import config_defaults


def get_config(arg: str = ""):
  # Many small steps: in about the same time, batch 8 x 4800 steps reached
  # 0.5 dB more than batch 32 x 1500 at 4096 codes (an unquantized
  # autoencoder about 4 dB more).
  c = config_defaults.base("tokenizer", total_steps=4800, batch_size=8)
  # 4x4 pixel patches folded into channels, then 128-wide convolutions at the
  # 8x8 token resolution: +2 dB PSNR over a 16-filter three-level VQGAN
  # (22.6 dB) at batch 32 x 1500 steps, in less time on XLA:CPU. 2048 codes: 4096
  # gained only 0.1 dB more and doubles the transformer's output layer.
  c.tokenizer = config_defaults.tokenizer(
      filters=128, channel_multipliers=(1,), patch_size=4, codebook_size=2048,
      usage_decay=0.98)
  c.optim.lr = 4e-3
  c.log_every, c.eval_every, c.checkpoint_every = 200, 1200, 1200
  if arg == "runlocal":
    c.total_steps, c.batch_size, c.log_every = 4, 8, 2
    c.checkpoint_every, c.eval_every, c.num_eval = 2, 0, 16
    c.eval_batch_size = 16
    c.data.num_train, c.data.num_test, c.data.image_size = 64, 16, 16
    c.tokenizer.update(filters=8, codebook_size=16, embedding_dim=8,
                       norm_groups=4, channel_multipliers=(1, 2), patch_size=1)
  return c
