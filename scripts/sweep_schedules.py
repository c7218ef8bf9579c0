r"""Inpainting quality over mask schedule x steps T x sweet spot k/T.

  python scripts/sweep_schedules.py --tokenizer_workdir runs/shapes/tokenizer \
      --transformer_workdir runs/shapes/maskgit --out output/sweep \
      [--num_images 100] [--schedules cosine,linear,square,pow3,log,exp] \
      [--steps 4,8,12,16] [--fractions 0.25,0.5,0.75,1] [--seed 0]

The problem, the metrics and the outputs: `maskgit_edit.study.schedule_sweep`.
"""

import dataclasses
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)  # Runs from a checkout without installing.

# pylint: disable=g-import-not-at-top,wrong-import-position
from maskgit_edit import cli
from maskgit_edit.study import schedule_sweep

# pylint: enable=g-import-not-at-top,wrong-import-position
DEFAULTS = schedule_sweep.Sweep()


def _csv_list(kind):
  return lambda text: [kind(v) for v in text.split(",") if v]


def parse_args(argv):
  parser = cli.ArgumentParser(
      description=__doc__.splitlines()[0],
      epilog="The settings: maskgit_edit.study.schedule_sweep.Sweep.",
  )
  parser.add_argument("--tokenizer_workdir", required=True)
  parser.add_argument("--transformer_workdir", required=True)
  parser.add_argument("--out", default="output/sweep_schedules")
  joined = lambda values: ",".join(
      f"{v:g}" if isinstance(v, float) else str(v) for v in values
  )
  for name, kind in (("schedules", str), ("steps", int), ("fractions", float)):
    parser.add_argument(
        f"--{name}",
        type=_csv_list(kind),
        default=list(getattr(DEFAULTS, name)),
        help=f"Comma-separated (default {joined(getattr(DEFAULTS, name))}).",
    )
  for name in (
      "num_images",
      "num_reference",
      "box_fraction",
      "dilation",
      "batch_size",
      "seed",
      "swd_min_resolution",
      "swd_descriptors",
  ):
    default = getattr(DEFAULTS, name)
    kind = int if default is None else type(default)
    parser.add_argument(f"--{name}", type=kind, default=default)
  cli.add_decode_flags(parser, ("choice_temperature", "start_iter"))
  return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
  """Runs the sweep, writes the CSVs and plots; returns the sweep rows."""
  args = parse_args(argv)
  fields = {f.name for f in dataclasses.fields(schedule_sweep.Sweep)}
  return schedule_sweep.run_sweep(
      args.tokenizer_workdir,
      args.transformer_workdir,
      args.out,
      # Unset decode flags (None) keep the Sweep's defaults.
      schedule_sweep.Sweep(
          **{
              k: v
              for k, v in vars(args).items()
              if k in fields and v is not None
          }
      ),
  )


if __name__ == "__main__":
  cli.run(main)
