r"""Evaluation of the guided-editing variants on a stroke set.

Shared by `scripts/run_edits.py` (runs every variant at every knob setting on
every stroke of a manifest and measures the outputs) and
`scripts/render_comparison_table.py` (turns the results into a grid, tables
and a faithfulness-realism plot).

Protocol
--------
* Inputs: a manifest written by `strokes.write_stroke_set` (read with
  `strokes.read_manifest`, whose errors on missing files or mixed image sizes
  surface unchanged). The manifest's optional top-level `data` (a
  `config.data` mapping) and `split` (default "test") name the data source its
  `image_index` entries index into. Class labels for class-conditional models
  are re-read from that source (`stroke_labels`); a manifest without `data`
  gets label 0 for every stroke, with a warning.
* Paired seeds: batch b of the strokes (in manifest order, `batch_size` per
  batch, the last one padded by repeating its last stroke) is decoded with
  `fold_in(key(seed), b)` for every variant and knob, so a stroke sees the
  same random draws in every setting (knob 0 of a guided variant reproduces
  "none" exactly; for sdedit, strength 1 does; iterative at scale 0 decodes
  with its tuned transformer). Pairing therefore needs the same `seed` and
  `batch_size`, which every output file records and resuming checks, with
  the version of the outputs (`OUTPUTS_VERSION`: decode semantics).
* Outputs: `<out_dir>/edits/<variant>/knob_<knob:g>.npz` (written last,
  atomically: a setting whose .npz exists is complete and is skipped when the
  run resumes) and one PNG per stroke in `<out_dir>/edits/<variant>/
  knob_<knob:g>/<id>.png`. npz fields: images (composited) and decoded
  (tokenizer output before compositing) uint8 [N, H, W, 3], tokens int32
  [N, h, w], edited bool [N, h, w], ids str [N], seed, batch_size.
* Metrics per stroke (`PER_STROKE_METRICS`):
    l2, l2_stroke    faithfulness: SDEdit L2 of the composited output to the
                     stroke image, whole image / inside the stroke mask
                     (`metrics.faithfulness`); lower = more faithful.
    psnr_preserve,   preservation: PSNR (capped at `PSNR_CAP` dB) / L2 of the
    l2_preserve      decoded output (before compositing, which copies the
                     source outside the edited region exactly) to the source
                     outside the edited token region upsampled to pixels
                     (`metrics.preservation`); NaN (left out of the summary)
                     for a stroke whose edited region covers the whole image.
  NaN without a judge for the judge metrics.
    realism          realism: the judge's k-NN realism score of the
                     composited output among the held-out real images
                     (`judging.realism_scores`; higher = more real; >= 1:
                     inside some real image's k-NN ball). It is validated
                     by `scripts/sample_quality.py` (real > reconstructions
                     > stroke images > weak samples). The transformer's
                     token NLL is no realism score: it penalises edits that
                     keep stroke tokens and any model but the scorer.
    class_kept       1 where the judge gives the output the class it gives
                     the source, else 0 (every auto-stroke asks for a change
                     within the garment, so 1 is what was asked).
    judge_entropy    realism: mean entropy (nats) of the judge's dense head
                     over the composited output (`judging.Judge.map_entropy`;
                     lower = more like the data); NaN without a judge.
  and per setting:
    swd              realism: sliced Wasserstein distance (x1e3) of the
                     composited outputs to held-out real images. Descriptors
                     (`metrics.swd_descriptors`) are computed once for the
                     real set and once per setting; strokes and real images
                     are split into `folds` equal contiguous folds, SWD is
                     computed fold against fold, and the fold values give the
                     mean and CI. Small folds bias SWD upwards, equally for
                     every setting, so settings compare fairly. The real
                     images come from the manifest's data source (else the
                     tokenizer run's) at `real_split`, skipping the stroke
                     sources when that is the manifest's split. SWD needs
                     images of at least `min_resolution` px (16 in Karras et
                     al.); for 16 px images use min_resolution 8 (>= the 7 px
                     patch) and fewer descriptors.
    judge_kid        realism: judge-KID (x1e3) of the composited outputs to
                     the same real images, mean and std over subsets; absent
                     without a judge.
  Summaries: mean and 95% t-interval half-width (`metrics.mean_ci`) over the
  finite values. Paired differences (on strokes where both are finite), with
  95% bootstrap intervals over source images, since the strokes of one image
  are not independent (`metrics.cluster_bootstrap_ci`): paired_vs_none, to
  the unguided decode; paired_vs_sdedit, to token SDEdit at the same mean
  faithfulness (`MATCH_METRIC`), found on the sdedit curve inside every
  bootstrap replicate (`matched_sdedit`). Both baselines are decoded by the
  setting's own transformer: `iterative` compares with "none@tuned" and
  "sdedit@tuned", and "none@tuned" with "none" (the fine-tune's effect).

Results JSON (`results.json`, SCHEMA_VERSION 3)
-----------------------------------------------
  {
    "schema_version": 3,
    "manifest": str,               # absolute path of the manifest
    "num_strokes": int,            # N
    "image_size": int,             # H (= W)
    "strokes": [{"id": str, "mode": str, "image_index": int|null,
                 "label": int}],   # N entries, manifest order
    "seed": int, "batch_size": int,
    "models": {"tokenizer_workdir": str, "transformer_workdir": str,
               "reweight_workdir": str|null, "iterate_workdir": str|null},
    "edit_settings": {...},        # dataclasses.asdict(edit.EditSettings)
    "swd": {"num_descriptors": int, "min_resolution": int,
            "num_projections": int, "folds": int, "seed": int,
            "num_real": int, "real_split": str},
    "psnr_cap": float,
    "skipped": {variant: reason},  # variants not run, e.g. no workdir
    "references": {                # the inputs scored as if they were outputs
      "source": {metric: Summary for metric in REFERENCE_METRICS},
      "stroke": {metric: Summary for metric in REFERENCE_METRICS}},
    "results": [{                  # one per (variant, knob) setting run
      "variant": str, "knob": float, "knob_name": str,
      "outputs": str,              # .npz path relative to results.json
      "pngs": str,                 # PNG folder relative to results.json
      "metrics": {metric: Summary for metric in METRICS},
      "paired_vs_none": {metric: Paired for metric in PER_STROKE_METRICS},
                                   # setting - none, per stroke; {} for
                                   # none itself or when none was not run
      "paired_vs_sdedit": {"knobs": [float, float], "gap": float,
                           "weights": [float, float], "in_range": bool,
                           "in_range_share": float,
                           "metrics": {metric: Paired}},
                                   # {} for the baselines or < 2 sdedit runs
      "per_stroke": {metric: [float|null] * N for PER_STROKE_METRICS},
      "swd_folds": [float] * folds}]
  }
  Summary = {"mean": float|null, "ci": float|null, "n": int}: mean and the
  half-width of its 95% interval over n finite values (ci null when n < 2);
  judge_kid has "std" (over subsets) instead of an interval.
  Paired = {"mean": float|null, "lo": float|null, "hi": float|null,
  "n": int}: mean paired difference and its 95% bootstrap interval.
`metrics.csv` has one row per setting: variant, knob, then <metric>_mean,
<metric>_ci, <metric>_n for every metric in METRICS, then judge_kid_std.
"""

from collections.abc import Mapping, Sequence
import csv
import dataclasses
import json
import os
import pathlib
from typing import Any
import warnings

import jax
import numpy as np

from maskgit_edit import data
from maskgit_edit import files
from maskgit_edit import images as images_lib
from maskgit_edit import judging
from maskgit_edit import metrics
from maskgit_edit import progress as progress_lib
from maskgit_edit import regions
from maskgit_edit import strokes
from maskgit_edit.decoding import guidance as guidance_lib

SCHEMA_VERSION = 3
# Bumped when the decode of a setting changes meaning (knob semantics, the
# sampler), so that resuming never mixes outputs of two versions.
OUTPUTS_VERSION = 3
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
# Faithfulness at which a setting is matched to token SDEdit.
MATCH_METRIC = "l2_stroke"

# `iterative` decodes with the iterate-tuned transformer, so the study also
# decodes its baselines with it: settings named "<variant>@tuned".
TUNED = "@tuned"
TUNED_BASELINES = ("none", "sdedit")


def decode_of(name: str) -> tuple[str, bool | None]:
  """A setting's name -> (guidance variant, `tuned` of `Editor.edit`)."""
  if name.endswith(TUNED):
    return name.removesuffix(TUNED), True
  return name, None


def knob_name(name: str) -> str:
  return guidance_lib.variant(decode_of(name)[0]).knob


INPUT_COLUMNS = ("source", "stroke")


@dataclasses.dataclass(frozen=True)
class Column:
  """A column of the comparison grid.

  Attributes:
    title: column title.
    variant: "source" or "stroke" (the inputs) or a guidance variant.
    knob: the display knob of the variant (ignored for inputs and "none").
  """

  title: str
  variant: str
  knob: float = 0.0


def comparison_columns() -> tuple[Column, ...]:
  """The grid's columns: the inputs, then each variant's display knobs."""
  return (
      Column("Source", "source"),
      Column("Stroke", "stroke"),
      *(
          Column(title, v.name, knob)
          for v in guidance_lib.REGISTRY.values()
          for title, knob in v.columns
      ),
  )


# ---------------------------------------------------------------------------
# Variant selection.


def select_variants(
    knobs: Mapping[str, Sequence[float]], runs: set[str]
) -> dict[str, tuple[float, ...]]:
  """Validates knob grids against the variants and the runs given.

  Args:
    knobs: variant -> knob values to run.
    runs: trainers whose runs are given ("reweight", "iterate").

  Returns:
    setting name -> knobs to run; with "iterative", its baselines decoded by
    its tuned transformer too (`TUNED`).

  Raises:
    ValueError: an unknown variant, a knob out of range, or a variant asked
      for without the run it needs (`guidance.check_runs`).
  """
  kept = {}
  for variant, values in knobs.items():
    if not values:
      raise ValueError(f"No knob values given for variant {variant!r}.")
    for knob in values:
      guidance_lib.validate(variant, float(knob))
    guidance_lib.check_runs(variant, runs)
    kept[variant] = tuple(float(k) for k in values)
  if "iterative" in kept:
    for variant in TUNED_BASELINES:
      if variant in kept:
        kept[variant + TUNED] = kept[variant]
  return kept


# ---------------------------------------------------------------------------
# Stroke sets.


@dataclasses.dataclass(frozen=True)
class StrokeSet:
  """The strokes of a manifest, as arrays in manifest order.

  Attributes:
    manifest_path: absolute path of the manifest.
    ids: stroke ids [N].
    modes: stroke modes [N] ("inversion" / "counterfactual").
    image_indices_N: int64 index of each stroke's source in the data source,
      -1 where the manifest does not record it.
    sources_NxHxWx3: float32 source images in [0, 1].
    strokes_NxHxWx3: float32 stroke images in [0, 1].
    masks_NxHxW: bool stroke masks.
    data_config: the manifest's `data` mapping, or None.
    split: the manifest's `split` ("test" if absent).
  """

  manifest_path: str
  ids: tuple[str, ...]
  modes: tuple[str, ...]
  image_indices_N: np.ndarray
  sources_NxHxWx3: np.ndarray
  strokes_NxHxWx3: np.ndarray
  masks_NxHxW: np.ndarray
  data_config: Mapping[str, Any] | None
  split: str

  def __len__(self) -> int:
    return len(self.ids)

  @property
  def image_size(self) -> int:
    return self.sources_NxHxWx3.shape[1]


def load_stroke_set(manifest_path: str | os.PathLike) -> StrokeSet:
  """Reads a manifest (see `strokes.read_manifest` for the errors raised)."""
  manifest_path = pathlib.Path(manifest_path).resolve()
  examples = strokes.read_manifest(manifest_path)
  if not examples:
    raise ValueError(f"Stroke manifest {manifest_path} has no entries.")
  manifest = files.read_json(manifest_path, "Stroke manifest")
  stack = lambda name: images_lib.to_float(
      np.stack([getattr(e, name) for e in examples])
  )
  return StrokeSet(
      manifest_path=str(manifest_path),
      ids=tuple(e.entry["id"] for e in examples),
      modes=tuple(e.entry["mode"] for e in examples),
      image_indices_N=np.array(
          [e.entry.get("image_index", -1) for e in examples], np.int64
      ),
      sources_NxHxWx3=stack("source"),
      strokes_NxHxWx3=stack("stroke_image"),
      masks_NxHxW=np.stack([e.mask for e in examples]),
      data_config=manifest.get("data"),
      split=manifest.get("split", "test"),
  )


def stroke_labels(stroke_set: StrokeSet) -> np.ndarray:
  """Class label of each stroke's source, int32 [N].

  Re-reads the sources from the manifest's data source and checks they are
  the manifest's images. Without a recorded data source, every label is 0
  (with a warning): a class-conditional model then edits as if every image
  were of class 0.
  """
  n = len(stroke_set)
  if stroke_set.data_config is None:
    warnings.warn(
        f"{stroke_set.manifest_path} records no data source "
        "('data'): using class label 0 for every stroke."
    )
    return np.zeros(n, np.int32)
  indices_N = stroke_set.image_indices_N
  if np.any(indices_N < 0):
    raise ValueError(
        f"{stroke_set.manifest_path} records a data source but "
        f"{np.sum(indices_N < 0)} entries lack an image_index."
    )
  unique, inverse = np.unique(indices_N, return_inverse=True)
  images, labels = data.get_source(
      stroke_set.data_config, stroke_set.split
  ).get(unique)
  mismatch = np.any(
      images_lib.to_float(images)[inverse] != stroke_set.sources_NxHxWx3,
      axis=(1, 2, 3),
  )
  if mismatch.any():
    ids = np.array(stroke_set.ids)[mismatch][:5].tolist()
    raise ValueError(
        f"The sources of strokes {ids} differ from images "
        f"{indices_N[mismatch][:5].tolist()} of the manifest's data source "
        f"({stroke_set.data_config.get('name')!r}, split "
        f"{stroke_set.split!r}), so their labels are unknown. Remove 'data' "
        "from the manifest to use label 0."
    )
  return labels[inverse].astype(np.int32)


def real_images(
    stroke_set: StrokeSet,
    fallback_data_config: Mapping[str, Any],
    split: str,
    num: int,
) -> np.ndarray:
  """Held-out real images for SWD, float32 [num, H, W, 3].

  From the manifest's data source (else `fallback_data_config`) at `split`,
  in index order, skipping the stroke sources when `split` is the
  manifest's split of the same source.
  """
  config = stroke_set.data_config or fallback_data_config
  source = data.get_source(config, split)
  candidates = np.arange(len(source))
  if stroke_set.data_config is not None and split == stroke_set.split:
    candidates = np.setdiff1d(candidates, stroke_set.image_indices_N)
  if len(candidates) < num:
    raise ValueError(
        f"Asked for {num} real images but the {split!r} split of "
        f"{config['name']!r} has {len(candidates)} besides the "
        "stroke sources."
    )
  images, _ = source.get(candidates[:num])
  if images.shape[1] != stroke_set.image_size:
    raise ValueError(
        f"Real images are {images.shape[1]} px but the strokes "
        f"are {stroke_set.image_size} px."
    )
  return images_lib.to_float(images)


# ---------------------------------------------------------------------------
# Running edits.


def output_path(out_dir: str | os.PathLike, variant: str, knob: float) -> str:
  return os.path.join(out_dir, "edits", variant, f"knob_{knob:g}.npz")


def png_dir(npz_path: str) -> str:
  return npz_path.removesuffix(".npz")


def save_outputs(
    path: str,
    outputs: Mapping[str, np.ndarray],
    stroke_set: StrokeSet,
    *,
    seed: int,
    batch_size: int,
) -> None:
  """Writes the PNGs, then the .npz atomically (its presence = complete)."""
  pngs = png_dir(path)
  os.makedirs(pngs, exist_ok=True)
  for stroke_id, image in zip(stroke_set.ids, outputs["images"]):
    images_lib.save_png(
        images_lib.to_float(image), os.path.join(pngs, f"{stroke_id}.png")
    )
  with files.atomic_path(path) as tmp:
    np.savez(
        tmp,
        **outputs,
        ids=np.array(stroke_set.ids),
        seed=seed,
        batch_size=batch_size,
        version=OUTPUTS_VERSION,
    )


RUN_NAME = "run.json"


def claim_out_dir(out_dir: str, identity: Mapping[str, Any]) -> None:
  """Records which strokes, models and edit settings `out_dir` holds edits
  of, or raises ValueError naming both when it holds another run's (whose
  outputs would otherwise be resumed as this run's)."""
  path = os.path.join(out_dir, RUN_NAME)
  identity = json.loads(json.dumps(identity))  # Tuples as lists.
  differ = files.differing_keys(path, identity)
  if differ:
    key = differ[0]
    found = files.read_json(path, "Run record")
    raise ValueError(
        f"{out_dir} holds edits of another run: its {key} is "
        f"{found.get(key)!r}, this run's {identity.get(key)!r}. Use "
        "another --out_dir."
    )
  if differ is not None:
    return
  os.makedirs(out_dir, exist_ok=True)
  with files.atomic_path(path) as tmp, open(tmp, "w") as f:
    json.dump(identity, f, indent=1)


def check_outputs(
    path: str, stroke_set: StrokeSet, *, seed: int, batch_size: int
) -> None:
  """Raises ValueError unless a setting's .npz belongs to this run.

  Reads only the small fields (npz members load lazily).
  """
  with np.load(path) as f:
    found = (tuple(f["ids"].tolist()), int(f["seed"]), int(f["batch_size"]))
    version = int(f["version"]) if "version" in f.files else 1
  if version != OUTPUTS_VERSION:
    raise ValueError(
        f"{path} holds outputs of an older decode (version {version}, now "
        f"{OUTPUTS_VERSION}). Use another out_dir or delete the stale "
        "outputs."
    )
  if found != (stroke_set.ids, seed, batch_size):
    raise ValueError(
        f"{path} holds outputs of another run ({len(found[0])} strokes, seed "
        f"{found[1]}, batch size {found[2]}; this run: {len(stroke_set)} "
        f"strokes, seed {seed}, batch size {batch_size}, or different ids). "
        "Use another out_dir or delete the stale outputs."
    )


def load_outputs(
    path: str, stroke_set: StrokeSet, *, seed: int, batch_size: int
) -> dict[str, np.ndarray]:
  """A setting's outputs (see the module doc), checked to be this run's."""
  check_outputs(path, stroke_set, seed=seed, batch_size=batch_size)
  with np.load(path) as f:
    return {name: f[name] for name in ("images", "decoded", "tokens", "edited")}


# ---------------------------------------------------------------------------
# Metrics.


@dataclasses.dataclass(frozen=True)
class SwdSettings:
  """SWD settings (`metrics.swd_descriptors` / `swd_from_descriptors`)."""

  num_descriptors: int = 128
  min_resolution: int = 16
  num_projections: int = 512
  folds: int = 5
  seed: int = 0

  def descriptors(self, images_NxHxWx3) -> list[np.ndarray]:
    return metrics.swd_descriptors(
        images_NxHxWx3,
        self.seed,
        num_descriptors=self.num_descriptors,
        min_resolution=self.min_resolution,
    )

  def fold_distances(
      self,
      descriptors: Sequence[np.ndarray],
      real_descriptors: Sequence[np.ndarray],
  ) -> list[float]:
    """SWD of fold f of a set to fold f of the real set, for every fold."""
    per_fold = [[], []]
    for side, levels in enumerate((descriptors, real_descriptors)):
      num_images = len(levels[0]) // self.num_descriptors
      if num_images < self.folds:
        raise ValueError(
            f"SWD over {self.folds} folds needs at least "
            f"{self.folds} images per set, got {num_images}."
        )
      for fold in np.array_split(np.arange(num_images), self.folds):
        per_fold[side].append(
            [
                level.reshape(num_images, self.num_descriptors, -1)[
                    fold
                ].reshape(len(fold) * self.num_descriptors, -1)
                for level in levels
            ]
        )
    return [
        metrics.swd_from_descriptors(
            a, b, self.seed, num_projections=self.num_projections
        )["mean"]
        for a, b in zip(*per_fold)
    ]


def summarize(values) -> dict[str, Any]:
  """{"mean", "ci", "n"} over the finite values (see the module doc)."""
  values = np.asarray(values, np.float64)
  finite = values[np.isfinite(values)]
  if len(finite) >= 2:
    mean, ci = metrics.mean_ci(finite)
  else:
    mean, ci = (float(finite[0]) if len(finite) else None), None
  return {"mean": mean, "ci": ci, "n": int(len(finite))}


def summarize_paired(values, baseline, clusters) -> dict[str, Any]:
  """Mean of the per-stroke differences values - baseline, with the 95%
  bootstrap interval over source images (`clusters`), on the strokes where
  both are finite: {"mean", "lo", "hi", "n"}."""
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
  mean, low, high = metrics.cluster_bootstrap_ci(diff[finite], clusters)
  return {"mean": mean, "lo": low, "hi": high, "n": n}


def _preservation(
    decoded_NxHxWx3, sources_NxHxWx3, region_NxHxW, psnr_cap: float
) -> tuple[np.ndarray, np.ndarray]:
  """PSNR and L2 outside the region; NaN where the region is everything."""
  valid_N = ~region_NxHxW.all(axis=(1, 2))
  psnr_N = np.full(len(valid_N), np.nan)
  l2_N = np.full(len(valid_N), np.nan)
  if valid_N.any():
    kept = metrics.preservation(
        decoded_NxHxWx3[valid_N],
        sources_NxHxWx3[valid_N],
        region_NxHxW[valid_N],
        psnr_cap=psnr_cap,
    )
    psnr_N[valid_N], l2_N[valid_N] = kept["psnr"], kept["l2"]
  return psnr_N, l2_N


class JudgeScores:
  """Realism under a judge (`judging.Judge`) against held-out real images.

  Per image: the k-NN realism score, whether the judge keeps the source's
  class, and the dense head's entropy (lower = more like the data). Per
  set: judge-KID (x1e3) to the real images, with its spread over subsets.
  Without a judge every value is missing (NaN / None).
  """

  def __init__(
      self,
      judge,
      real_NxHxWx3: np.ndarray,
      sources_NxHxWx3: np.ndarray,
      num_subsets: int = 100,
      seed: int = 0,
  ):
    self.judge, self.num_subsets, self.seed = judge, num_subsets, seed
    self.real_features = self.source_labels = None
    if judge is not None:
      self.real_features = judge.features(real_NxHxWx3)
      self.source_labels = judge.labels(sources_NxHxWx3)

  def realism(self, images_NxHxWx3) -> np.ndarray:
    if self.judge is None:
      return np.full(len(images_NxHxWx3), np.nan)
    return judging.realism_scores(
        self.judge.features(images_NxHxWx3), self.real_features
    )

  def class_kept(self, images_NxHxWx3) -> np.ndarray:
    """1.0 where the judge labels image i as it labels source i, [N]."""
    if self.judge is None:
      return np.full(len(images_NxHxWx3), np.nan)
    return (self.judge.labels(images_NxHxWx3) == self.source_labels).astype(
        np.float64
    )

  def entropy(self, images_NxHxWx3) -> np.ndarray:
    if self.judge is None or not self.judge.has_maps:
      return np.full(len(images_NxHxWx3), np.nan)
    return self.judge.map_entropy(images_NxHxWx3)

  def kid(self, images_NxHxWx3) -> dict[str, Any]:
    """{"mean", "ci": None, "std" (over subsets of half the images), "n"},
    x1e3."""
    if self.judge is None:
      return {"mean": None, "ci": None, "std": None, "n": 0}
    mean, std = judging.kid_with_spread(
        self.judge.features(images_NxHxWx3),
        self.real_features,
        num_subsets=self.num_subsets,
        rng=self.seed,
    )
    return {
        "mean": 1e3 * mean,
        "ci": None,
        "std": 1e3 * std,
        "n": len(images_NxHxWx3),
    }


def stroke_metrics(
    outputs: Mapping[str, np.ndarray],
    stroke_set: StrokeSet,
    judge_scores: JudgeScores,
    *,
    psnr_cap: float = PSNR_CAP,
) -> dict[str, np.ndarray]:
  """Per-stroke metrics of one setting: PER_STROKE_METRICS -> float64 [N]."""
  images = images_lib.to_float(outputs["images"])
  decoded = images_lib.to_float(outputs["decoded"])
  faithful = metrics.faithfulness(
      images, stroke_set.strokes_NxHxWx3, stroke_set.masks_NxHxW
  )
  region_NxHxW = regions.token_to_pixel_mask(
      outputs["edited"], stroke_set.image_size
  )
  psnr_N, l2_N = _preservation(
      decoded, stroke_set.sources_NxHxWx3, region_NxHxW, psnr_cap
  )
  return {
      "l2": faithful["l2"],
      "l2_stroke": faithful["l2_stroke"],
      "psnr_preserve": psnr_N,
      "l2_preserve": l2_N,
      "realism": judge_scores.realism(images),
      "class_kept": judge_scores.class_kept(images),
      "judge_entropy": judge_scores.entropy(images),
  }


def set_metrics(
    images_NxHxWx3,
    swd: SwdSettings,
    real_descriptors,
    judge_scores: JudgeScores,
) -> dict[str, dict[str, Any]]:
  """Summaries of the set-level metrics (SWD over folds, judge-KID)."""
  folds = swd.fold_distances(swd.descriptors(images_NxHxWx3), real_descriptors)
  return {
      "swd": dict(summarize(folds), folds=folds),
      "judge_kid": judge_scores.kid(images_NxHxWx3),
  }


def reference_metrics(
    stroke_set: StrokeSet,
    real_descriptors,
    swd: SwdSettings,
    judge_scores: JudgeScores,
) -> dict[str, dict[str, Any]]:
  """REFERENCE_METRICS of the sources and of the stroke images themselves."""
  references = {}
  for name, images in (
      ("source", stroke_set.sources_NxHxWx3),
      ("stroke", stroke_set.strokes_NxHxWx3),
  ):
    faithful = metrics.faithfulness(
        images, stroke_set.strokes_NxHxWx3, stroke_set.masks_NxHxW
    )
    sets = set_metrics(images, swd, real_descriptors, judge_scores)
    references[name] = {
        "l2": summarize(faithful["l2"]),
        "l2_stroke": summarize(faithful["l2_stroke"]),
        "swd": summarize(sets["swd"]["folds"]),
        "realism": summarize(judge_scores.realism(images)),
        "class_kept": summarize(judge_scores.class_kept(images)),
        "judge_entropy": summarize(judge_scores.entropy(images)),
        "judge_kid": sets["judge_kid"],
    }
  return references


def _json_floats(values) -> list[float | None]:
  return [float(v) if np.isfinite(v) else None for v in values]


def setting_result(
    variant: str,
    knob: float,
    npz_path: str,
    root: str,
    per_stroke: Mapping[str, np.ndarray],
    sets: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
  """One entry of results["results"] (the paired ones are filled later)."""
  summaries = {name: summarize(per_stroke[name]) for name in PER_STROKE_METRICS}
  summaries["swd"] = summarize(sets["swd"]["folds"])
  summaries["judge_kid"] = sets["judge_kid"]
  swd_folds = sets["swd"]["folds"]
  return {
      "variant": variant,
      "knob": float(knob),
      "knob_name": knob_name(variant),
      "outputs": os.path.relpath(npz_path, root),
      "pngs": os.path.relpath(png_dir(npz_path), root),
      "metrics": summaries,
      "paired_vs_none": {},
      "paired_vs_sdedit": {},
      "per_stroke": {
          name: _json_floats(per_stroke[name]) for name in PER_STROKE_METRICS
      },
      "swd_folds": [float(v) for v in swd_folds],
  }


def _per_stroke(result, name: str) -> np.ndarray:
  return np.array(
      [np.nan if v is None else v for v in result["per_stroke"][name]],
      np.float64,
  )


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
  faithful_N = _per_stroke(result, MATCH_METRIC)
  curve_KxN = np.stack([_per_stroke(r, MATCH_METRIC) for r in sdedit_results])
  out = {"metrics": {}}
  for name in PER_STROKE_METRICS:
    values_N = _per_stroke(result, name)
    sdedit_KxN = np.stack([_per_stroke(r, name) for r in sdedit_results])
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
            metrics.cluster_bootstrap_weights(
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


def baselines_of(variant: str) -> tuple[str, str]:
  """The settings a variant's paired differences compare with: (the
  unguided decode, the token-SDEdit curve) of the same transformer. The
  tuned transformer's unguided decode compares with the base one's (the
  fine-tune's own effect)."""
  if variant == "none" + TUNED:
    return "none", ""
  tuned = variant == "iterative" or variant.endswith(TUNED)
  suffix = TUNED if tuned else ""
  return "none" + suffix, "sdedit" + suffix


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
    none_name, sdedit_name = baselines_of(result["variant"])
    baseline = by_variant.get(none_name, [None])[0]
    if baseline is not None and result is not baseline:
      result["paired_vs_none"] = {
          name: summarize_paired(
              _per_stroke(result, name), _per_stroke(baseline, name), clusters_N
          )
          for name in PER_STROKE_METRICS
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
  clusters_N = stroke_clusters(
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
              name: summarize_paired(
                  _per_stroke(r, name),
                  _per_stroke(by_setting[(r["variant"], r["knob"])], name),
                  clusters_N,
              )
              for name in PER_STROKE_METRICS
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


def score_settings(
    stroke_set: StrokeSet,
    settings: Sequence[tuple[str, float]],
    *,
    out_dir: str,
    seed: int,
    batch_size: int,
    swd: SwdSettings,
    real_NxHxWx3: np.ndarray,
    judge=None,
):
  """Scores the saved outputs of every setting.

  Args:
    stroke_set: the strokes.
    settings: (setting name, knob) pairs whose outputs are in `out_dir`.
    out_dir: the run's output folder (paths in the entries are relative).
    seed, batch_size: those of the run (checked against the outputs).
    swd: SWD settings.
    real_NxHxWx3: held-out real images in [0, 1].
    judge: a `judging.Judge` of the data, or None (no judge metrics).

  Returns:
    (results entries, references) of the results schema.
  """
  real_descriptors = swd.descriptors(real_NxHxWx3)
  judge_scores = JudgeScores(
      judge, real_NxHxWx3, stroke_set.sources_NxHxWx3, seed=seed
  )
  progress = progress_lib.Progress(len(settings))
  entries = []
  for variant, knob in settings:
    path = output_path(out_dir, variant, knob)
    outputs = load_outputs(path, stroke_set, seed=seed, batch_size=batch_size)
    per_stroke = stroke_metrics(outputs, stroke_set, judge_scores)
    sets = set_metrics(
        images_lib.to_float(outputs["images"]),
        swd,
        real_descriptors,
        judge_scores,
    )
    entries.append(
        setting_result(variant, knob, path, out_dir, per_stroke, sets)
    )
    progress.step(f"scored {variant} {knob_name(variant)}={knob:g}")
  add_paired_differences(entries, stroke_clusters(stroke_set.image_indices_N))
  return entries, reference_metrics(
      stroke_set, real_descriptors, swd, judge_scores
  )


def stroke_clusters(image_indices_N) -> np.ndarray:
  """Source image of each stroke (its own cluster where unrecorded: index
  < 0), [N]."""
  indices_N = np.asarray(image_indices_N)
  return np.where(indices_N >= 0, indices_N, -1 - np.arange(len(indices_N)))


# ---------------------------------------------------------------------------
# Results files.


def results_dict(
    stroke_set: StrokeSet,
    labels_N: np.ndarray,
    *,
    seed: int,
    batch_size: int,
    models: Mapping[str, str | None],
    edit_settings: Mapping[str, Any],
    swd: Mapping[str, Any],
    skipped: Mapping[str, str],
    references: Mapping[str, Any],
    entries: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
  """Assembles the results JSON object (schema in the module doc)."""
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


_TOP_LEVEL_KEYS = (
    "schema_version",
    "manifest",
    "num_strokes",
    "image_size",
    "strokes",
    "seed",
    "batch_size",
    "models",
    "edit_settings",
    "swd",
    "psnr_cap",
    "skipped",
    "references",
    "results",
)
_RESULT_KEYS = (
    "variant",
    "knob",
    "knob_name",
    "outputs",
    "pngs",
    "metrics",
    "paired_vs_none",
    "paired_vs_sdedit",
    "per_stroke",
    "swd_folds",
)


def write_results(out_dir: str, results: Mapping[str, Any]) -> tuple[str, str]:
  """Writes results.json (atomically) and metrics.csv; returns their paths."""
  json_path = os.path.join(out_dir, RESULTS_NAME)
  with files.atomic_path(json_path) as tmp, open(tmp, "w") as f:
    json.dump(results, f, indent=1)
  csv_path = os.path.join(out_dir, CSV_NAME)
  fields = (
      ["variant", "knob"]
      + [f"{m}_{s}" for m in METRICS for s in ("mean", "ci", "n")]
      + ["judge_kid_std"]
  )
  with open(csv_path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    for result in results["results"]:
      row = {"variant": result["variant"], "knob": result["knob"]}
      for name, summary in result["metrics"].items():
        row.update({f"{name}_{s}": summary[s] for s in ("mean", "ci", "n")})
      row["judge_kid_std"] = result["metrics"]["judge_kid"].get("std")
      writer.writerow(row)
  return json_path, csv_path


def load_results(path: str | os.PathLike) -> dict[str, Any]:
  """Reads results.json and checks the schema's keys and version."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(
        f"No results file {path}: run scripts/run_edits.py first."
    )
  results = files.read_json(path, "Results file")
  if not isinstance(results, dict):
    results = {}
  missing = [k for k in _TOP_LEVEL_KEYS if k not in results]
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
    missing = [k for k in _RESULT_KEYS if k not in result]
    if missing:
      raise ValueError(f"Entry {i} of {path}'s results lacks {missing}.")
  return results


def find_setting(
    results: Mapping[str, Any], variant: str, knob: float
) -> dict[str, Any] | None:
  """The result of `variant` whose knob is closest to `knob`, if any ran."""
  candidates = [r for r in results["results"] if r["variant"] == variant]
  if not candidates:
    return None
  return min(candidates, key=lambda r: (abs(r["knob"] - knob), r["knob"]))
