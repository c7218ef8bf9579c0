r"""Runs every guidance variant at every knob setting on a stroke set; scores it.

  python scripts/run_edits.py --manifest runs/shapes/strokes/manifest.json \
      --tokenizer_workdir runs/shapes/tokenizer \
      --transformer_workdir runs/shapes/maskgit \
      --reweight_workdir runs/shapes/reweight \
      --iterate_workdir runs/shapes/iterate \
      --judge_workdir runs/shapes/judge \
      --out_dir runs/shapes/eval

then `python scripts/render_comparison_table.py --results
runs/shapes/eval/results.json`. Without --reweight_workdir (--iterate_workdir)
the self_learned (iterative) variant is skipped with a message, and asking
for it with --variants is an error; with
--iterate_workdir, `none` and `sdedit` are decoded by the tuned transformer
too ("none@tuned", "sdedit@tuned"), iterative's own baselines. Without
--judge_workdir the judge metrics are left out. Knob grids
default to each variant's `study_knobs` (`decoding.guidance.REGISTRY`);
override them with e.g.
`--knobs context=0,0.5 self_fixed=0,2`, and pick variants with `--variants`.

Outputs, metrics and the results schema: see `maskgit_edit.study`.
The run is resumable: a (variant, knob) whose .npz exists is not re-run, so a
killed run loses at most the setting in progress. Use >= 100 strokes for the
reported intervals. For 16 px images pass --swd_min_resolution 8 (and fewer
--swd_descriptors).
"""

# The imports follow the sys.path set-up below.
# pylint: disable=g-import-not-at-top,wrong-import-position
import dataclasses
import os
import sys

# Runnable as `python scripts/run_edits.py` from a checkout without install.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maskgit_edit import cli
from maskgit_edit import edit as edit_lib
from maskgit_edit.decoding import guidance as guidance_lib
from maskgit_edit.study import run
from maskgit_edit.study import scoring
from maskgit_edit.trainers import loop

SCORING_WAIT_S = 24 * 3600


def parse_knobs(specs: list[str]) -> dict[str, tuple[float, ...]]:
  """["context=0,0.5", ...] -> {"context": (0.0, 0.5), ...}."""
  knobs = {}
  for spec in specs:
    variant, sep, values = spec.partition("=")
    if not sep or variant not in guidance_lib.REGISTRY:
      raise ValueError(
          f"--knobs entry {spec!r} is not VARIANT=K1,K2,... with "
          f"VARIANT in {guidance_lib.names()}."
      )
    try:
      knobs[variant] = tuple(float(v) for v in values.split(","))
    except ValueError as e:
      raise ValueError(f"--knobs entry {spec!r} has a non-numeric knob.") from e
  return knobs


def parse_args(argv):
  p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--manifest", required=True, help="Stroke-set manifest.")
  p.add_argument("--tokenizer_workdir", required=True)
  p.add_argument("--transformer_workdir", required=True)
  p.add_argument("--reweight_workdir", help="`reweight` run (self_learned).")
  p.add_argument("--iterate_workdir", help="`iterate` run (iterative).")
  p.add_argument(
      "--judge_workdir", help="Judge run of the data (judge realism metrics)."
  )
  p.add_argument("--out_dir", required=True)
  p.add_argument(
      "--variants",
      nargs="+",
      default=None,
      choices=guidance_lib.names(),
      help="Default: every variant whose runs are given.",
  )
  p.add_argument(
      "--knobs",
      nargs="*",
      default=[],
      help="Knob grid overrides: VARIANT=K1,K2,...",
  )
  p.add_argument(
      "--window",
      type=int,
      default=None,
      help="Windowed decoding: the context ring in tokens around "
      "the edited ones (default: the whole grid).",
  )
  cli.add_decode_flags(p, ("num_steps", "start_iter", "full_pass_every"))
  cli.add_matmul_dtype_flag(p)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument(
      "--distributed",
      action="store_true",
      help="One of several JAX processes sharing the edits (see "
      "the README); process 0 writes every file.",
  )
  p.add_argument(
      "--coordinator_address",
      help="With --distributed: "
      "host:port of process 0 (default: from JAX's environment).",
  )
  p.add_argument("--num_processes", type=int)
  p.add_argument("--process_id", type=int)
  p.add_argument("--batch_size", type=int, default=32)
  p.add_argument(
      "--real_split",
      default="test",
      help="Split of the data source holding the real images.",
  )
  p.add_argument(
      "--num_real",
      type=int,
      default=None,
      help="Real images for SWD (default: as many as strokes).",
  )
  p.add_argument("--swd_descriptors", type=int, default=128)
  p.add_argument("--swd_min_resolution", type=int, default=16)
  p.add_argument("--swd_projections", type=int, default=512)
  p.add_argument("--swd_folds", type=int, default=5)
  return p.parse_args(argv)


def main(argv=None) -> str | None:
  """Runs the study; returns the path of results.json (None on processes
  other than 0, which only edit)."""
  args = parse_args(argv)
  # The other processes finish with the edits and wait at the shutdown
  # barrier while process 0 scores.
  loop.maybe_initialize_distributed(
      {**vars(args), "shutdown_timeout_s": SCORING_WAIT_S}
  )
  decode = dataclasses.replace(
      edit_lib.EditSettings().decode, **cli.decode_overrides(args)
  )
  return run.run_study(
      args.manifest,
      args.out_dir,
      tokenizer_workdir=args.tokenizer_workdir,
      transformer_workdir=args.transformer_workdir,
      reweight_workdir=args.reweight_workdir,
      iterate_workdir=args.iterate_workdir,
      judge_workdir=args.judge_workdir,
      variants=args.variants,
      knobs=parse_knobs(args.knobs),
      edit_settings=edit_lib.EditSettings(
          decode=decode, window=args.window, matmul_dtype=args.matmul_dtype
      ),
      seed=args.seed,
      batch_size=args.batch_size,
      real_split=args.real_split,
      num_real=args.num_real,
      swd=scoring.SwdSettings(
          num_descriptors=args.swd_descriptors,
          min_resolution=args.swd_min_resolution,
          num_projections=args.swd_projections,
          folds=args.swd_folds,
      ),
  )


if __name__ == "__main__":
  cli.run(main)
