r"""VQ tokenizer on Fashion-MNIST, with codes that describe their patch.

  python -m maskgit_edit.train --config configs/tokenizer_fashion_mnist.py \
      --workdir runs/fashion_mnist/tokenizer

28 px garments padded to 32 px -> 8x8 tokens of 4x4 pixels. The encoder is
an MLP on each patch alone (`encoder_kind="patch"`), so a patch's code does
not depend on its surroundings; the convolutional decoder keeps its context.
Arguments: none (the Quickstart budget), `:reference` (longer, wider batches)
or `:runlocal` (a seconds-long smoke run).
"""

from maskgit_edit import config_defaults

ARGS = ("", "reference", "runlocal")


def get_config(arg: str = ""):
  config_defaults.check_arg(arg, ARGS)
  c = config_defaults.base("tokenizer", total_steps=4000, batch_size=8)
  c.data.name = "fashion_mnist"
  c.tokenizer = config_defaults.tokenizer(
      filters=128,
      channel_multipliers=(1,),
      patch_size=4,
      encoder_kind="patch",
      codebook_size=512,
      usage_decay=0.99,
  )
  c.optim.lr = 4e-3
  c.log_every, c.eval_every, c.checkpoint_every = 500, 0, 1000
  if arg == "reference":
    c.total_steps, c.batch_size, c.eval_every = 12000, 16, 4000
  if arg == "runlocal":
    c.total_steps, c.batch_size, c.log_every = 4, 8, 2
    c.checkpoint_every, c.eval_every, c.num_eval = 2, 0, 16
    c.eval_batch_size = 16
    c.data.image_size = 16
    c.tokenizer.update(
        filters=8, codebook_size=16, embedding_dim=8, norm_groups=4
    )
  return c
