r"""The edit page under load: concurrent clients against a page of its own.

  python scripts/load_page.py --clients 16 --requests 160 [--mixed] \
      [--run runs/fashion_mnist] [--out load.json]

What it sends and reports: `maskgit_edit.load_test`.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from maskgit_edit import cli
from maskgit_edit import load_test

# pylint: enable=g-import-not-at-top,wrong-import-position


def parse_args(argv):
  p = cli.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--clients", type=int, default=16)
  p.add_argument("--requests", type=int, default=160)
  p.add_argument("--max_seconds", type=float, default=600.0)
  p.add_argument("--mixed", action="store_true", help="Add hostile requests.")
  p.add_argument("--run", default=None, help="Run folder (default: committed).")
  p.add_argument("--out", default=None, help="Write the report as JSON here.")
  args = p.parse_args(argv)
  for name in ("clients", "requests"):
    if getattr(args, name) < 1:
      p.error(f"--{name} must be at least 1, got {getattr(args, name)}.")
  if args.max_seconds <= 0:
    p.error(f"--max_seconds must be positive, got {args.max_seconds}.")
  return args


def main(argv=None) -> dict:
  args = parse_args(argv)
  report = load_test.load_test(
      args.run,
      clients=args.clients,
      requests=args.requests,
      max_seconds=args.max_seconds,
      mixed=args.mixed,
  )
  print(json.dumps(report, indent=1), flush=True)
  if args.out:
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
      json.dump(report, f, indent=1)
  return report


if __name__ == "__main__":
  cli.run(main)
