"""A study's comparison page: example table, metric and paired tables, the
grid and the plot (`render`)."""

import os

from maskgit_edit import files
from maskgit_edit.study import grid as grid_lib
from maskgit_edit.study import pairing
from maskgit_edit.study import plot
from maskgit_edit.study import schema
from maskgit_edit.study import settings as settings_lib
from maskgit_edit.study import stroke_sets

_METRIC_COLUMNS = (
    ("l2", "Faithfulness L2, whole"),
    ("l2_stroke", "Faithfulness L2, in mask"),
    ("psnr_preserve", "Preservation PSNR (dB)"),
    ("realism", "Judge realism (k-NN)"),
    ("class_kept", "Judge class kept"),
    ("judge_kid", "Judge KID (x1e3)"),
    ("swd", "SWD (x1e3)"),
)
# Paired differences shown: faithfulness, realism, class, preservation.
_PAIRED_COLUMNS = (
    ("l2_stroke", "L2 in mask"),
    ("realism", "realism"),
    ("class_kept", "class kept"),
    ("psnr_preserve", "preservation PSNR"),
)


def _format(summary) -> str:
  if summary is None or summary["mean"] is None:
    return "n/a"
  if summary.get("std") is not None:
    return f"{summary['mean']:.4g} (sd {summary['std']:.2g})"
  if summary["ci"] is None:
    return f"{summary['mean']:.4g}"
  return f"{summary['mean']:.4g} ± {summary['ci']:.2g}"


def _knob_label(result) -> str:
  return (
      "-"
      if result["knob_name"] == "-"
      else f"{result['knob_name']}={result['knob']:g}"
  )


def paired_table(results) -> list[str]:
  """Markdown rows of the paired differences vs none and vs sdedit."""
  header = (
      ["Variant", "Knob"]
      + [f"vs none: {t}" for _, t in _PAIRED_COLUMNS]
      + ["sdedit match: strengths (replicates matched)"]
      + [f"vs sdedit: {t}" for _, t in _PAIRED_COLUMNS[1:]]
  )
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for r in results["results"]:
    if r["variant"] == "none":
      continue
    vs_none = r["paired_vs_none"]
    vs_sdedit = r["paired_vs_sdedit"]
    if vs_sdedit:
      match = " / ".join(f"{k:g}" for k in vs_sdedit["knobs"])
      match += f" ({vs_sdedit['in_range_share']:.0%})"
      match += "" if vs_sdedit["in_range"] else " outside its range"
      sdedit_cells = [
          pairing.format_paired(vs_sdedit["metrics"].get(m))
          for m, _ in _PAIRED_COLUMNS[1:]
      ]
    else:
      match, sdedit_cells = "-", ["-"] * (len(_PAIRED_COLUMNS) - 1)
    lines.append(
        "| "
        + " | ".join(
            [r["variant"], _knob_label(r)]
            + [
                pairing.format_paired(vs_none.get(m))
                for m, _ in _PAIRED_COLUMNS
            ]
            + [match]
            + sdedit_cells
        )
        + " |"
    )
  return lines


def metric_table(results) -> list[str]:
  """Markdown rows: the input references, then every setting run."""
  header = ["Variant", "Knob"] + [title for _, title in _METRIC_COLUMNS]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for name, reference in results["references"].items():
    lines.append(
        "| "
        + " | ".join(
            [f"{name.capitalize()} (reference)", "-"]
            + [_format(reference.get(m)) for m, _ in _METRIC_COLUMNS]
        )
        + " |"
    )
  for r in results["results"]:
    lines.append(
        "| "
        + " | ".join(
            [r["variant"], _knob_label(r)]
            + [_format(r["metrics"][m]) for m, _ in _METRIC_COLUMNS]
        )
        + " |"
    )
  return lines


def markdown(
    results,
    results_path,
    md_path,
    cell_paths,
    row_labels,
    notes,
    grid_path,
    plot_path,
) -> str:
  """The comparison page: example table, metric table, grid and plot."""
  rel = lambda p: os.path.relpath(p, os.path.dirname(os.path.abspath(md_path)))
  titles = [c.title for c in settings_lib.comparison_columns()]
  shown = "; ".join(
      f"{c.title}: {n}"
      for c, n in zip(settings_lib.comparison_columns(), notes)
      if n not in ("", "input")
  )
  lines = [
      "# Stroke-guided editing: variants compared",
      "",
      f"From `{rel(results_path)}`: {results['num_strokes']} strokes, seed "
      f"{results['seed']} (paired across variants). Shown knobs: {shown}.",
      "",
      "## Examples",
      "",
      "| " + " | ".join(titles) + " |",
      "|" + "---|" * len(titles),
  ]
  for label, paths in zip(row_labels, cell_paths):
    cells = [f"![{grid_lib.slug(t)}]({rel(p)})" for t, p in zip(titles, paths)]
    cells[0] += f"<br>{label}"
    lines.append("| " + " | ".join(cells) + " |")
  swd = results["swd"]
  lines += [
      "",
      f"All rows: ![comparison grid]({rel(grid_path)})",
      "",
      "## Metrics",
      "",
      f"Mean ± 95% CI over {results['num_strokes']} strokes (SWD: over "
      f"{swd['folds']} folds against {swd['num_real']} real images, "
      f"{swd['real_split']} split). Lower L2 = more faithful to the stroke; "
      "higher PSNR = better preserved outside the edited region (decoded "
      f"output, capped at {results['psnr_cap']:g} dB); higher judge "
      "realism (k-NN score among the real images) and lower KID and SWD = "
      "more realistic; class kept: the share of edits the judge gives the "
      "class it gives the source.",
      "",
  ]
  lines += metric_table(results)
  lines += [
      "",
      "## Paired differences",
      "",
      "Per stroke, setting minus baseline, mean and 95% bootstrap interval "
      "over source images (bold: the interval excludes 0). vs none: the "
      "unguided decode with the same random draws. vs sdedit: token SDEdit "
      "where its curve (in strength order) first reaches the setting's mean "
      "in-mask L2, interpolated between the two strengths shown, matched "
      "anew in every bootstrap replicate (the share of replicates the curve "
      "reaches in brackets), i.e. realism at matched faithfulness. "
      "`iterative` decodes with its fine-tuned transformer and compares "
      "with that transformer's none and sdedit (`@tuned`); `none@tuned` vs "
      "none is the fine-tune's own effect. The intervals are per setting, "
      "not corrected for the number of settings compared.",
      "",
  ]
  lines += paired_table(results)
  if results["skipped"]:
    lines += [
        "",
        "Skipped: "
        + "; ".join(f"{v} ({why})" for v, why in results["skipped"].items())
        + ".",
    ]
  lines += [
      "",
      "## Faithfulness vs realism",
      "",
      f"![faithfulness vs realism]({rel(plot_path)})",
      "",
  ]
  os.makedirs(os.path.dirname(os.path.abspath(md_path)), exist_ok=True)
  # The page marks the render done (scripts/main.py): atomically.
  with files.atomic_path(md_path) as tmp, open(tmp, "w") as f:
    f.write("\n".join(lines))
  return md_path


def render(
    results_path: str,
    *,
    output_dir: str = "output",
    markdown_path: str | None = None,
    grid_path: str = "imgs/comparison_grid.png",
    plot_path: str = "imgs/faithfulness_vs_realism.png",
    examples_per_mode: int = 3,
    cell_px: int = 128,
) -> dict[str, str]:
  """Renders a study's results: the grid, the plot and the markdown page.

  Returns:
    {"markdown", "grid", "plot"}: the paths written.
  """
  results = schema.load_results(results_path)
  results_dir = os.path.dirname(os.path.abspath(results_path))
  stroke_set = stroke_sets.load_stroke_set(results["manifest"])
  grid, cell_paths, row_labels, notes = grid_lib.render_examples(
      results,
      results_dir,
      stroke_set,
      output_dir,
      per_mode=examples_per_mode,
      cell_px=cell_px,
  )
  os.makedirs(os.path.dirname(os.path.abspath(grid_path)), exist_ok=True)
  grid.save(grid_path)
  plot.plot_tradeoff(results, plot_path)
  md_path = markdown_path or os.path.join(output_dir, "comparison.md")
  markdown(
      results,
      results_path,
      md_path,
      cell_paths,
      row_labels,
      notes,
      grid_path,
      plot_path,
  )
  return {"markdown": md_path, "grid": grid_path, "plot": plot_path}
