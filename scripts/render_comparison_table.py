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
  at its display knob, `settings_lib.comparison_columns()`; the nearest knob run if that one
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
import os
import sys

# Runnable as `python scripts/render_comparison_table.py` without install.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maskgit_edit import cli
from maskgit_edit.study import report


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


def main(argv=None) -> dict[str, str]:
  """Renders everything; returns {"markdown", "grid", "plot"} paths."""
  args = parse_args(argv)
  paths = report.render(
      args.results,
      output_dir=args.output_dir,
      markdown_path=args.markdown,
      grid_path=args.grid,
      plot_path=args.plot,
      examples_per_mode=args.examples_per_mode,
      cell_px=args.cell_px,
  )
  print("Wrote " + ", ".join(paths.values()), flush=True)
  return paths


if __name__ == "__main__":
  cli.run(main)
