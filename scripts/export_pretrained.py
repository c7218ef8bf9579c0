r"""Copies finished runs into a committed folder of reference models.

  python scripts/export_pretrained.py --run runs/fashion_mnist_reference \
      --out pretrained/fashion_mnist

What it writes and checks: `maskgit_edit.export`.
"""

import os

from maskgit_edit import cli
from maskgit_edit import export


def main(argv=None):
  parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
      "--run",
      default="runs/fashion_mnist_reference",
      help="Folder holding the five finished runs.",
  )
  parser.add_argument("--out", default="pretrained/fashion_mnist")
  args = parser.parse_args(argv)
  check = export.export(args.run, args.out)
  size = sum(
      os.path.getsize(os.path.join(d, f))
      for d, _, files in os.walk(args.out)
      for f in files
  )
  print(f"Wrote {args.out} ({size / 2**20:.1f} MiB); check: {check}")


if __name__ == "__main__":
  cli.run(main)
