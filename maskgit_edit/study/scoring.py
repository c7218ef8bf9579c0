"""Metrics of a setting's outputs, per stroke and per set.

Metrics per stroke (`schema.PER_STROKE_METRICS`; the judge's are NaN
without a judge):
  l2, l2_stroke    faithfulness: SDEdit L2 of the composited output to the
                   stroke image, whole image / inside the stroke mask
                   (`metrics.faithfulness`); lower = more faithful.
  psnr_preserve,   preservation: PSNR (capped at `schema.PSNR_CAP`) / L2 of the
  l2_preserve      decoded output (before compositing, which copies the
                   source outside the edited region exactly) to the source
                   outside the edited token region upsampled to pixels
                   (`metrics.preservation`); NaN (left out of the summary)
                   for a stroke whose edited region covers the whole image.
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
                   (`swd_lib.swd_descriptors`) are computed once for the
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

Summaries: mean and 95% t-interval half-width (`intervals.mean_ci`) over the
finite values (`schema.summarize`). Paired differences: `study.pairing`.
"""

from collections.abc import Mapping, Sequence
import dataclasses
import os
from typing import Any

import numpy as np

from maskgit_edit import images as images_lib
from maskgit_edit import judging
from maskgit_edit import metrics
from maskgit_edit import progress as progress_lib
from maskgit_edit import regions
from maskgit_edit import swd as swd_lib
from maskgit_edit.study import outputs as outputs_lib
from maskgit_edit.study import pairing
from maskgit_edit.study import schema
from maskgit_edit.study import settings as settings_lib
from maskgit_edit.study import stroke_sets as stroke_sets_lib

# The SWD patch side of Karras et al.
_PATCH_SIZE = 7


@dataclasses.dataclass(frozen=True)
class SwdSettings:
  """SWD settings (`swd_lib.swd_descriptors` / `swd_from_descriptors`)."""

  num_descriptors: int = 128
  min_resolution: int = 16
  num_projections: int = 512
  folds: int = 5
  seed: int = 0

  @classmethod
  def for_image_size(
      cls,
      image_size: int,
      *,
      min_resolution: int | None = None,
      num_descriptors: int | None = None,
      **fields,
  ) -> "SwdSettings":
    """Settings that suit `image_size` px images, unless given.

    Karras et al.'s coarsest level of 16 px and 128 7x7 patches per image
    and level leave a 16 px image one pyramid level and draw 128 patches
    from only 10x10 positions. Here the coarsest level is min(16, H / 2) px
    (>= the 7 px patch), so 16 px images get two levels (16, 8) and 32 px
    images the original two; below 64 px, 32 patches per image are drawn.
    """
    if min_resolution is None:
      min_resolution = max(_PATCH_SIZE, min(16, image_size // 2))
    if num_descriptors is None:
      num_descriptors = 128 if image_size >= 64 else 32
    if image_size < min_resolution:
      raise ValueError(
          f"Images of {image_size} px are smaller than the SWD "
          f"coarsest level of {min_resolution} px."
      )
    return cls(
        num_descriptors=num_descriptors, min_resolution=min_resolution, **fields
    )

  def descriptors(self, images_NxHxWx3) -> list[np.ndarray]:
    return swd_lib.swd_descriptors(
        images_NxHxWx3,
        self.seed,
        num_descriptors=self.num_descriptors,
        min_resolution=self.min_resolution,
    )

  def distance(self, images_NxHxWx3, real_descriptors) -> float:
    """SWD (x1e3) of a whole image set to the real set."""
    return swd_lib.swd_from_descriptors(
        self.descriptors(images_NxHxWx3),
        real_descriptors,
        self.seed,
        num_projections=self.num_projections,
    )["mean"]

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
        swd_lib.swd_from_descriptors(
            a, b, self.seed, num_projections=self.num_projections
        )["mean"]
        for a, b in zip(*per_fold)
    ]


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
    stroke_set: stroke_sets_lib.StrokeSet,
    judge_scores: JudgeScores,
    *,
    psnr_cap: float = schema.PSNR_CAP,
) -> dict[str, np.ndarray]:
  """Per-stroke metrics of one setting: schema.PER_STROKE_METRICS -> float64 [N]."""
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
      "swd": dict(schema.summarize(folds), folds=folds),
      "judge_kid": judge_scores.kid(images_NxHxWx3),
  }


def reference_metrics(
    stroke_set: stroke_sets_lib.StrokeSet,
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
        "l2": schema.summarize(faithful["l2"]),
        "l2_stroke": schema.summarize(faithful["l2_stroke"]),
        "swd": schema.summarize(sets["swd"]["folds"]),
        "realism": schema.summarize(judge_scores.realism(images)),
        "class_kept": schema.summarize(judge_scores.class_kept(images)),
        "judge_entropy": schema.summarize(judge_scores.entropy(images)),
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
  summaries = {
      name: schema.summarize(per_stroke[name])
      for name in schema.PER_STROKE_METRICS
  }
  summaries["swd"] = schema.summarize(sets["swd"]["folds"])
  summaries["judge_kid"] = sets["judge_kid"]
  swd_folds = sets["swd"]["folds"]
  return {
      "variant": variant,
      "knob": float(knob),
      "knob_name": settings_lib.knob_name(variant),
      "outputs": os.path.relpath(npz_path, root),
      "pngs": os.path.relpath(outputs_lib.png_dir(npz_path), root),
      "metrics": summaries,
      "paired_vs_none": {},
      "paired_vs_sdedit": {},
      "per_stroke": {
          name: _json_floats(per_stroke[name])
          for name in schema.PER_STROKE_METRICS
      },
      "swd_folds": [float(v) for v in swd_folds],
  }


def score_settings(
    stroke_set: stroke_sets_lib.StrokeSet,
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
    path = outputs_lib.output_path(out_dir, variant, knob)
    outputs = outputs_lib.load_outputs(
        path, stroke_set, seed=seed, batch_size=batch_size
    )
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
    progress.step(
        f"scored {variant} {settings_lib.knob_name(variant)}={knob:g}"
    )
  pairing.add_paired_differences(
      entries, stroke_sets_lib.stroke_clusters(stroke_set.image_indices_N)
  )
  return entries, reference_metrics(
      stroke_set, real_descriptors, swd, judge_scores
  )
