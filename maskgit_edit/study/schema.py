"""The study's results file, `results.json`, as types; writing and reading.

One file per study folder, version `SCHEMA_VERSION`; `load_results` refuses
files that lack a key of `Results` or `SettingResult` or have another
version. `metrics.csv` beside it has one row per setting: variant, knob,
then <metric>_mean, <metric>_ci, <metric>_n for every metric in `METRICS`,
then judge_kid_std. The metrics are described in `study.scoring`, the paired
differences in `study.pairing`.
"""

from collections.abc import Mapping, Sequence
import csv
import json
import os
import pathlib
from typing import Any, TypedDict

import numpy as np

from maskgit_edit import files
from maskgit_edit import intervals
from maskgit_edit.study import stroke_sets as stroke_sets_lib

SCHEMA_VERSION = 3
RESULTS_NAME = "results.json"
CSV_NAME = "metrics.csv"
PSNR_CAP = 100.0
PER_STROKE_METRICS = (
    "l2",
    "l2_stroke",
    "psnr_preserve",
    "l2_preserve",
    "realism",
    "class_kept",
    "judge_entropy",
)
METRICS = PER_STROKE_METRICS + ("swd", "judge_kid")
REFERENCE_METRICS = (
    "l2",
    "l2_stroke",
    "swd",
    "realism",
    "class_kept",
    "judge_entropy",
    "judge_kid",
)


class Summary(TypedDict, total=False):
  """Mean and the half-width of its 95% interval over n finite values (ci
  None when n < 2). judge_kid has "std" (over subsets) and ci None."""

  mean: float | None
  ci: float | None
  n: int
  std: float | None


class Paired(TypedDict):
  """Mean paired difference and its 95% bootstrap interval over source
  images (lo, hi None without one)."""

  mean: float | None
  lo: float | None
  hi: float | None
  n: int


class Matched(TypedDict):
  """Paired differences to token SDEdit at the same faithfulness: the two
  bracketing strengths, their gap, the interpolation weights, whether the
  match lies on the curve (and in which share of the bootstrap replicates),
  and the differences per metric (PER_STROKE_METRICS)."""

  knobs: list[float]
  gap: float
  weights: list[float]
  in_range: bool
  in_range_share: float
  metrics: dict[str, Paired]


class StrokeRecord(TypedDict):
  id: str
  mode: str
  image_index: int | None
  label: int


class SettingResult(TypedDict):
  """One (variant, knob) setting that ran."""

  variant: str
  knob: float
  knob_name: str
  outputs: str  # The .npz, relative to results.json.
  pngs: str  # The PNG folder, relative to results.json.
  metrics: dict[str, Summary]  # METRICS.
  # Setting - none, per stroke; {} for none itself or when none did not run.
  paired_vs_none: dict[str, Paired]
  # {} for the baselines or with fewer than 2 sdedit settings.
  paired_vs_sdedit: Matched | dict[str, Any]
  per_stroke: dict[str, list[float | None]]  # PER_STROKE_METRICS, [N] each.
  swd_folds: list[float]


class Results(TypedDict):
  schema_version: int
  manifest: str  # Absolute path of the manifest.
  num_strokes: int  # N.
  image_size: int  # H (= W).
  strokes: list[StrokeRecord]  # N entries, manifest order.
  seed: int
  batch_size: int
  # tokenizer, transformer, reweight, iterate and judge workdirs (or None).
  models: dict[str, str | None]
  edit_settings: dict[str, Any]  # dataclasses.asdict(edit.EditSettings).
  # scoring.SwdSettings fields, num_real and real_split.
  swd: dict[str, Any]
  psnr_cap: float
  skipped: dict[str, str]  # Variant -> why it did not run.
  # "source" and "stroke": the inputs scored as if they were outputs, by
  # REFERENCE_METRICS.
  references: dict[str, dict[str, Summary]]
  results: list[SettingResult]


def summarize(values) -> Summary:
  """Summary of the finite values."""
  values = np.asarray(values, np.float64)
  finite = values[np.isfinite(values)]
  if len(finite) >= 2:
    mean, ci = intervals.mean_ci(finite)
  else:
    mean, ci = (float(finite[0]) if len(finite) else None), None
  return {"mean": mean, "ci": ci, "n": int(len(finite))}


def summarize_paired(values, baseline, clusters) -> Paired:
  """Mean of the per-stroke differences values - baseline, with the 95%
  bootstrap interval over source images (`clusters`), on the strokes where
  both are finite."""
  diff = np.asarray(values, np.float64) - np.asarray(baseline, np.float64)
  finite = np.isfinite(diff)
  n = int(finite.sum())
  clusters = np.asarray(clusters)[finite]
  if n < 2 or len(np.unique(clusters)) < 2:
    # One source image gives no interval over images.
    return {
        "mean": float(diff[finite].mean()) if n else None,
        "lo": None,
        "hi": None,
        "n": n,
    }
  mean, low, high = intervals.cluster_bootstrap_ci(diff[finite], clusters)
  return {"mean": mean, "lo": low, "hi": high, "n": n}


def per_stroke(result: SettingResult, name: str) -> np.ndarray:
  """A setting's per-stroke values of a metric, NaN where missing, [N]."""
  return np.array(
      [np.nan if v is None else v for v in result["per_stroke"][name]],
      np.float64,
  )


def results_dict(
    stroke_set: stroke_sets_lib.StrokeSet,
    labels_N: np.ndarray,
    *,
    seed: int,
    batch_size: int,
    models: Mapping[str, str | None],
    edit_settings: Mapping[str, Any],
    swd: Mapping[str, Any],
    skipped: Mapping[str, str],
    references: Mapping[str, Any],
    entries: Sequence[SettingResult],
) -> Results:
  """Assembles the results of a study."""
  return {
      "schema_version": SCHEMA_VERSION,
      "manifest": stroke_set.manifest_path,
      "num_strokes": len(stroke_set),
      "image_size": stroke_set.image_size,
      "strokes": [
          {
              "id": i,
              "mode": m,
              "image_index": int(x) if x >= 0 else None,
              "label": int(y),
          }
          for i, m, x, y in zip(
              stroke_set.ids,
              stroke_set.modes,
              stroke_set.image_indices_N,
              labels_N,
          )
      ],
      "seed": seed,
      "batch_size": batch_size,
      "models": dict(models),
      "edit_settings": dict(edit_settings),
      "swd": dict(swd),
      "psnr_cap": PSNR_CAP,
      "skipped": dict(skipped),
      "references": dict(references),
      "results": list(entries),
  }


def write_results(out_dir: str, results: Results) -> tuple[str, str]:
  """Writes results.json and metrics.csv atomically; returns their paths."""
  json_path = os.path.join(out_dir, RESULTS_NAME)
  with files.atomic_path(json_path) as tmp, open(tmp, "w") as f:
    json.dump(results, f, indent=1)
  csv_path = os.path.join(out_dir, CSV_NAME)
  fields = (
      ["variant", "knob"]
      + [f"{m}_{s}" for m in METRICS for s in ("mean", "ci", "n")]
      + ["judge_kid_std"]
  )
  with files.atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    for result in results["results"]:
      row = {"variant": result["variant"], "knob": result["knob"]}
      for name, summary in result["metrics"].items():
        row.update({f"{name}_{s}": summary[s] for s in ("mean", "ci", "n")})
      row["judge_kid_std"] = result["metrics"]["judge_kid"].get("std")
      writer.writerow(row)
  return json_path, csv_path


def load_results(path: str | os.PathLike) -> Results:
  """Reads results.json and checks its keys (those of `Results` and
  `SettingResult`, all required) and version."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(
        f"No results file {path}: run scripts/run_edits.py first."
    )
  results = files.read_json(path, "Results file")
  if not isinstance(results, dict):
    results = {}
  missing = [k for k in Results.__annotations__ if k not in results]
  if missing:
    raise ValueError(
        f"{path} lacks keys {missing}: not a results file of "
        f"schema version {SCHEMA_VERSION}."
    )
  if results["schema_version"] != SCHEMA_VERSION:
    raise ValueError(
        f"{path} has schema version {results['schema_version']}, "
        f"expected {SCHEMA_VERSION}."
    )
  for i, result in enumerate(results["results"]):
    missing = [k for k in SettingResult.__annotations__ if k not in result]
    if missing:
      raise ValueError(f"Entry {i} of {path}'s results lacks {missing}.")
  return results


def find_setting(
    results: Results, variant: str, knob: float
) -> SettingResult | None:
  """The result of `variant` whose knob is closest to `knob`, if any ran."""
  candidates = [r for r in results["results"] if r["variant"] == variant]
  if not candidates:
    return None
  return min(candidates, key=lambda r: (abs(r["knob"] - knob), r["knob"]))
