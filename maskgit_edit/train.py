r"""Training entry point for every trainer.

  python -m maskgit_edit.train --config configs/tokenizer_shapes.py \
      --workdir runs/shapes/tokenizer [--config.total_steps=100 ...]

The config's `trainer` field picks the trainer; the run resumes from the
latest checkpoint in `workdir` if there is one.
"""

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from maskgit_edit import cli
from maskgit_edit import trainers
from maskgit_edit.trainers import loop

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder.")
flags.mark_flags_as_required(["config", "workdir"])


def train_and_evaluate(config, workdir: str, stop_after: int | None = None):
  """Builds the trainer named by `config.trainer` and runs the loop."""
  loop.maybe_initialize_distributed(config)
  return loop.train(
      config,
      workdir,
      trainers.make_task(config, workdir),
      stop_after=stop_after,
  )


def main(argv):
  del argv
  # Progress lines are printed; keep library INFO chatter (orbax) out of them.
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  cli.run(train_and_evaluate, _CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_absl_flags)
