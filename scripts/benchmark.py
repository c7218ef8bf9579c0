r"""Speed of this machine on the project's workloads, with MFU.

  python scripts/benchmark.py [--out benchmark.json] [--reps 5] \
      [--batch_sizes 1,8,32] [--prng_impls rbg,unsafe_rbg] [--quick] \
      [--configs fashion_mnist:reference]
  python scripts/benchmark.py --edit_latency 256 [--areas 0.05,0.1] \
      [--full_pass_every 2] [--num_steps 12 --start_iter 2]

The workloads: `maskgit_edit.benchmarking.workloads` (timing and MFU:
`benchmarking.timing`); --edit_latency: `benchmarking.edit_latency`, with
an edit's decode settings (`sampling.EDIT_DECODE`) unless the flags change
them. Every timing is the median of `--reps` calls after a warm-up call.
Results go to `--out` as JSON and to stdout as markdown tables. `--quick`
uses the configs' `runlocal` sizes (seconds of work; for the smoke test).
Against the PyTorch peer: `scripts/benchmark_peer.py`.
"""

import dataclasses
import json
import os
import sys

# Runs from a checkout without installing.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from maskgit_edit import cli
from maskgit_edit import files
from maskgit_edit.benchmarking import edit_latency
from maskgit_edit.benchmarking import timing
from maskgit_edit.benchmarking import workloads
from maskgit_edit.decoding import sampling

# pylint: enable=g-import-not-at-top,wrong-import-position


def parse_args(argv):
  parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
      "--out",
      default="benchmark.json",
      help="Where to write the results as JSON.",
  )
  parser.add_argument(
      "--quick",
      action="store_true",
      help="Tiny `runlocal` sizes and 2 reps (smoke test).",
  )
  parser.add_argument(
      "--configs",
      default=None,
      help="The configs timed: DATA[:ARG], configs/{tokenizer,maskgit}_DATA.py"
      "[:ARG] (default shapes; quick shapes:runlocal), e.g. "
      "fashion_mnist:reference.",
  )
  parser.add_argument(
      "--reps",
      type=int,
      default=None,
      help="Timed calls per measurement (default 11, quick 2).",
  )
  parser.add_argument(
      "--batch_sizes",
      default=None,
      help="Decode batch sizes, comma-separated (default 1,8,32; quick 1).",
  )
  parser.add_argument(
      "--prng_impls",
      default=None,
      help="PRNG implementations to time the transformer "
      "train step with, besides jax's default, comma-"
      "separated (default rbg,unsafe_rbg; quick none).",
  )
  parser.add_argument(
      "--edit_latency",
      default=None,
      choices=("256", "512", "runlocal"),
      help="Only time edits against their area at this "
      "released architecture (or the runlocal sizes): full "
      "vs windowed decoding; with --full_pass_every > 1, also with key/value "
      "reuse.",
  )
  parser.add_argument(
      "--areas",
      default=None,
      help="Edit areas for --edit_latency, comma-separated "
      "fractions of the grid (default 0.05,0.1,0.25,0.5,1).",
  )
  parser.add_argument(
      "--window_ring",
      type=int,
      default=2,
      help="Context ring of the windowed decode.",
  )
  cli.add_decode_flags(parser, ("num_steps", "start_iter", "full_pass_every"))
  cli.add_matmul_dtype_flag(parser)
  parser.add_argument(
      "--markdown", default=None, help="Also write the tables here."
  )
  parser.add_argument(
      "--matmul_size",
      type=int,
      default=None,
      help="Side of the peak matmul (default 2048, quick 256).",
  )
  args = parser.parse_args(argv)
  args.reps = args.reps or (2 if args.quick else 11)
  args.configs = args.configs or ("shapes:runlocal" if args.quick else "shapes")
  batch_sizes = args.batch_sizes or ("1" if args.quick else "1,8,32")
  args.batch_sizes = [int(b) for b in batch_sizes.split(",")]
  impls = args.prng_impls
  if impls is None:
    impls = "" if args.quick else "rbg,unsafe_rbg"
  args.prng_impls = [impl for impl in impls.split(",") if impl]
  args.matmul_size = args.matmul_size or (256 if args.quick else 2048)
  args.areas = (
      edit_latency.EDIT_AREAS
      if args.areas is None
      else tuple(float(a) for a in args.areas.split(","))
  )
  if args.reps < 1 or min(args.batch_sizes) < 1:
    parser.error(
        f"--reps ({args.reps}) and every batch size "
        f"({args.batch_sizes}) must be >= 1."
    )
  return args


def main(argv=None) -> dict:
  """Runs the benchmark, writes the JSON and prints the tables."""
  args = parse_args(argv)
  if args.edit_latency:
    size = None if args.edit_latency == "runlocal" else int(args.edit_latency)
    results = {
        "machine": workloads.machine_info(),
        "reps": args.reps,
        "edit_latency": edit_latency.edit_latency_benchmark(
            size,
            args.window_ring,
            args.reps,
            args.areas,
            dataclasses.replace(
                sampling.EDIT_DECODE, **cli.decode_overrides(args)
            ),
            args.matmul_dtype,
        ),
    }
    results["load_average_after"] = os.getloadavg()
    table = edit_latency.edit_latency_markdown(results["edit_latency"])
  else:
    results = workloads.run(
        reps=args.reps,
        configs=args.configs,
        batch_sizes=args.batch_sizes,
        prng_impls=args.prng_impls,
        matmul_size=args.matmul_size,
    )
    results["load_average_after"] = os.getloadavg()
    table = workloads.markdown(results)
  with open(args.out, "w") as f:
    json.dump(results, f, indent=2)
  print(table, flush=True)
  if args.markdown:
    title = "Edit latency" if args.edit_latency else "Throughput"
    command = cli.command_line("scripts/benchmark.py", argv)
    files.write_doc(args.markdown, title, [command], table)
  timing.log(f"wrote {args.out}")
  return results


if __name__ == "__main__":
  cli.run(main)
