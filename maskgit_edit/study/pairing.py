"""Paired differences between settings, with intervals over source images.

Differences per stroke (on strokes where both are finite), with 95%
bootstrap intervals over source images, since the strokes of one image are
not independent (`intervals.cluster_bootstrap_ci`): paired_vs_none, to
the unguided decode; paired_vs_sdedit, to token SDEdit at the same mean
faithfulness (`MATCH_METRIC`), found on the sdedit curve inside every
bootstrap replicate (`matched_sdedit`). Both baselines are decoded by the
setting's own transformer: `iterative` compares with "none@tuned" and
"sdedit@tuned", and "none@tuned" with "none" (the fine-tune's effect).
"""

from collections.abc import Mapping
from typing import Any

import numpy as np

from maskgit_edit import intervals
from maskgit_edit.study import schema
from maskgit_edit.study import settings as settings_lib
from maskgit_edit.study import stroke_sets as stroke_sets_lib

# Faithfulness at which a setting is matched to token SDEdit.
MATCH_METRIC = "l2_stroke"


def _first_crossing(curve_KxR, target_R):
  """Linear interpolation weights where the curve (knob order) first
  reaches the target, per column: (index k [R], weight of k [R], found
  [R]); the match is w * row k + (1 - w) * row k + 1."""
  d_KxR = curve_KxR - target_R[None]
  crosses_KxR = d_KxR[:-1] * d_KxR[1:] <= 0
  found_R = crosses_KxR.any(0)
  k_R = np.argmax(crosses_KxR, axis=0)
  columns = np.arange(len(target_R))
  low, high = d_KxR[k_R, columns], d_KxR[k_R + 1, columns]
  span = high - low
  weight_R = np.where(span != 0, high / np.where(span != 0, span, 1.0), 1.0)
  return k_R, weight_R, found_R


def matched_sdedit(
    result,
    sdedit_results,
    clusters_N,
    *,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    rng: int = 0,
) -> dict[str, Any]:
  """Paired differences to token SDEdit at the same faithfulness.

  Along the sdedit curve in knob order, the first crossing of the
  setting's mean faithfulness (`MATCH_METRIC`), linearly interpolated
  between the two bracketing strengths, gives the matched sdedit value of
  every metric. The match is redone inside every cluster-bootstrap
  replicate (source images resampled), so the interval holds the
  matching's own uncertainty. Strokes where any needed value is missing
  are left out, per metric. Replicates whose faithfulness the curve does
  not reach are left out of the interval (`in_range_share`).

  Returns:
    {"knobs": the bracketing strengths of the sample's match, "gap": their
    distance, "weights", "in_range": whether the sample's match is inside
    the curve, "in_range_share": that share of the replicates, "metrics":
    {metric: Paired}}; outside the curve every mean is None.
  """
  sdedit_results = sorted(sdedit_results, key=lambda r: r["knob"])
  tail = 50 * (1 - confidence)
  faithful_N = schema.per_stroke(result, MATCH_METRIC)
  curve_KxN = np.stack(
      [schema.per_stroke(r, MATCH_METRIC) for r in sdedit_results]
  )
  out = {"metrics": {}}
  for name in schema.PER_STROKE_METRICS:
    values_N = schema.per_stroke(result, name)
    sdedit_KxN = np.stack([schema.per_stroke(r, name) for r in sdedit_results])
    finite = (
        np.isfinite(values_N)
        & np.isfinite(faithful_N)
        & np.isfinite(sdedit_KxN).all(0)
        & np.isfinite(curve_KxN).all(0)
    )
    n = int(finite.sum())
    if n < 2:
      out["metrics"][name] = {"mean": None, "lo": None, "hi": None, "n": n}
      continue
    # Row 0: the sample itself; then the replicates.
    weights_RxN = np.concatenate(
        [
            np.ones((1, n)),
            intervals.cluster_bootstrap_weights(
                np.asarray(clusters_N)[finite], num_resamples, rng
            ),
        ]
    )
    mean = lambda x: (weights_RxN @ x.T) / weights_RxN.sum(1)[:, None]
    target_R = mean(faithful_N[finite][None])[:, 0]
    curve_KxR = mean(curve_KxN[:, finite]).T
    k_R, w_R, found_R = _first_crossing(curve_KxR, target_R)
    sdedit_KxR = mean(sdedit_KxN[:, finite]).T
    columns = np.arange(len(target_R))
    matched_R = (
        w_R * sdedit_KxR[k_R, columns]
        + (1 - w_R) * sdedit_KxR[k_R + 1, columns]
    )
    diff_R = mean(values_N[finite][None])[:, 0] - matched_R
    if name == MATCH_METRIC:
      knobs = [sdedit_results[k_R[0] + i]["knob"] for i in (0, 1)]
      out.update(
          knobs=knobs,
          gap=knobs[1] - knobs[0],
          weights=[float(w_R[0]), float(1 - w_R[0])],
          in_range=bool(found_R[0]),
          in_range_share=float(found_R[1:].mean()),
      )
    if not found_R[0]:
      out["metrics"][name] = {"mean": None, "lo": None, "hi": None, "n": n}
      continue
    low, high = np.percentile(diff_R[1:][found_R[1:]], [tail, 100 - tail])
    out["metrics"][name] = {
        "mean": float(diff_R[0]),
        "lo": float(low),
        "hi": float(high),
        "n": n,
    }
  return out


def add_paired_differences(
    results: list[dict[str, Any]], clusters_N: np.ndarray
) -> None:
  """Fills "paired_vs_none" and "paired_vs_sdedit" of every setting.

  vs none: per-stroke differences to the unguided decode (same draws). vs
  sdedit: to token SDEdit at the same mean faithfulness (`matched_sdedit`).
  Both baselines are decoded by the setting's own transformer
  (`baselines_of`). Intervals are bootstraps over `clusters_N` (source
  images).
  """
  by_variant = {}
  for result in results:
    by_variant.setdefault(result["variant"], []).append(result)
  for result in results:
    none_name, sdedit_name = settings_lib.baselines_of(result["variant"])
    baseline = by_variant.get(none_name, [None])[0]
    if baseline is not None and result is not baseline:
      result["paired_vs_none"] = {
          name: schema.summarize_paired(
              schema.per_stroke(result, name),
              schema.per_stroke(baseline, name),
              clusters_N,
          )
          for name in schema.PER_STROKE_METRICS
      }
    sdedit = by_variant.get(sdedit_name, [])
    if len(sdedit) >= 2 and result["variant"] not in (none_name, sdedit_name):
      result["paired_vs_sdedit"] = matched_sdedit(result, sdedit, clusters_N)


def paired_between_runs(
    results: Mapping[str, Any], baseline: Mapping[str, Any]
) -> list[dict[str, Any]]:
  """Per-stroke differences results - baseline for every (variant, knob) in
  both runs, e.g. a windowed decode against the full one.

  Both must have edited the same strokes with the same seed and batch size
  (so the draws pair). Intervals are bootstraps over source images.

  Returns:
    [{"variant", "knob", "knob_name", "metrics": {metric: Paired}}].
  """
  for key in ("manifest", "seed", "batch_size", "num_strokes"):
    if results[key] != baseline[key]:
      raise ValueError(
          f"The runs differ in {key} ({results[key]!r} vs "
          f"{baseline[key]!r}): their edits do not pair."
      )
  clusters_N = stroke_sets_lib.stroke_clusters(
      [
          -1 if s["image_index"] is None else s["image_index"]
          for s in results["strokes"]
      ]
  )
  by_setting = {(r["variant"], r["knob"]): r for r in baseline["results"]}
  return [
      {
          "variant": r["variant"],
          "knob": r["knob"],
          "knob_name": r["knob_name"],
          "metrics": {
              name: schema.summarize_paired(
                  schema.per_stroke(r, name),
                  schema.per_stroke(
                      by_setting[(r["variant"], r["knob"])], name
                  ),
                  clusters_N,
              )
              for name in schema.PER_STROKE_METRICS
          },
      }
      for r in results["results"]
      if (r["variant"], r["knob"]) in by_setting
  ]


def format_paired(paired) -> str:
  """mean [low, high] of a Paired, bold when the interval excludes 0."""
  if not paired or paired["mean"] is None:
    return "n/a"
  if paired["lo"] is None:
    return f"{paired['mean']:+.3g}"
  text = f"{paired['mean']:+.3g} [{paired['lo']:+.3g}, {paired['hi']:+.3g}]"
  return f"**{text}**" if paired["lo"] > 0 or paired["hi"] < 0 else text
