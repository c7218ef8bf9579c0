"""Metrics for stroke-guided edits: faithfulness, preservation, realism, spread.

Everything here is pure numpy/scipy and needs no downloaded weights:

* Faithfulness: `l2_distance` between an edit and its stroke image, SDEdit
  style (sqrt of the summed squared error over pixels and channels in [0, 1]),
  optionally restricted to the stroke mask (`faithfulness` gives both).
* Preservation: `psnr` / `l2_distance` outside the edited region vs the source
  (`preservation`).
* Realism: the sliced Wasserstein distance of Karras et al. 2018 (`swd`, with
  `swd_descriptors` / `swd_from_descriptors` to reuse a reference set), token
  NLL under the transformer (`token_nll`), and FID/KID from features the caller
  supplies (`fid`, `kid`, `frechet_distance`, ...).
* Reporting: `mean_ci` (t interval over strokes) and `cluster_bootstrap_ci`
  (bootstrap interval over source images, for paired differences).

Conventions: images are float arrays in [0, 1], [N, H, W, C] (or [H, W, C] for
a single image where a docstring says so); masks are bool, [N, H, W] or
[H, W] (one mask shared by the batch). Inputs may be numpy or jax arrays;
results are float64 numpy arrays or Python floats.
"""

from collections.abc import Callable, Sequence

import numpy as np
import scipy.ndimage
import scipy.special
import scipy.stats

# ---------------------------------------------------------------------------
# Input checks.


def _image_pair(a, b) -> tuple[np.ndarray, np.ndarray, bool]:
  """Both images as float64 [N, H, W, C] plus whether they were single images."""
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  if a.shape != b.shape:
    raise ValueError(
        f"Images must have the same shape, got {a.shape} and {b.shape}."
    )
  if a.ndim == 3:
    return a[None], b[None], True
  if a.ndim != 4:
    raise ValueError(
        f"Expected images [N, H, W, C] or [H, W, C], got shape {a.shape}."
    )
  if a.shape[0] == 0:
    raise ValueError(f"Expected at least one image, got shape {a.shape}.")
  return a, b, False


def _pixel_mask(mask, images_NxHxWxC: np.ndarray, single: bool) -> np.ndarray:
  """The mask as bool [N, H, W]; all pixels when `mask` is None."""
  n, h, w, _ = images_NxHxWxC.shape
  if mask is None:
    return np.ones((n, h, w), bool)
  mask = np.asarray(mask)
  if mask.dtype != bool:
    raise ValueError(f"Mask must be bool, got dtype {mask.dtype}.")
  if mask.shape == (h, w):
    return np.broadcast_to(mask, (n, h, w))
  if not single and mask.shape == (n, h, w):
    return mask
  expected = f"({h}, {w})" if single else f"({h}, {w}) or ({n}, {h}, {w})"
  raise ValueError(
      f"Mask shape {mask.shape} does not match images of shape "
      f"{images_NxHxWxC.shape[1:] if single else images_NxHxWxC.shape}; "
      f"expected {expected}."
  )


def _masked_squared_error(a, b, mask):
  """Per-image sum of squared errors over masked pixels, and their count.

  Returns:
    (sse_N, count_N, single): float64 [N] sums over masked pixels and all
    channels, the number of summed values per image, and whether the input
    was a single [H, W, C] image.
  """
  a_NxHxWxC, b_NxHxWxC, single = _image_pair(a, b)
  mask_NxHxW = _pixel_mask(mask, a_NxHxWxC, single)
  sq_NxHxWxC = np.square(a_NxHxWxC - b_NxHxWxC)
  sse_N = np.einsum("nhwc,nhw->n", sq_NxHxWxC, mask_NxHxW.astype(np.float64))
  count_N = mask_NxHxW.sum(axis=(1, 2)) * a_NxHxWxC.shape[-1]
  return sse_N, count_N, single


def _per_image(values_N: np.ndarray, single: bool):
  return values_N[0] if single else values_N


# ---------------------------------------------------------------------------
# Pixel metrics: PSNR, L2, faithfulness, preservation.


def psnr(a, b, max_val: float = 1.0, mask=None, cap: float | None = None):
  """Peak signal-to-noise ratio in dB, per image.

  Identical images (zero error) give +inf without a warning; pass `cap` (e.g.
  100.0) to get min(psnr, cap) instead, so that means and intervals stay finite.

  Args:
    a: images [N, H, W, C] or a single image [H, W, C].
    b: images of the same shape as `a`.
    max_val: the largest possible pixel value.
    mask: optional bool [N, H, W] or [H, W]; the error is averaged over masked
      pixels (all channels) only.
    cap: optional upper bound applied to the result.

  Returns:
    float64 [N] (a 0-d value for a single image).

  Raises:
    ValueError: on shape mismatches or if the mask selects no pixel of an image.
  """
  sse_N, count_N, single = _masked_squared_error(a, b, mask)
  if np.any(count_N == 0):
    raise ValueError(
        "PSNR is undefined on an empty mask; images with no masked pixel: "
        f"{np.flatnonzero(count_N == 0).tolist()}."
    )
  mse_N = sse_N / count_N
  with np.errstate(
      divide="ignore"
  ):  # mse == 0 -> +inf is the documented value.
    psnr_N = 10.0 * np.log10(max_val**2 / mse_N)
  if cap is not None:
    psnr_N = np.minimum(psnr_N, cap)
  return _per_image(psnr_N, single)


def l2_distance(a, b, mask=None):
  """SDEdit-style L2 distance: sqrt of the summed squared error, per image.

  Sums over all pixels and channels (values expected in [0, 1]); with `mask`,
  over masked pixels only (an empty mask gives 0).

  Args:
    a: images [N, H, W, C] or a single image [H, W, C].
    b: images of the same shape as `a`.
    mask: optional bool [N, H, W] or [H, W].

  Returns:
    float64 [N] (a 0-d value for a single image).
  """
  sse_N, _, single = _masked_squared_error(a, b, mask)
  return _per_image(np.sqrt(sse_N), single)


def faithfulness(output, stroke_image, stroke_mask) -> dict[str, np.ndarray]:
  """L2 of an edit to its stroke image, over the whole image and in the stroke.

  Args:
    output: edited images [N, H, W, C] (or one [H, W, C]).
    stroke_image: the stroked inputs, same shape.
    stroke_mask: bool [N, H, W] or [H, W], the stroked pixels.

  Returns:
    {"l2": whole-image L2 [N], "l2_stroke": L2 inside the stroke mask [N]}.
  """
  return {
      "l2": l2_distance(output, stroke_image),
      "l2_stroke": l2_distance(output, stroke_image, mask=stroke_mask),
  }


def preservation(
    output, source, edit_mask, psnr_cap: float | None = None
) -> dict[str, np.ndarray]:
  """PSNR and L2 of an edit to its source outside the edited region.

  Args:
    output: edited images [N, H, W, C] (or one [H, W, C]).
    source: the unedited images, same shape.
    edit_mask: bool [N, H, W] or [H, W], True where the image may change (the
      edited token region at pixel resolution); its complement is compared.
    psnr_cap: optional cap for the PSNR (see `psnr`).

  Returns:
    {"psnr": [N] dB, "l2": [N]} over the complement of `edit_mask`.

  Raises:
    ValueError: if the complement is empty for some image.
  """
  edit_mask = np.asarray(edit_mask)
  if edit_mask.dtype != bool:
    raise ValueError(f"Mask must be bool, got dtype {edit_mask.dtype}.")
  keep_mask = ~edit_mask
  if not np.all(keep_mask.reshape(*keep_mask.shape[:-2], -1).any(axis=-1)):
    raise ValueError(
        "The edit mask covers the whole image, so nothing is left to measure "
        f"preservation on (mask shape {edit_mask.shape})."
    )
  return {
      "psnr": psnr(output, source, mask=keep_mask, cap=psnr_cap),
      "l2": l2_distance(output, source, mask=keep_mask),
  }


def edge_mask(images_NxHxWxC, threshold: float = 0.1) -> np.ndarray:
  """Pixels next to an edge: bool [N, H, W].

  A pixel is on an edge when any channel differs by more than `threshold`
  from a 4-neighbour: a tokenizer's error there measures how well its codes
  place edges, which flat-region error does not show.
  """
  images = np.asarray(images_NxHxWxC, np.float64)
  if images.ndim != 4:
    raise ValueError(f"Expected images [N, H, W, C], got shape {images.shape}.")
  jump_x = np.abs(np.diff(images, axis=2)).max(-1) > threshold
  jump_y = np.abs(np.diff(images, axis=1)).max(-1) > threshold
  edges = np.zeros(images.shape[:3], bool)
  edges[:, :, 1:] |= jump_x
  edges[:, :, :-1] |= jump_x
  edges[:, 1:, :] |= jump_y
  edges[:, :-1, :] |= jump_y
  return edges


# ---------------------------------------------------------------------------
# Sliced Wasserstein distance (Karras et al. 2018, "Progressive Growing of
# GANs"): Laplacian-pyramid patch descriptors compared by 1-D Wasserstein
# distances along random directions.

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


# ---------------------------------------------------------------------------
# Token NLL.


def token_nll(logits_BxLxV, tokens_BxL, mask_BxL) -> np.ndarray:
  """Mean negative log-likelihood (nats) of tokens at masked positions.

  Args:
    logits_BxLxV: transformer logits (the caller runs the model).
    tokens_BxL: int token ids in [0, V).
    mask_BxL: bool, True at the positions to score.

  Returns:
    float64 [B], the mean NLL over each row's masked positions.

  Raises:
    ValueError: on shape mismatches, out-of-range tokens, or a row with no
      masked position.
  """
  logits = np.asarray(logits_BxLxV, np.float64)
  tokens = np.asarray(tokens_BxL)
  mask = np.asarray(mask_BxL)
  if logits.ndim != 3 or tokens.shape != logits.shape[:2]:
    raise ValueError(
        f"Expected logits [B, L, V] and tokens [B, L], got shapes "
        f"{logits.shape} and {tokens.shape}."
    )
  if mask.shape != tokens.shape or mask.dtype != bool:
    raise ValueError(
        f"Expected a bool mask of shape {tokens.shape}, got {mask.dtype} "
        f"{mask.shape}."
    )
  vocab = logits.shape[-1]
  if not np.issubdtype(tokens.dtype, np.integer) or np.any(
      (tokens < 0) | (tokens >= vocab)
  ):
    raise ValueError(f"Tokens must be integers in [0, {vocab}).")
  count_B = mask.sum(axis=1)
  if np.any(count_B == 0):
    raise ValueError(
        "token_nll needs at least one masked position per row; empty rows: "
        f"{np.flatnonzero(count_B == 0).tolist()}."
    )
  target_BxL = np.take_along_axis(logits, tokens[..., None], axis=-1)[..., 0]
  nll_BxL = scipy.special.logsumexp(logits, axis=-1) - target_BxL
  return np.where(mask, nll_BxL, 0.0).sum(axis=1) / count_B


# ---------------------------------------------------------------------------
# FID / KID from caller-supplied features (e.g. Inception pool3).


def _features_2d(features, name: str) -> np.ndarray:
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or features.shape[0] < 2:
    raise ValueError(
        f"{name} must be [N, D] with N >= 2, got shape {features.shape}."
    )
  return features


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """Fréchet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2).

  ||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)). The trace
  of the matrix square root is computed as the sum of square roots of the
  eigenvalues of the symmetric PSD matrix sigma1^(1/2) sigma2 sigma1^(1/2),
  which is similar to sigma1 sigma2; this is real by construction and needs
  no eps regularisation, unlike the usual scipy.linalg.sqrtm route (same value
  up to rounding).

  Args:
    mu1, mu2: means [D].
    sigma1, sigma2: symmetric PSD covariances [D, D].

  Returns:
    The distance (>= 0 up to rounding).
  """
  mu1 = np.atleast_1d(mu1).astype(np.float64)
  mu2 = np.atleast_1d(mu2).astype(np.float64)
  sigma1 = np.atleast_2d(sigma1).astype(np.float64)
  sigma2 = np.atleast_2d(sigma2).astype(np.float64)
  dim = mu1.shape[0]
  if (
      mu1.shape != (dim,)
      or mu2.shape != (dim,)
      or sigma1.shape != (dim, dim)
      or sigma2.shape != (dim, dim)
  ):
    raise ValueError(
        f"Expected means [D] and covariances [D, D], got mu1 {mu1.shape}, "
        f"sigma1 {sigma1.shape}, mu2 {mu2.shape}, sigma2 {sigma2.shape}."
    )
  eigvals1, eigvecs1 = np.linalg.eigh(sigma1)
  sqrt_sigma1 = (eigvecs1 * np.sqrt(np.clip(eigvals1, 0.0, None))) @ eigvecs1.T
  product = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
  eigvals = np.linalg.eigvalsh((product + product.T) / 2)
  trace_sqrt = np.sqrt(np.clip(eigvals, 0.0, None)).sum()
  diff = mu1 - mu2
  return float(
      diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt
  )


def fid_from_features(features1_NxD, features2_MxD) -> float:
  """FID: Fréchet distance between Gaussians fitted to two feature sets."""
  f1 = _features_2d(features1_NxD, "features1")
  f2 = _features_2d(features2_MxD, "features2")
  if f1.shape[1] != f2.shape[1]:
    raise ValueError(
        f"Feature sets differ in dimension: {f1.shape} and {f2.shape}."
    )
  return frechet_distance(
      f1.mean(axis=0),
      np.cov(f1, rowvar=False),
      f2.mean(axis=0),
      np.cov(f2, rowvar=False),
  )


def kid_from_features(
    features1_NxD,
    features2_MxD,
    *,
    num_subsets: int = 100,
    subset_size: int | None = None,
    rng: int | np.random.Generator = 0,
) -> tuple[float, float]:
  """KID: unbiased MMD^2 with kernel (x.y / D + 1)^3, over random subsets.

  Args:
    features1_NxD: features of one set.
    features2_MxD: features of the other set.
    num_subsets: number of subset pairs.
    subset_size: samples per subset (without replacement); default
      min(N, M, 1000). Must be in [2, min(N, M)].
    rng: numpy Generator or int seed for the subsets.

  Returns:
    (mean, std) of the per-subset MMD^2 estimates.
  """
  f1 = _features_2d(features1_NxD, "features1")
  f2 = _features_2d(features2_MxD, "features2")
  if f1.shape[1] != f2.shape[1]:
    raise ValueError(
        f"Feature sets differ in dimension: {f1.shape} and {f2.shape}."
    )
  size = min(len(f1), len(f2), 1000) if subset_size is None else subset_size
  if not 2 <= size <= min(len(f1), len(f2)):
    raise ValueError(
        f"subset_size must be in [2, {min(len(f1), len(f2))}] for sets of "
        f"{len(f1)} and {len(f2)} samples, got {size}."
    )
  if num_subsets < 1:
    raise ValueError(f"num_subsets must be >= 1, got {num_subsets}.")
  rng = np.random.default_rng(rng)
  dim = f1.shape[1]

  def kernel(x, y):
    return (x @ y.T / dim + 1.0) ** 3

  def mean_off_diagonal(k_SxS):
    return (k_SxS.sum() - np.trace(k_SxS)) / (size * (size - 1))

  mmds = []
  for _ in range(num_subsets):
    x = f1[rng.choice(len(f1), size, replace=False)]
    y = f2[rng.choice(len(f2), size, replace=False)]
    mmds.append(
        mean_off_diagonal(kernel(x, x))
        + mean_off_diagonal(kernel(y, y))
        - 2.0 * kernel(x, y).mean()
    )
  return float(np.mean(mmds)), float(np.std(mmds))


def _extract_features(images, feature_fn: Callable, batch_size: int | None):
  images = np.asarray(images)
  if batch_size is None:
    return np.asarray(feature_fn(images))
  return np.concatenate(
      [
          np.asarray(feature_fn(images[i : i + batch_size]))
          for i in range(0, len(images), batch_size)
      ]
  )


def fid(
    images1, images2, feature_fn: Callable, batch_size: int | None = None
) -> float:
  """FID between two image sets under a caller-supplied feature extractor.

  Args:
    images1: [N, H, W, C] images (in whatever range `feature_fn` expects).
    images2: [M, H, W, C] images.
    feature_fn: maps an image batch [B, H, W, C] to features [B, D].
    batch_size: images per `feature_fn` call; all at once when None.
  """
  return fid_from_features(
      _extract_features(images1, feature_fn, batch_size),
      _extract_features(images2, feature_fn, batch_size),
  )


def kid(
    images1,
    images2,
    feature_fn: Callable,
    batch_size: int | None = None,
    **kid_kwargs,
) -> tuple[float, float]:
  """KID (mean, std) under a caller-supplied feature extractor.

  Same arguments as `fid`; `kid_kwargs` go to `kid_from_features`.
  """
  return kid_from_features(
      _extract_features(images1, feature_fn, batch_size),
      _extract_features(images2, feature_fn, batch_size),
      **kid_kwargs,
  )


# ---------------------------------------------------------------------------
# Reporting.


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
  t = scipy.stats.t.ppf(0.5 + confidence / 2.0, df=n - 1)
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
