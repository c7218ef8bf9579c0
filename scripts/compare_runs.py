r"""Paired comparison of two `run_edits.py` runs on the same strokes.

  python scripts/compare_runs.py --baseline runs/shapes/edits/results.json \
      --runs runs/shapes/edits_window1/results.json \
             runs/shapes/edits_window2/results.json --out compare.md

For every (variant, knob) in both, the mean per-stroke difference run -
baseline with its 95% bootstrap interval over source images (bold when it
excludes 0), for faithfulness (L2 to the stroke in the mask), realism (judge
map entropy, token NLL) and preservation (PSNR outside the edited region
before compositing). E.g. windowed against full decoding (`--window`).
"""

import argparse
import json
import os

from maskgit_edit import cli
from maskgit_edit import evaluation

COLUMNS = (("l2_stroke", "L2 in mask"), ("judge_entropy", "judge entropy"),
           ("token_nll", "token NLL"), ("psnr_preserve", "PSNR outside"))


def load(path: str) -> dict:
  if not os.path.isfile(path):
    raise FileNotFoundError(f"No results file {path!r} (run_edits.py writes "
                            "results.json).")
  with open(path) as f:
    return json.load(f)


def table(name: str, rows) -> list[str]:
  lines = [f"### {name}", "",
           "| variant | knob | " + " | ".join(t for _, t in COLUMNS) + " |",
           "|---|---|" + "---|" * len(COLUMNS)]
  for row in rows:
    knob = ("-" if row["variant"] == "none"
            else f"{row['knob_name']}={row['knob']:g}")
    lines.append(f"| {row['variant']} | {knob} | " + " | ".join(
        evaluation.format_paired(row["metrics"].get(m)) for m, _ in COLUMNS)
        + " |")
  return lines + [""]


def main(argv=None) -> str:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--baseline", required=True, help="results.json to pair "
                 "against.")
  p.add_argument("--runs", nargs="+", required=True, help="results.json of "
                 "the runs to compare.")
  p.add_argument("--out", required=True, help="Markdown file to write.")
  args = p.parse_args(argv)
  baseline = load(args.baseline)
  lines = [f"Paired differences to `{args.baseline}` (run - baseline), 95% "
           "bootstrap intervals over source images.", ""]
  for path in args.runs:
    rows = evaluation.paired_between_runs(load(path), baseline)
    if not rows:
      raise ValueError(f"{path} shares no (variant, knob) setting with the "
                       "baseline.")
    lines += table(path, rows)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    f.write("\n".join(lines))
  print("\n".join(lines), flush=True)
  return args.out


if __name__ == "__main__":
  cli.run(main)
