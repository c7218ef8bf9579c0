r"""This project's decode against the PyTorch peer, each in its own process.

  pip install -e '.[peer]'
  python scripts/benchmark_peer.py [--sizes reference,8x512,imagenet256] \
      [--batches 1,8,32] [--reps 3] [--rounds 2] [--budget_s 60] \
      [--out runs/benchmark/peer.json] [--markdown docs/speed.md]
  python scripts/benchmark_peer.py --gemms ...   # the forward's GEMMs alone
  python scripts/benchmark_peer.py --attention ...   # its attention alone

The protocol: `maskgit_edit.benchmarking.peer`. Writes the records as JSON
after every cell (a rerun with the same --out measures only the cells it
lacks, so cells of several commands share one table) and the table as
markdown, naming the commands and the commit.
"""

import json
import os
import sys

# Runnable as `python scripts/benchmark_peer.py` without install.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from maskgit_edit import cli
from maskgit_edit import files
from maskgit_edit.benchmarking import peer


def _names(text: str) -> list[str]:
  return [v for v in text.split(",") if v]


def parse_args(argv):
  p = cli.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument(
      "--sizes",
      type=_names,
      default=list(peer.SIZES),
      help=", ".join(peer.SIZES),
  )
  p.add_argument(
      "--batches",
      type=lambda t: [int(v) for v in _names(t)],
      default=[1, 8, 32],
  )
  p.add_argument(
      "--implementations",
      type=_names,
      default=None,
      help=f"Default {','.join(peer.IMPLEMENTATIONS)}; with a part"
      f" {','.join(peer.PARTS['gemms'])}.",
  )
  part = p.add_mutually_exclusive_group()
  part.set_defaults(part="model")
  part.add_argument(
      "--gemms",
      dest="part",
      action="store_const",
      const="gemms",
      help="Time only a chain of the dense layers' matrix products, the"
      " same on both sides (how much of a forward's gap is the GEMM"
      " library?).",
  )
  part.add_argument(
      "--attention",
      dest="part",
      action="store_const",
      const="attention",
      help="Time only every layer's attention, on both sides.",
  )
  p.add_argument("--reps", type=int, default=3, help="Calls per process.")
  p.add_argument("--rounds", type=int, default=2, help="Processes per cell.")
  p.add_argument(
      "--budget_s",
      type=float,
      default=60.0,
      help="Seconds of timed calls per process and kind (see peer).",
  )
  p.add_argument(
      "--out",
      default=None,
      help="Default runs/benchmark/peer.json, with --gemms peer_gemms.json"
      " (and so on).",
  )
  p.add_argument(
      "--markdown",
      default=None,
      help="e.g. docs/speed.md, with --gemms docs/speed_gemms.md.",
  )
  args = p.parse_args(argv)
  suffix = "" if args.part == "model" else f"_{args.part}"
  args.out = args.out or f"runs/benchmark/peer{suffix}.json"
  return args


_TITLES = {
    "model": "Speed against the PyTorch peer",
    "gemms": "Matrix products against the PyTorch peer",
    "attention": "Attention against the PyTorch peer",
}


def _write(results: dict, args, command: str) -> None:
  if command not in results.setdefault("commands", []):
    results["commands"].append(command)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with files.atomic_path(args.out) as tmp, open(tmp, "w") as f:
    json.dump(results, f, indent=1)
  if args.markdown:
    files.write_doc(
        args.markdown,
        _TITLES[args.part],
        results["commands"],
        peer.markdown(results),
    )


def main(argv=None) -> dict:
  """Measures the cells not yet in --out, writing after each; returns all."""
  args = parse_args(argv)
  results = (
      files.read_json(args.out, "Peer results")
      if os.path.exists(args.out)
      else None
  )
  command = cli.command_line("scripts/benchmark_peer.py", argv)
  results = peer.compare(
      args.sizes,
      args.batches,
      implementations=args.implementations,
      reps=args.reps,
      rounds=args.rounds,
      budget_s=args.budget_s,
      part=args.part,
      results=results,
      on_cell=lambda r: _write(r, args, command),
      log=lambda line: print(line, flush=True),
  )
  _write(results, args, command)
  print(peer.markdown(results), flush=True)
  return results


if __name__ == "__main__":
  cli.run(main)
