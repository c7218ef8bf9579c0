"""Sliced Wasserstein distance (Karras et al. 2018, "Progressive Growing of
GANs"): Laplacian-pyramid patch descriptors compared by 1-D Wasserstein
distances along random directions.

Images are float arrays in [0, 1], [N, H, W, C]; results are float64 numpy
arrays or Python floats, reported x1e3 (`SWD_SCALE`) as in the original.
"""

from collections.abc import Sequence

import numpy as np
import scipy.ndimage

# The 5-tap binomial filter of cv2.pyrDown, applied separably.
_BLUR_TAPS = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
# Directions projected at once; only bounds memory (the mean over all
# directions does not depend on it, so it equals the original's 4 x 128).
_PROJECTION_CHUNK = 128
# The original reports SWD x 1e3.
SWD_SCALE = 1e3


def _blur(images_NxHxWxC: np.ndarray, gain: float = 1.0) -> np.ndarray:
  taps = _BLUR_TAPS * gain
  # 'mirror' (d c b | a b c d) is cv2's default border, BORDER_REFLECT_101.
  out = scipy.ndimage.convolve1d(images_NxHxWxC, taps, axis=1, mode="mirror")
  return scipy.ndimage.convolve1d(out, taps, axis=2, mode="mirror")


def _pyr_down(images_NxHxWxC: np.ndarray) -> np.ndarray:
  return _blur(images_NxHxWxC)[:, ::2, ::2]


def _pyr_up(images_NxhxwxC: np.ndarray, height: int, width: int) -> np.ndarray:
  n, h, w, c = images_NxhxwxC.shape
  up = np.zeros((n, 2 * h, 2 * w, c), images_NxhxwxC.dtype)
  up[:, ::2, ::2] = images_NxhxwxC
  # Zero-stuffing keeps 1 value in 4; a gain of 2 per axis restores the level.
  return _blur(up, gain=2.0)[:, :height, :width]


def laplacian_pyramid(images_NxHxWxC, num_levels: int) -> list[np.ndarray]:
  """Laplacian pyramid, finest level first.

  Level i < num_levels - 1 is the band-pass image(i) - up(down(image(i)));
  the last level is the blurred, downsampled residual. Sizes halve per level
  (rounding up).

  Args:
    images_NxHxWxC: images, any float range.
    num_levels: number of levels, >= 1.

  Returns:
    num_levels float64 arrays [N, ceil(H / 2^i), ceil(W / 2^i), C].
  """
  if num_levels < 1:
    raise ValueError(f"num_levels must be >= 1, got {num_levels}.")
  levels = [np.asarray(images_NxHxWxC, np.float64)]
  for _ in range(num_levels - 1):
    finer = levels[-1]
    coarser = _pyr_down(finer)
    levels[-1] = finer - _pyr_up(coarser, *finer.shape[1:3])
    levels.append(coarser)
  return levels


def swd_num_levels(height: int, width: int, min_resolution: int = 16) -> int:
  """Pyramid levels used by SWD: resolutions S, S/2, ... >= min_resolution.

  S = min(height, width). E.g. 256 px -> 5 levels (256 ... 16), 32 px -> 2.
  """
  size, num_levels = min(height, width), 0
  while size >= min_resolution:
    num_levels += 1
    size //= 2
  return num_levels


def swd_descriptors(
    images_NxHxWxC,
    rng: int | np.random.Generator = 0,
    *,
    num_descriptors: int = 128,
    patch_size: int = 7,
    min_resolution: int = 16,
    batch_size: int = 64,
) -> list[np.ndarray]:
  """Normalised SWD patch descriptors of an image set, one array per level.

  From each pyramid level (see `swd_num_levels`), `num_descriptors` random
  `patch_size` x `patch_size` x C patches per image are taken; each level's set
  is normalised per channel by its own mean and std over all its patches, as in
  the original (a channel constant over the whole set is left at 0). Compute a
  large reference set once and compare with `swd_from_descriptors`.

  Args:
    images_NxHxWxC: images in [0, 1], with min(H, W) >= min_resolution.
    rng: numpy Generator or int seed for the patch positions. Two sets of
      the same shape drawn with equal seeds use the same positions.
    num_descriptors: patches per image and level.
    patch_size: odd patch side in pixels.
    min_resolution: coarsest level resolution; >= patch_size.
    batch_size: images per pyramid computation (bounds memory only; the result
      does not depend on it).

  Returns:
    A list (finest level first) of float32 [N * num_descriptors,
    patch_size * patch_size * C] arrays, rows grouped by image.
  """
  images = np.asarray(images_NxHxWxC)
  if images.ndim != 4 or images.shape[0] == 0:
    raise ValueError(
        f"Expected a non-empty image set [N, H, W, C], got shape {images.shape}."
    )
  if patch_size < 1 or patch_size % 2 == 0:
    raise ValueError(f"patch_size must be odd and positive, got {patch_size}.")
  if min_resolution < patch_size:
    raise ValueError(
        f"min_resolution ({min_resolution}) must be >= patch_size "
        f"({patch_size}) so that patches fit in the coarsest level."
    )
  if num_descriptors < 1 or batch_size < 1:
    raise ValueError(
        f"num_descriptors ({num_descriptors}) and batch_size ({batch_size}) "
        "must be positive."
    )
  n, h, w, _ = images.shape
  num_levels = swd_num_levels(h, w, min_resolution)
  if num_levels == 0:
    raise ValueError(
        f"Images of {h}x{w} px are smaller than min_resolution "
        f"({min_resolution})."
    )
  rng = np.random.default_rng(rng)
  # Positions are drawn for the whole set up front so that they do not depend
  # on batch_size.
  half = patch_size // 2
  centres = []
  level_h, level_w = h, w
  for _ in range(num_levels):
    centres.append(
        (
            rng.integers(half, level_h - half, size=(n, num_descriptors)),
            rng.integers(half, level_w - half, size=(n, num_descriptors)),
        )
    )
    level_h, level_w = -(-level_h // 2), -(-level_w // 2)

  offsets = np.arange(-half, half + 1)
  patches = [[] for _ in range(num_levels)]
  for start in range(0, n, batch_size):
    batch = slice(start, start + batch_size)
    pyramid = laplacian_pyramid(images[batch], num_levels)
    for level, (ys_NxK, xs_NxK) in enumerate(centres):
      rows = np.arange(pyramid[level].shape[0])[:, None, None, None]
      ys = ys_NxK[batch][:, :, None, None] + offsets[:, None]
      xs = xs_NxK[batch][:, :, None, None] + offsets[None, :]
      # [B, K, P, P, C]
      patches[level].append(pyramid[level][rows, ys, xs].astype(np.float32))
  return [_normalise(np.concatenate(level)) for level in patches]


def _normalise(patches_NxKxPxPxC: np.ndarray) -> np.ndarray:
  """Per-channel standardisation over the whole set; flattened descriptors."""
  axes = (0, 1, 2, 3)
  mean_C = patches_NxKxPxPxC.mean(axis=axes, dtype=np.float64)
  std_C = patches_NxKxPxPxC.std(axis=axes, dtype=np.float64)
  std_C = np.where(std_C > 0, std_C, 1.0)
  normalised = ((patches_NxKxPxPxC - mean_C) / std_C).astype(np.float32)
  n, k = patches_NxKxPxPxC.shape[:2]
  return normalised.reshape(n * k, -1)


def _wasserstein_1d(
    sorted_a_AxP: np.ndarray, sorted_b_BxP: np.ndarray
) -> np.ndarray:
  """Exact W1 between empirical 1-D distributions, per column.

  W1 is the integral over t in (0, 1] of |Q_a(t) - Q_b(t)| for the quantile
  functions Q, which are step functions constant between consecutive points
  of the grid {i / A} U {j / B}. With A == B this is the mean absolute
  difference of the sorted values.
  """
  num_a, num_b = len(sorted_a_AxP), len(sorted_b_BxP)
  t = np.union1d(
      np.arange(1, num_a + 1) / num_a, np.arange(1, num_b + 1) / num_b
  )
  widths = np.diff(t, prepend=0.0)
  midpoints = t - widths / 2
  index_a = np.minimum((midpoints * num_a).astype(np.int64), num_a - 1)
  index_b = np.minimum((midpoints * num_b).astype(np.int64), num_b - 1)
  return widths @ np.abs(sorted_a_AxP[index_a] - sorted_b_BxP[index_b])


def _sliced_wasserstein(
    desc_a_AxD: np.ndarray,
    desc_b_BxD: np.ndarray,
    num_projections: int,
    rng: np.random.Generator,
) -> float:
  """Mean over random unit directions of the 1-D W1 of the projections."""
  dim = desc_a_AxD.shape[1]
  total = 0.0
  for start in range(0, num_projections, _PROJECTION_CHUNK):
    count = min(_PROJECTION_CHUNK, num_projections - start)
    dirs_DxP = rng.standard_normal((dim, count))
    dirs_DxP /= np.linalg.norm(dirs_DxP, axis=0, keepdims=True)
    proj_a = np.sort(desc_a_AxD @ dirs_DxP, axis=0)
    proj_b = np.sort(desc_b_BxD @ dirs_DxP, axis=0)
    total += _wasserstein_1d(proj_a, proj_b).sum()
  return total / num_projections


def swd_from_descriptors(
    descriptors_a: Sequence[np.ndarray],
    descriptors_b: Sequence[np.ndarray],
    rng: int | np.random.Generator = 0,
    *,
    num_projections: int = 512,
) -> dict:
  """Sliced Wasserstein distance between two descriptor sets, per level.

  For each level: `num_projections` random unit directions; project both
  sets, sort, and take the exact 1-D Wasserstein-1 distance (the mean absolute
  difference of sorted values when the sets have equal size; unequal sizes are
  supported), averaged over directions. Reported x1e3 (`SWD_SCALE`), as in
  Karras et al. 2018.

  Args:
    descriptors_a: per-level [A_l, D_l] arrays from `swd_descriptors`.
    descriptors_b: per-level [B_l, D_l] arrays with the same levels and D_l.
    rng: numpy Generator or int seed for the directions.
    num_projections: directions per level.

  Returns:
    {"per_level": [float] finest level first, "mean": float} (x1e3).
  """
  if len(descriptors_a) != len(descriptors_b) or not descriptors_a:
    raise ValueError(
        "Descriptor sets must have the same, non-zero number of levels, got "
        f"{len(descriptors_a)} and {len(descriptors_b)}."
    )
  if num_projections < 1:
    raise ValueError(f"num_projections must be >= 1, got {num_projections}.")
  rng = np.random.default_rng(rng)
  per_level = []
  for level, (desc_a, desc_b) in enumerate(zip(descriptors_a, descriptors_b)):
    desc_a, desc_b = np.asarray(desc_a), np.asarray(desc_b)
    if (
        desc_a.ndim != 2
        or desc_b.ndim != 2
        or desc_a.shape[1] != desc_b.shape[1]
        or not len(desc_a)
        or not len(desc_b)
    ):
      raise ValueError(
          f"Level {level}: expected non-empty [A, D] and [B, D] descriptors, "
          f"got shapes {desc_a.shape} and {desc_b.shape}."
      )
    per_level.append(
        float(
            SWD_SCALE
            * _sliced_wasserstein(desc_a, desc_b, num_projections, rng)
        )
    )
  return {"per_level": per_level, "mean": float(np.mean(per_level))}


def swd(
    images_a,
    images_b,
    *,
    rng_seed: int = 0,
    num_descriptors: int = 128,
    patch_size: int = 7,
    num_projections: int = 512,
    min_resolution: int = 16,
) -> dict:
  """Sliced Wasserstein distance between two image sets (Karras et al. 2018).

  Both sets draw patch positions from the same seed, so a set compared with
  itself gives exactly 0. The images' sizes must give the same number of
  levels. See `swd_descriptors` and `swd_from_descriptors`; there the
  reference set can be computed once. Note the per-set channel normalisation
  makes SWD blind to a global per-channel affine colour change.

  Args:
    images_a: [N, H, W, C] images in [0, 1].
    images_b: [M, H', W', C] images in [0, 1].
    rng_seed: seed for patch positions and directions.
    num_descriptors: patches per image and level (128 in the original).
    patch_size: patch side (7 in the original).
    num_projections: random directions per level (512 in the original).
    min_resolution: coarsest pyramid resolution (16 in the original).

  Returns:
    {"per_level": [float] finest level first, "mean": float}, scaled x1e3.
  """
  position_seed, direction_seed = np.random.SeedSequence(rng_seed).spawn(2)
  descriptors = [
      swd_descriptors(
          images,
          np.random.default_rng(position_seed),
          num_descriptors=num_descriptors,
          patch_size=patch_size,
          min_resolution=min_resolution,
      )
      for images in (images_a, images_b)
  ]
  return swd_from_descriptors(
      *descriptors,
      rng=np.random.default_rng(direction_seed),
      num_projections=num_projections,
  )
