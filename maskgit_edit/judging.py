"""Sample and edit quality measured with a trained judge (`trainers/judge.py`).

The judge's penultimate features stand in for Inception's on a small
dataset: judge-FID and judge-KID compare two image sets, the k-NN realism
score (Kynkäänniemi et al. 2019) rates one image against the real set, and
the judge's labels give the class accuracy of class-conditional samples.
A judge with a dense head (shapes: what covers each cell) also gives its
map entropy per image: how unsure it is, cell by cell, of what it sees.
On shapes this per-image score separates flat paint from data where the
k-NN realism score does not (docs/shapes_recipe.md), so edits are paired on
it image by image.
"""

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_edit import artefacts
from maskgit_edit import batching
from maskgit_edit import data as data_lib
from maskgit_edit import feature_distances
from maskgit_edit import images as images_lib
from maskgit_edit import intervals
from maskgit_edit.models import judge as judge_lib

JUDGE_NAME = "judge"


class Judge:
  """A finished judge run: features and labels of float images in [0, 1]."""

  def __init__(
      self, model: judge_lib.Judge, params, run_config, batch_size: int = 250
  ):
    self.model, self.params, self.run_config = model, params, run_config
    self.image_size = run_config.data.image_size
    self.batch_size = batch_size
    self._features = jax.jit(
        lambda p, x: model.apply({"params": p}, x, method=model.features)
    )
    # A judge trained on mirrored images (judge.flip) labels an image by
    # its logits and its mirror's, averaged.
    mirrored = run_config.get("judge", {}).get("flip", False)
    self._logits = jax.jit(
        lambda p, x: model.apply({"params": p}, x)
        + (model.apply({"params": p}, x[:, :, ::-1]) if mirrored else 0.0)
    )
    self._map_entropy = jax.jit(
        lambda p, x: _mean_entropy(
            model.apply({"params": p}, x, method=model.features_and_maps)[1]
        )
    )

  @classmethod
  def from_workdir(cls, workdir: str, data_config=None) -> "Judge":
    """Loads a judge run; `data_config` (if given) must match its data.

    Raises:
      ValueError: the judge was trained on other data (name or image size)
        than `data_config` describes.
    """
    config = artefacts.run_of_kind(workdir, "judge", ("judge",))
    if data_config is not None:
      for key in ("name", "image_size"):
        if config.data[key] != data_config[key]:
          raise ValueError(
              f"Judge {workdir!r} was trained on data {key} "
              f"{config.data[key]!r}, but the images to judge have "
              f"{data_config[key]!r}."
          )
    num_classes = data_lib.get_source(config.data, "test").num_classes
    model = judge_lib.build_judge(config.judge, num_classes)
    size = config.data.image_size
    abstract = jax.eval_shape(
        model.init, jax.random.key(0), jnp.zeros((1, size, size, 3))
    )["params"]
    return cls(
        model, artefacts.load_params(workdir, JUDGE_NAME, abstract), config
    )

  def _batched(self, fn, images_NxHxWx3) -> np.ndarray:
    images = np.asarray(images_NxHxWx3)
    if images.dtype == np.uint8:
      images = images_lib.to_float(images)
    if images.ndim != 4 or images.shape[1:] != (
        self.image_size,
        self.image_size,
        3,
    ):
      raise ValueError(
          f"The judge takes [N, {self.image_size}, {self.image_size}, 3] "
          f"images, got shape {images.shape}."
      )
    return batching.map_in_batches(
        lambda x: fn(self.params, x), images, self.batch_size
    )

  def features(self, images_NxHxWx3) -> np.ndarray:
    """uint8 or float [0, 1] images -> float64 features [N, D]."""
    return self._batched(self._features, images_NxHxWx3).astype(np.float64)

  def labels(self, images_NxHxWx3) -> np.ndarray:
    """The judge's class for each image, int [N]."""
    return np.argmax(self._batched(self._logits, images_NxHxWx3), -1)

  @property
  def has_maps(self) -> bool:
    return bool(self.model.map_classes)

  def map_entropy(self, images_NxHxWx3) -> np.ndarray:
    """Mean over cells of the dense head's entropy (nats), float [N]; lower
    is more like the real data. Needs a judge with a dense head."""
    if not self.has_maps:
      raise ValueError("This judge has no dense head (judge.map_classes = 0).")
    return self._batched(self._map_entropy, images_NxHxWx3).astype(np.float64)


def _mean_entropy(logits_BxhxwxM):
  log_p = jax.nn.log_softmax(logits_BxhxwxM, -1)
  return -jnp.sum(jnp.exp(log_p) * log_p, -1).mean(axis=(1, 2))


def set_difference(
    features_a_NxD,
    features_b_MxD,
    realism_a_N,
    realism_b_M,
    reference_RxD,
    *,
    paired: bool = False,
    num_bootstrap: int = 200,
    confidence: float = 0.95,
    rng: int = 0,
) -> dict:
  """Judge-FID and mean realism of set b minus set a, with bootstrap intervals.

  One FID has no valid bootstrap interval: resampling with replacement
  duplicates images, which shrinks the covariance and biases every
  resampled FID upwards, often past the estimate itself. The bias is nearly
  the same for two sets of one size against one reference, so it cancels
  in their difference, whose percentile interval is what orders sets. The
  reference is held fixed, as it is shared by every set compared with it.

  Args:
    features_a_NxD, features_b_MxD: judge features of the two sets.
    realism_a_N, realism_b_M: their per-image realism scores.
    reference_RxD: judge features of the real reference images.
    paired: row i of a and of b show the same item (an image and its
      reconstruction; N = M), so rows are resampled together.
    num_bootstrap, confidence: the bootstrap.
    rng: seed.

  Returns:
    {"fid", "fid_low", "fid_high", "realism", "realism_low",
    "realism_high"}: b - a and its interval.
  """
  if paired and len(features_a_NxD) != len(features_b_MxD):
    raise ValueError(
        f"Paired sets need one size, got {len(features_a_NxD)} and "
        f"{len(features_b_MxD)}."
    )
  rng = np.random.default_rng(rng)
  mu_r = reference_RxD.mean(0)
  sigma_r = np.cov(reference_RxD, rowvar=False)

  def fid(features):
    return feature_distances.frechet_distance(
        features.mean(0), np.cov(features, rowvar=False), mu_r, sigma_r
    )

  realism_a_N = np.asarray(realism_a_N, np.float64)
  realism_b_M = np.asarray(realism_b_M, np.float64)
  fids, realisms = [], []
  for _ in range(num_bootstrap):
    pick_a = rng.integers(0, len(features_a_NxD), len(features_a_NxD))
    pick_b = (
        pick_a
        if paired
        else rng.integers(0, len(features_b_MxD), len(features_b_MxD))
    )
    fids.append(fid(features_b_MxD[pick_b]) - fid(features_a_NxD[pick_a]))
    realisms.append(realism_b_M[pick_b].mean() - realism_a_N[pick_a].mean())
  tail = 50 * (1 - confidence)
  out = {
      "fid": fid(features_b_MxD) - fid(features_a_NxD),
      "realism": float(realism_b_M.mean() - realism_a_N.mean()),
  }
  for name, values in (("fid", fids), ("realism", realisms)):
    low, high = np.percentile(values, [tail, 100 - tail])
    out[f"{name}_low"], out[f"{name}_high"] = float(low), float(high)
  return out


def kid_with_spread(
    features_NxD, reference_RxD, *, num_subsets: int = 100, rng: int = 0
) -> tuple[float, float]:
  """Judge-KID (mean, std) over subsets of half the smaller set, so that
  the subsets differ and the std shows the estimate's spread."""
  size = max(2, min(len(features_NxD), len(reference_RxD)) // 2)
  return feature_distances.kid_from_features(
      features_NxD,
      reference_RxD,
      num_subsets=num_subsets,
      subset_size=size,
      rng=rng,
  )


def knn_radii(reference_RxD, k: int) -> np.ndarray:
  """Distance of each reference feature to its k-th nearest other one, [R]."""
  distances_RxR = _distances(reference_RxD, reference_RxD)
  # Column 0 of the sorted row is the point itself (distance 0).
  return np.sort(distances_RxR, axis=1)[:, k]


def realism_scores(
    features_NxD, reference_RxD, *, k: int = 3, keep_quantile: float = 0.5
) -> np.ndarray:
  """k-NN realism score of each image (Kynkäänniemi et al. 2019), [N].

  max over real features r of radius_k(r) / |f - r|, over the real features
  whose k-NN radius is at most the `keep_quantile` quantile (the paper's
  pruning of outliers, whose large balls would accept anything). Scores >= 1
  lie inside some real feature's k-NN ball; higher is more realistic.
  """
  radii_R = knn_radii(reference_RxD, k)
  keep_R = radii_R <= np.quantile(radii_R, keep_quantile)
  distances_NxR = _distances(features_NxD, reference_RxD[keep_R])
  return np.max(
      radii_R[keep_R][None, :] / np.maximum(distances_NxR, 1e-12), axis=1
  )


def _distances(a_NxD, b_MxD) -> np.ndarray:
  squared = (
      np.sum(a_NxD**2, 1)[:, None]
      + np.sum(b_MxD**2, 1)[None, :]
      - 2.0 * a_NxD @ b_MxD.T
  )
  return np.sqrt(np.maximum(squared, 0.0))


def set_quality(
    features_NxD,
    reference_RxD,
    *,
    realism_reference_RxD=None,
    map_entropy_N=None,
    num_kid_subsets: int = 100,
    rng: int = 0,
) -> dict:
  """Judge-FID, judge-KID (mean, std over subsets: the estimate's spread,
  not an interval), the mean realism score and (if given) the mean map
  entropy, each with its t-interval, of one image set. Intervals that order
  two sets come from `set_difference`.

  `realism_reference_RxD` (default: the reference) holds the real features
  whose k-NN balls score realism; keep it to a few thousand (it costs
  R^2 distances).
  """
  fid = feature_distances.fid_from_features(features_NxD, reference_RxD)
  kid, kid_std = kid_with_spread(
      features_NxD, reference_RxD, num_subsets=num_kid_subsets, rng=rng
  )
  realism_N = realism_scores(
      features_NxD,
      reference_RxD if realism_reference_RxD is None else realism_reference_RxD,
  )
  realism, realism_half = intervals.mean_ci(realism_N)
  out = {
      "num_images": len(features_NxD),
      "fid": fid,
      "kid": kid,
      "kid_std": kid_std,
      "realism": realism,
      "realism_ci": realism_half,
      "realism_scores": realism_N.tolist(),
  }
  if map_entropy_N is not None:
    entropy, entropy_half = intervals.mean_ci(map_entropy_N)
    out.update(
        map_entropy=entropy,
        map_entropy_ci=entropy_half,
        map_entropies=np.asarray(map_entropy_N).tolist(),
    )
  return out
