r"""Renders the results of `scripts/run_edits.py`: grid, tables and a plot.

  python scripts/render_comparison_table.py \
      --results runs/shapes/eval/results.json \
      [--output_dir output] [--grid imgs/comparison_grid.png] \
      [--plot imgs/faithfulness_vs_realism.png] [--examples_per_mode 3]

Writes
* `<output_dir>/strip_<mode>_<id>.png`: one strip per example stroke, its
  columns Source | Stroke | No guide | Token SDEdit | Context | Self: fixed |
  Self: learned | Self: learned, full confidence | Iterative tuning |
  Zero-shot (each variant
  at its display knob, `evaluation.comparison_columns()`; the nearest knob run if that one
  was not; a grey "n/a" cell for a variant that was skipped);
* `<output_dir>/comparison.md` (--markdown): the same as a markdown table
  (`--examples_per_mode` inversion and counterfactual strokes, images in
  `<output_dir>/cells/` referenced by relative paths), the metric table
  (faithfulness L2 whole / in mask, preservation PSNR, the judge's k-NN
  realism, class kept and KID, SWD, each mean +- 95% CI; the sources and
  strokes themselves as references), the paired differences to none and to
  token SDEdit at matched faithfulness (each with its own transformer:
  iterative's are "@tuned"), and the plot;
* --grid: one PNG of all example rows with column titles;
* --plot: faithfulness (in-mask L2 to the stroke) against realism (the
  judge's k-NN realism when the run had a judge, else SWD), one curve per
  variant across its knob; and the paired differences to none with their
  bootstrap intervals.
Small images are enlarged by pixel repetition to at least --cell_px.
"""

# The imports follow the sys.path set-up below.
# pylint: disable=g-import-not-at-top,wrong-import-position
import math
import os
import re
import sys

# Runnable as `python scripts/render_comparison_table.py` without install.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from matplotlib.backends import backend_agg
from matplotlib import figure as mpl_figure
import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from maskgit_edit import cli
from maskgit_edit import evaluation
from maskgit_edit import files
from maskgit_edit import images as images_lib
from maskgit_edit import strokes
from maskgit_edit.decoding import guidance as guidance_lib

_PAD = 4
_FONT_SIZE = 13
_PLACEHOLDER_GREY = 200
# Drawn faintly so that the intervals do not hide the curves.
_ERRORBAR_STYLE = dict(capsize=2, elinewidth=0.8, ecolor="0.75")
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


def _drawn() -> tuple[str, ...]:
  """Settings drawn, in order: the variants, then iterative's baselines
  decoded by its tuned transformer."""
  return guidance_lib.names() + tuple(
      v + evaluation.TUNED for v in evaluation.TUNED_BASELINES
  )


def parse_args(argv):
  p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--results", required=True, help="results.json of run_edits.")
  p.add_argument("--output_dir", default="output")
  p.add_argument(
      "--markdown",
      default=None,
      help="Markdown file (default <output_dir>/comparison.md).",
  )
  p.add_argument("--grid", default="imgs/comparison_grid.png")
  p.add_argument("--plot", default="imgs/faithfulness_vs_realism.png")
  p.add_argument("--examples_per_mode", type=int, default=3)
  p.add_argument(
      "--cell_px",
      type=int,
      default=128,
      help="Smallest displayed image side (nearest-neighbour).",
  )
  return p.parse_args(argv)


def slug(text: str) -> str:
  return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def pick_rows(stroke_set: evaluation.StrokeSet, per_mode: int) -> list[int]:
  """The first `per_mode` strokes of each mode, inversion first."""
  return [
      i
      for mode in strokes.MODES
      for i in [j for j, m in enumerate(stroke_set.modes) if m == mode][
          :per_mode
      ]
  ]


def column_cells(results, results_dir, stroke_set, rows):
  """Images of the example rows per column, and a note per column.

  Returns:
    (cells, notes): cells[c] is uint8 [R, H, W, 3] or None (not run);
    notes[c] says which knob is shown, or why the column is empty.
  """
  cells, notes = [], []
  for column in evaluation.comparison_columns():
    if column.variant in evaluation.INPUT_COLUMNS:
      images = (
          stroke_set.sources_NxHxWx3
          if column.variant == "source"
          else stroke_set.strokes_NxHxWx3
      )
      cells.append(images_lib.to_uint8(images[rows]))
      notes.append("input")
      continue
    setting = evaluation.find_setting(results, column.variant, column.knob)
    if setting is None:
      cells.append(None)
      notes.append(
          "skipped" if column.variant in results["skipped"] else "not run"
      )
      continue
    outputs = evaluation.load_outputs(
        os.path.join(results_dir, setting["outputs"]),
        stroke_set,
        seed=results["seed"],
        batch_size=results["batch_size"],
    )
    cells.append(outputs["images"][rows])
    notes.append(
        ""
        if column.variant == "none"
        else f"{setting['knob_name']}={setting['knob']:g}"
    )
  return cells, notes


def _upscale(image_HxWx3: np.ndarray, factor: int) -> np.ndarray:
  return image_HxWx3.repeat(factor, axis=0).repeat(factor, axis=1)


def _placeholder(side: int, font) -> np.ndarray:
  image = Image.new("RGB", (side, side), (_PLACEHOLDER_GREY,) * 3)
  ImageDraw.Draw(image).text(
      (side / 2, side / 2), "n/a", fill=(0, 0, 0), font=font, anchor="mm"
  )
  return np.asarray(image)


def row_images(cells, row: int, factor: int, font) -> list[np.ndarray]:
  """Enlarged uint8 images of one example row, a placeholder where absent."""
  side = next(c for c in cells if c is not None).shape[1] * factor
  return [
      _placeholder(side, font)
      if column is None
      else _upscale(column[row], factor)
      for column in cells
  ]


def _wrap(draw, text: str, font, width: int) -> str:
  """Greedy word wrap of each line of `text` to `width` pixels."""
  if "\n" in text:
    return "\n".join(
        _wrap(draw, part, font, width) for part in text.split("\n")
    )
  lines, line = [], ""
  for word in text.split():
    candidate = f"{line} {word}".strip()
    if line and draw.textlength(candidate, font=font) > width:
      lines.append(line)
      line = word
    else:
      line = candidate
  return "\n".join(lines + [line])


def titled_grid(rows_of_images, titles, row_labels, font) -> Image.Image:
  """Rows of equal-size images under wrapped column titles, rows labelled."""
  side = rows_of_images[0][0].shape[0]
  scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
  titles = [_wrap(scratch, t, font, side) for t in titles]
  labels = [_wrap(scratch, t, font, side) for t in row_labels]
  title_h = (
      max(scratch.multiline_textbbox((0, 0), t, font=font)[3] for t in titles)
      + 2 * _PAD
  )
  label_w = (
      max(scratch.multiline_textbbox((0, 0), t, font=font)[2] for t in labels)
      + 2 * _PAD
  )
  num_cols = len(titles)
  width = label_w + num_cols * (side + _PAD) + _PAD
  height = title_h + len(rows_of_images) * (side + _PAD) + _PAD
  canvas = Image.new("RGB", (width, height), (255, 255, 255))
  draw = ImageDraw.Draw(canvas)
  for c, title in enumerate(titles):
    left = label_w + c * (side + _PAD) + _PAD
    draw.multiline_text(
        (left + side / 2, title_h - _PAD),
        title,
        font=font,
        fill=(0, 0, 0),
        anchor="md",
        align="center",
    )
  for r, (images, label) in enumerate(zip(rows_of_images, labels)):
    top = title_h + r * (side + _PAD)
    draw.multiline_text(
        (_PAD, top + side / 2), label, font=font, fill=(0, 0, 0), anchor="lm"
    )
    for c, image in enumerate(images):
      canvas.paste(
          Image.fromarray(image), (label_w + c * (side + _PAD) + _PAD, top)
      )
  return canvas


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
          evaluation.format_paired(vs_sdedit["metrics"].get(m))
          for m, _ in _PAIRED_COLUMNS[1:]
      ]
    else:
      match, sdedit_cells = "-", ["-"] * (len(_PAIRED_COLUMNS) - 1)
    lines.append(
        "| "
        + " | ".join(
            [r["variant"], _knob_label(r)]
            + [
                evaluation.format_paired(vs_none.get(m))
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


_AXIS_LABELS = {
    "l2_stroke": "Faithfulness: L2 to the stroke inside its mask "
    "(lower = more faithful)",
    "realism": "Realism: judge k-NN realism score (higher = more real)",
    "swd": "Realism: SWD to real images, x1e3 (lower = more realistic)",
    "l2": "Faithfulness: L2 to the stroke, whole image",
}


def realism_metrics(results) -> tuple[str, str]:
  """(set-level metric, per-stroke metric) that the plot uses for realism:
  the judge's k-NN realism when a judge scored the run; else SWD, and the
  whole-image L2 for the paired panel (no per-stroke realism without a
  judge)."""
  judged = any(r["metrics"]["realism"]["n"] for r in results["results"])
  return ("realism", "realism") if judged else ("swd", "l2")


def _point(metrics, y_metric):
  """(x, y, x half-width, y half-width) of a setting or reference."""
  return (
      metrics["l2_stroke"]["mean"],
      metrics[y_metric]["mean"],
      metrics["l2_stroke"]["ci"] or 0.0,
      metrics[y_metric]["ci"] or 0.0,
  )


def _paired_point(paired, y_metric):
  """(x, y, x errors (2,), y errors (2,)) of the differences vs none."""
  x, y = paired["l2_stroke"], paired[y_metric]
  error = lambda p: (
      [p["mean"] - p["lo"], p["hi"] - p["mean"]]
      if p["lo"] is not None
      else [0.0, 0.0]
  )
  return x["mean"], y["mean"], error(x), error(y)


def _draw_variants(ax, results, y_metric, *, paired: bool) -> None:
  """One curve per variant across its knob, none as a star.

  Means with knob values labelled, or (`paired`) the paired differences to
  none with their 95% bootstrap intervals.
  """
  for variant in _drawn():
    entries = sorted(
        (r for r in results["results"] if r["variant"] == variant),
        key=lambda r: r["knob"],
    )
    if not entries:
      continue
    if variant == "none":
      point = (
          (0.0, 0.0) if paired else _point(entries[0]["metrics"], y_metric)[:2]
      )
      ax.plot(
          *point,
          marker="*",
          markersize=14,
          color="black",
          linestyle="none",
          label="none (baseline)",
          zorder=3,
      )
      continue
    label = (
        f"{variant} ({entries[0]['knob_name']})"
        if entries[0]["knob_name"] != "-"
        else variant
    )
    if variant == "iterative":
      label += ", vs its tuned model's none"
    if paired:
      entries = [r for r in entries if r["paired_vs_none"]]
      if not entries:
        continue
      x, y, xerr, yerr = zip(
          *(_paired_point(r["paired_vs_none"], y_metric) for r in entries)
      )
      ax.errorbar(
          x,
          y,
          xerr=np.array(xerr).T,
          yerr=np.array(yerr).T,
          marker="o",
          label=label,
          **_ERRORBAR_STYLE,
      )
      continue
    x, y, _, _ = zip(*(_point(r["metrics"], y_metric) for r in entries))
    ax.plot(x, y, marker="o", label=label)
    for r, xi, yi in zip(entries, x, y):
      ax.annotate(
          f"{r['knob']:g}",
          (xi, yi),
          textcoords="offset points",
          xytext=(4, 4),
          fontsize=7,
      )


def plot_tradeoff(results, path: str) -> str:
  """Faithfulness (x) against realism (y), a curve per variant.

  Left: means across each variant's knob (values labelled), with the source
  and stroke images for scale. Right: per-stroke paired differences to the
  unguided decode with 95% bootstrap intervals over source images.
  """
  set_metric, stroke_metric = realism_metrics(results)
  fig = mpl_figure.Figure(figsize=(13, 5.5))
  backend_agg.FigureCanvasAgg(fig)
  means, paired = fig.subplots(1, 2)
  _draw_variants(means, results, set_metric, paired=False)
  _draw_variants(paired, results, stroke_metric, paired=True)
  for (name, reference), marker in zip(results["references"].items(), "sX"):
    if reference.get(set_metric, {}).get("mean") is None:
      continue
    x, y, _, _ = _point(reference, set_metric)
    means.plot(
        [x],
        [y],
        marker=marker,
        markersize=8,
        color="grey",
        linestyle="none",
        label=f"{name} images (reference)",
    )
  means.set_title("Means across each knob (knob values labelled)", fontsize=10)
  paired.set_title(
      "Paired differences to none, 95% bootstrap intervals "
      "over source images",
      fontsize=10,
  )
  means.set_xlabel(_AXIS_LABELS["l2_stroke"])
  means.set_ylabel(_AXIS_LABELS[set_metric])
  paired.set_xlabel(
      "Difference in "
      + _AXIS_LABELS["l2_stroke"][0].lower()
      + _AXIS_LABELS["l2_stroke"][1:]
  )
  paired.set_ylabel(
      "Difference in "
      + _AXIS_LABELS[stroke_metric][0].lower()
      + _AXIS_LABELS[stroke_metric][1:]
  )
  paired.axhline(0.0, color="0.6", linewidth=0.8)
  paired.axvline(0.0, color="0.6", linewidth=0.8)
  for ax in (means, paired):
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.suptitle(
      f"Faithfulness vs realism over {results['num_strokes']} strokes",
      fontsize=11,
  )
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=150)
  return path


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
  titles = [c.title for c in evaluation.comparison_columns()]
  shown = "; ".join(
      f"{c.title}: {n}"
      for c, n in zip(evaluation.comparison_columns(), notes)
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
    cells = [f"![{slug(t)}]({rel(p)})" for t, p in zip(titles, paths)]
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


def main(argv=None) -> dict[str, str]:
  """Renders everything; returns {"markdown", "grid", "plot"} paths."""
  args = parse_args(argv)
  results = evaluation.load_results(args.results)
  results_dir = os.path.dirname(os.path.abspath(args.results))
  stroke_set = evaluation.load_stroke_set(results["manifest"])
  rows = pick_rows(stroke_set, args.examples_per_mode)
  if not rows:
    raise ValueError(
        f"No strokes to show (examples_per_mode={args.examples_per_mode})."
    )
  cells, notes = column_cells(results, results_dir, stroke_set, rows)
  factor = max(1, math.ceil(args.cell_px / stroke_set.image_size))
  font = ImageFont.load_default(size=_FONT_SIZE)
  md_path = args.markdown or os.path.join(args.output_dir, "comparison.md")

  rows_of_images, cell_paths, row_labels = [], [], []
  for r, index in enumerate(rows):
    images = row_images(cells, r, factor, font)
    stroke_id, mode = stroke_set.ids[index], stroke_set.modes[index]
    row_labels.append(f"{mode} {stroke_id}")
    rows_of_images.append(images)
    strip = images_lib.grid(
        images_lib.to_float(np.stack(images)), num_cols=len(images)
    )
    images_lib.save_png(
        strip, os.path.join(args.output_dir, f"strip_{mode}_{stroke_id}.png")
    )
    cell_paths.append(
        [
            images_lib.save_png(
                images_lib.to_float(image),
                os.path.join(
                    args.output_dir,
                    "cells",
                    stroke_id,
                    f"{slug(column.title)}.png",
                ),
            )
            for column, image in zip(evaluation.comparison_columns(), images)
        ]
    )

  titles = [
      c.title if n in ("", "input") else f"{c.title}\n{n}"
      for c, n in zip(evaluation.comparison_columns(), notes)
  ]
  grid = titled_grid(rows_of_images, titles, row_labels, font)
  os.makedirs(os.path.dirname(os.path.abspath(args.grid)), exist_ok=True)
  grid.save(args.grid)
  plot_tradeoff(results, args.plot)
  markdown(
      results,
      args.results,
      md_path,
      cell_paths,
      row_labels,
      notes,
      args.grid,
      args.plot,
  )
  paths = {"markdown": md_path, "grid": args.grid, "plot": args.plot}
  print("Wrote " + ", ".join(paths.values()), flush=True)
  return paths


if __name__ == "__main__":
  cli.run(main)
