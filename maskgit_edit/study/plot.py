"""The studies' plots: faithfulness against realism, a curve per variant;
the schedule sweep's metrics against the sweet spot."""

import os

from matplotlib.backends import backend_agg
from matplotlib import figure as mpl_figure
import numpy as np

from maskgit_edit.decoding import guidance as guidance_lib
from maskgit_edit.study import settings as settings_lib

# Drawn faintly so that the intervals do not hide the curves.
_ERRORBAR_STYLE = dict(capsize=2, elinewidth=0.8, ecolor="0.75")


def _drawn() -> tuple[str, ...]:
  """Settings drawn, in order: the variants, then iterative's baselines
  decoded by its tuned transformer."""
  return guidance_lib.names() + tuple(
      v + settings_lib.TUNED for v in settings_lib.TUNED_BASELINES
  )


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


def plot_sweep_metric(
    rows: list[dict], baselines: list[dict], metric: str, label: str, path: str
) -> str:
  """A metric of the schedule sweep (`schedule_sweep`) against the sweet spot
  k/T: one panel per T, one curve per schedule, the baselines dashed."""
  steps = sorted({r["num_steps"] for r in rows})
  schedules = list(dict.fromkeys(r["schedule"] for r in rows))
  fig = mpl_figure.Figure(figsize=(3.2 * len(steps) + 1, 3.2))
  backend_agg.FigureCanvasAgg(fig)
  axes = fig.subplots(
      1,
      len(steps),
      sharey=True,
      squeeze=False,
  )
  for ax, num_steps in zip(axes[0], steps):
    for schedule in schedules:
      curve = sorted(
          (
              r
              for r in rows
              if r["schedule"] == schedule and r["num_steps"] == num_steps
          ),
          key=lambda r: r["sweet_spot"],
      )
      ax.errorbar(
          [r["sweet_spot"] for r in curve],
          [r[metric] for r in curve],
          yerr=[r.get(f"{metric}_ci", 0.0) for r in curve],
          marker="o",
          markersize=3,
          capsize=2,
          label=schedule,
      )
    for baseline, style in zip(baselines, ("--", ":")):
      if np.isfinite(baseline[metric]):
        ax.axhline(
            baseline[metric],
            color="k",
            linestyle=style,
            linewidth=1,
            label=baseline["fill"].replace("_", " "),
        )
    ax.set_title(f"T = {num_steps}")
    ax.set_xlabel("sweet spot k/T")
    ax.set_xlim(0, 1.05)
    ax.grid(alpha=0.3)
  axes[0, 0].set_ylabel(label)
  axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  return path
