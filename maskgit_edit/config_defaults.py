"""Config sections shared by the files in configs/ (big_vision style)."""

import dataclasses

import ml_collections
from ml_collections import config_dict

from maskgit_edit import data


def check_arg(arg: str, args: tuple[str, ...]) -> None:
  """Raises ValueError unless `arg` is one of a config file's arguments."""
  if arg not in args:
    raise ValueError(
        f"Unknown config argument {arg!r}; expected one of "
        f"{', '.join(map(repr, args))}."
    )


def base(
    trainer: str, *, total_steps: int, batch_size: int, seed: int = 0
) -> ml_collections.ConfigDict:
  """Fields every trainer reads: loop, optimiser, logging."""
  c = ml_collections.ConfigDict()
  c.trainer = trainer
  c.seed = seed
  c.data = data.default_data_config()
  c.total_steps = total_steps
  c.batch_size = batch_size
  c.log_every = 50
  c.eval_every = 0  # 0: evaluate only at the end.
  c.checkpoint_every = 500
  c.keep_checkpoints = 2
  c.num_eval = 512
  c.eval_batch_size = 256
  # One JAX process per host: jax.distributed.initialize() with these (unset:
  # JAX_COORDINATOR_ADDRESS, or auto-detection on TPU pods, SLURM, Open MPI).
  c.distributed = False
  c.coordinator_address = config_dict.placeholder(str)  # host:port of 0.
  c.num_processes = config_dict.placeholder(int)
  c.process_id = config_dict.placeholder(int)
  # A process that stops answering for this long stops the others with an
  # error (JAX's coordination service), instead of leaving them waiting.
  c.heartbeat_timeout_s = 100
  c.shard_params = False  # FSDP-style state sharding over the data axis,
  c.shard_min_size = 2**18  # for leaves with at least this many elements.
  c.optim = ml_collections.ConfigDict(
      dict(
          lr=1e-3,
          warmup_steps=100,
          end_lr_factor=0.05,
          weight_decay=1e-4,
          b1=0.9,
          b2=0.99,
          grad_clip=1.0,
          ema_decay=0.0,
      )
  )
  c.wandb = ml_collections.ConfigDict(
      dict(mode="disabled", project="maskgit-edit")
  )
  return c


def tokenizer(**overrides) -> ml_collections.ConfigDict:
  """VQGAN tokenizer section (sizes, losses, dead-code restart, GAN)."""
  t = ml_collections.ConfigDict(
      dict(
          filters=16,
          num_res_blocks=1,
          channel_multipliers=(1, 2, 2),
          patch_size=1,
          encoder_kind="conv",  # or "patch": codes that see their patch only
          embedding_dim=16,
          codebook_size=512,
          norm_groups=8,
          commitment_cost=0.25,
          entropy_loss_ratio=0.0,
          usage_decay=0.99,
          dead_code_threshold=0.03,
          dead_code_every=100,
          adversarial=ml_collections.ConfigDict(
              dict(
                  weight=0.0,
                  start_step=0,
                  r1_gamma=1.0,
                  lr=1e-4,
                  filters=32,
                  num_layers=2,
              )
          ),
      )
  )
  t.update(overrides)
  return t


def transformer(**overrides) -> ml_collections.ConfigDict:
  m = ml_collections.ConfigDict(
      dict(
          hidden_size=128,
          num_layers=4,
          num_heads=4,
          intermediate_size=512,
          dropout_rate=0.1,
          class_conditional=True,
          # Share of training examples whose class is replaced by a null
          # class (which then joins the vocabulary): > 0 makes class
          # guidance cost 2 forward passes a step instead of one per class.
          class_dropout=0.0,
      )
  )
  m.update(overrides)
  return m


def decode(**overrides) -> ml_collections.ConfigDict:
  """A `decode` / `sample` section: `sampling.DecodeSettings` and its
  defaults, as config fields."""
  from maskgit_edit.decoding import sampling  # pylint: disable=g-import-not-at-top

  d = ml_collections.ConfigDict(
      {
          **dataclasses.asdict(sampling.DecodeSettings()),
          "stop_iter": config_dict.placeholder(int),
      }
  )
  d.update(overrides)
  return d
