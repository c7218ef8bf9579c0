"""Pixel metrics of stroke-guided edits: faithfulness and preservation.

Everything here is pure numpy/scipy and needs no downloaded weights:

* Faithfulness: `l2_distance` between an edit and its stroke image, SDEdit
  style (sqrt of the summed squared error over pixels and channels in [0, 1]),
  optionally restricted to the stroke mask (`faithfulness` gives both).
* Preservation: `psnr` / `l2_distance` outside the edited region vs the source
  (`preservation`).
* Token NLL under the transformer (`token_nll`), which rewards modal tokens.
Realism metrics have their own modules (`swd`, `feature_distances`), and so
do the intervals of reported means (`intervals`).

Conventions: images are float arrays in [0, 1], [N, H, W, C] (or [H, W, C] for
a single image where a docstring says so); masks are bool, [N, H, W] or
[H, W] (one mask shared by the batch). Inputs may be numpy or jax arrays;
results are float64 numpy arrays or Python floats.
"""

import numpy as np
import scipy.special

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
