r"""Paired comparison of two `run_edits.py` runs on the same strokes.

  python scripts/compare_runs.py --baseline runs/shapes/edits/results.json \
      --runs runs/shapes/edits_window1/results.json \
             runs/shapes/edits_window2/results.json --out compare.md

For every (variant, knob) in both, the mean per-stroke difference run -
baseline with its 95% bootstrap interval over source images (bold when it
excludes 0), for faithfulness (L2 to the stroke in the mask), realism (the
judge's k-NN realism), the judge's class kept and preservation (PSNR
outside the edited region before compositing). E.g. windowed against full decoding (`--window`).
"""

import json
import os

import numpy as np

from maskgit_edit import batching
from maskgit_edit import cli
from maskgit_edit import files
from maskgit_edit.decoding import windows
from maskgit_edit.study import pairing

COLUMNS = (
    ("l2_stroke", "L2 in mask"),
    ("realism", "judge realism"),
    ("class_kept", "class kept"),
    ("psnr_preserve", "PSNR outside"),
)


def load(path: str) -> dict:
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"No results file {path!r} (run_edits.py writes results.json)."
    )
  with open(path) as f:
    return json.load(f)


def decoded_share(results: dict, path: str) -> float | None:
  """Mean share of the token grid a windowed run decoded per stroke (each
  batch decodes the window size that covers all of its strokes); None for
  a full decode."""
  ring = results["edit_settings"].get("window")
  if ring is None:
    return None
  npz = os.path.join(os.path.dirname(path), results["results"][0]["outputs"])
  with np.load(npz) as f:
    edited_Nxhxw = f["edited"]
  shares = []
  for indices in batching.padded_batches(
      len(edited_Nxhxw), results["batch_size"]
  ):
    height, width = windows.window_size(edited_Nxhxw[indices], ring)
    shares += [height * width / edited_Nxhxw[0].size] * len(set(indices))
  return float(np.mean(shares))


def table(name: str, rows, share: float | None, settings: dict) -> list[str]:
  """The run's paired rows under a note of its edit `settings` (the
  results' `edit_settings`)."""
  decode = settings["decode"]
  start, total = decode.get("start_iter", 0), decode["num_steps"]
  lines = [
      f"### {name}",
      "",
      f"Decode: {total - start} step{'s' * (total - start != 1)} (from step"
      f" {start} of {total}).",
      "",
  ]
  full_pass_every = decode.get("full_pass_every", 1)
  if share is not None:
    lines += [
        f"Decoded share of the token grid: {share:.0%} per stroke on "
        "average.",
        "",
    ]
  if full_pass_every > 1:
    lines += [
        f"Key/value reuse: a full pass every {full_pass_every} steps.",
        "",
    ]
  matmul_dtype = settings.get("matmul_dtype", "float32")
  if matmul_dtype != "float32":
    lines += [f"Dense products: {matmul_dtype} operands.", ""]
  lines += [
      "| variant | knob | " + " | ".join(t for _, t in COLUMNS) + " |",
      "|---|---|" + "---|" * len(COLUMNS),
  ]
  for row in rows:
    knob = (
        "-"
        if row["variant"] == "none"
        else f"{row['knob_name']}={row['knob']:g}"
    )
    lines.append(
        f"| {row['variant']} | {knob} | "
        + " | ".join(
            pairing.format_paired(row["metrics"].get(m)) for m, _ in COLUMNS
        )
        + " |"
    )
  return lines + [""]


def main(argv=None) -> str:
  p = cli.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument(
      "--baseline", required=True, help="results.json to pair against."
  )
  p.add_argument(
      "--runs",
      nargs="+",
      required=True,
      help="results.json of the runs to compare.",
  )
  p.add_argument("--out", required=True, help="Markdown file to write.")
  args = p.parse_args(argv)
  baseline = load(args.baseline)
  lines = [
      f"Paired differences to `{args.baseline}` (run - baseline), 95% "
      "bootstrap intervals over source images.",
      "",
  ]
  for path in args.runs:
    results = load(path)
    rows = pairing.paired_between_runs(results, baseline)
    if not rows:
      raise ValueError(
          f"{path} shares no (variant, knob) setting with the baseline."
      )
    lines += table(
        path,
        rows,
        decoded_share(results, path),
        results["edit_settings"],
    )
  command = cli.command_line("scripts/compare_runs.py", argv)
  files.write_doc(
      args.out, "Paired comparison of edit runs", [command], "\n".join(lines)
  )
  print("\n".join(lines), flush=True)
  return args.out


if __name__ == "__main__":
  cli.run(main)
