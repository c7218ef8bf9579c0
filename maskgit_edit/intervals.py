"""Intervals of reported means: `mean_ci` (a t interval over strokes) and
`cluster_bootstrap_ci` (a bootstrap over source images, for paired
differences whose strokes share a source)."""

import numpy as np
import scipy.special


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
  """Mean and half-width of its two-sided Student-t confidence interval.

  Args:
    values: 1-D finite values (e.g. one metric over strokes), at least 2.
    confidence: coverage in (0, 1).

  Returns:
    (mean, half_width): the interval is mean +- half_width.
  """
  values = np.asarray(values, np.float64)
  if values.ndim != 1 or len(values) < 2:
    raise ValueError(
        f"Expected at least 2 values in a 1-D array, got shape {values.shape}."
    )
  if not np.all(np.isfinite(values)):
    raise ValueError(
        f"{np.sum(~np.isfinite(values))} of {len(values)} values are not "
        "finite (for PSNR of identical images, pass cap=...)."
    )
  if not 0.0 < confidence < 1.0:
    raise ValueError(f"confidence must be in (0, 1), got {confidence}.")
  n = len(values)
  # Student's t quantile (scipy.stats would add a second to every start).
  t = scipy.special.stdtrit(n - 1, 0.5 + confidence / 2.0)
  half_width = t * values.std(ddof=1) / np.sqrt(n)
  return float(values.mean()), float(half_width)


def cluster_bootstrap_ci(
    values_N,
    clusters_N,
    *,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    rng: int | np.random.Generator = 0,
) -> tuple[float, float, float]:
  """Mean and percentile bootstrap interval, resampling whole clusters.

  Strokes of one source image are not independent, so the interval resamples
  source images (clusters) with replacement and takes the mean over all
  strokes of the drawn images.

  Args:
    values_N: 1-D finite values, e.g. per-stroke paired differences.
    clusters_N: the cluster (e.g. source image index) of each value.
    confidence: coverage in (0, 1).
    num_resamples: bootstrap resamples.
    rng: numpy Generator or int seed.

  Returns:
    (mean, low, high).
  """
  values_N = np.asarray(values_N, np.float64)
  clusters_N = np.asarray(clusters_N)
  if values_N.ndim != 1 or values_N.shape != clusters_N.shape:
    raise ValueError(
        f"Need 1-D values and clusters of one shape, got "
        f"{values_N.shape} and {clusters_N.shape}."
    )
  if len(values_N) < 2 or not np.all(np.isfinite(values_N)):
    raise ValueError(
        f"Need at least 2 finite values, got {len(values_N)} "
        f"({np.sum(~np.isfinite(values_N))} not finite)."
    )
  if not 0.0 < confidence < 1.0:
    raise ValueError(f"confidence must be in (0, 1), got {confidence}.")
  weights_RxN = cluster_bootstrap_weights(clusters_N, num_resamples, rng)
  means_R = weights_RxN @ values_N / weights_RxN.sum(1)
  tail = (1.0 - confidence) / 2.0
  low, high = np.quantile(means_R, [tail, 1.0 - tail])
  return float(values_N.mean()), float(low), float(high)


def cluster_bootstrap_weights(
    clusters_N, num_resamples: int, rng: int | np.random.Generator = 0
) -> np.ndarray:
  """A cluster bootstrap as weights on the values, float64 [R, N]: row r
  counts how often resample r drew the cluster of value n (clusters are
  drawn with replacement, as many as there are). A resample's mean of any
  per-value quantity x is weights[r] @ x / weights[r].sum()."""
  _, cluster_N = np.unique(np.asarray(clusters_N), return_inverse=True)
  num_clusters = cluster_N.max() + 1
  draws_RxK = np.random.default_rng(rng).integers(
      num_clusters, size=(num_resamples, num_clusters)
  )
  counts_RxK = np.zeros((num_resamples, num_clusters))
  np.add.at(counts_RxK, (np.arange(num_resamples)[:, None], draws_RxK), 1.0)
  return counts_RxK[:, cluster_N]
