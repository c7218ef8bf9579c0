r"""Writes docs/results.md from the runs of `scripts/main.py`.

  python scripts/write_results.py [--data fashion_mnist] [--out docs/results.md]

What it reads: `maskgit_edit.results_doc`. Nothing is typed in by hand:
rerun it after the runs change.
"""

import os
import sys

# Runnable as `python scripts/write_results.py` without install.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=wrong-import-position
from maskgit_edit import artefacts
from maskgit_edit import cli
from maskgit_edit import files
from maskgit_edit import results_doc


def main(argv=None):
  parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default=artefacts.DEFAULT_DATA)
  parser.add_argument(
      "--runs_dir",
      default=os.path.join(files.CHECKOUT, "runs"),
      help="Where main.py left the runs (<data>, <data>_reference, ...).",
  )
  parser.add_argument(
      "--out", default=os.path.join(files.CHECKOUT, "docs", "results.md")
  )
  parser.add_argument(
      "--compare",
      nargs="*",
      default=[],
      help="Tokenizer runs to compare side by side (each with a maskgit/ and"
      " quality/ beside it, as main.py leaves them).",
  )
  args = parser.parse_args(argv)
  text = results_doc.results(args.runs_dir, args.data, args.compare)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    f.write(text)
  print(f"Wrote {args.out}")


if __name__ == "__main__":
  cli.run(main)
