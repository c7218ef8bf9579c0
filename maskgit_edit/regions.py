"""Pixel <-> token glue of the editing path.

An edit is a source image, a stroke image and a boolean stroke mask, all at
pixel resolution. The transformer works on an ``h x w`` token grid produced by
a VQ tokenizer that downsamples by ``f = image_size // latent_size``, so every
token owns an ``f x f`` pixel patch. This module

* validates edit inputs and classifies each mask as empty / partial / full,
* maps a pixel mask to the tokens it touches (optionally dilated) and back,
* composites the decoded image over the source, either hard or feathered,
* loads edit triplets from PNG files and builds box masks for demos.

Masks and token masks are host-side numpy arrays; ``feather`` and
``composite`` also accept ``jax.Array`` inputs (and work under ``jit``).
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from maskgit_edit import images as image_lib

Array = np.ndarray | jax.Array
# (top, left, bottom, right) in pixels; bottom/right are exclusive.
Box = tuple[int, int, int, int]

COMPOSITE_MODES = ('hard', 'feather')


class MaskKind(enum.Enum):
  """How much of the image an edit mask covers, which decides the edit path."""

  EMPTY = 'empty'  # Nothing to edit: return the source unchanged (and warn).
  PARTIAL = 'partial'  # A real edit.
  FULL = 'full'  # Every pixel is edited: plain generation.


def token_factor(image_size: int, latent_size: int) -> int:
  """Side ``f`` of the pixel patch owned by one token.

  Args:
    image_size: side of the square image in pixels.
    latent_size: side of the square token grid.

  Returns:
    ``image_size // latent_size``.

  Raises:
    ValueError: if ``latent_size`` is not positive or does not divide
      ``image_size``.
  """
  if latent_size <= 0 or image_size <= 0 or image_size % latent_size:
    raise ValueError(
        f'image size {image_size} is not a positive multiple of the token '
        f'grid size {latent_size}'
    )
  return image_size // latent_size


def _square_size(shape: Sequence[int], what: str) -> int:
  """Returns H for an array whose last two axes are ``H x H``."""
  height, width = shape[-2:]
  if height != width:
    raise ValueError(f'{what} must be square, got {height}x{width}')
  return height


def _as_bool_mask(mask: Array, what: str = 'mask') -> np.ndarray:
  """Returns ``mask`` as a numpy bool array; values must be in {0, 1}."""
  mask = np.asarray(mask)
  if mask.dtype == bool:
    return mask
  if not np.isin(mask, (0, 1)).all():
    bad = np.unique(mask[~np.isin(mask, (0, 1))])[:5]
    raise ValueError(
        f'{what} must be boolean-like (values in {{0, 1}}), found values such '
        f'as {bad.tolist()} with dtype {mask.dtype}'
    )
  return mask.astype(bool)


def mask_coverage(mask_BxHxW: Array) -> np.ndarray:
  """Fraction of True entries per example.

  Works for pixel masks ``[B, H, W]`` and token masks ``[B, h, w]`` alike.

  Args:
    mask_BxHxW: boolean-like mask.

  Returns:
    float32 ``[B]`` fractions in [0, 1].
  """
  mask_BxHxW = _as_bool_mask(mask_BxHxW)
  return mask_BxHxW.mean(axis=(-2, -1), dtype=np.float32)


def mask_kinds(mask_BxHxW: Array) -> list[MaskKind]:
  """Classifies each example's mask as empty, partial or full."""
  kinds = []
  for coverage in mask_coverage(mask_BxHxW):
    if coverage == 0:
      kinds.append(MaskKind.EMPTY)
    elif coverage == 1:
      kinds.append(MaskKind.FULL)
    else:
      kinds.append(MaskKind.PARTIAL)
  return kinds


def validate_edit_inputs(
    source_BxHxWx3: Array,
    stroke_BxHxWx3: Array | None,
    mask_BxHxW: Array,
    latent_size: int,
) -> list[MaskKind]:
  """Checks a batch of edits and classifies its masks.

  Structural problems raise; empty and full masks are legal and reported so
  that the caller can return the source unchanged (EMPTY, with a warning) or
  run plain generation (FULL).

  Args:
    source_BxHxWx3: source images.
    stroke_BxHxWx3: stroke images, or None for pure inpainting.
    mask_BxHxW: boolean-like stroke masks.
    latent_size: side of the token grid; must divide the image size.

  Returns:
    One ``MaskKind`` per example, judged at pixel level.

  Raises:
    ValueError: naming the sizes, for non-[B, H, W, 3] sources, a stroke of
      another shape, a mask not of shape [B, H, W], non-square images, an
      image size not divisible by ``latent_size`` or non-boolean mask values.
  """
  source_shape = np.shape(source_BxHxWx3)
  if len(source_shape) != 4 or source_shape[-1] != 3:
    raise ValueError(f'source must be [B, H, W, 3], got {source_shape}')
  if stroke_BxHxWx3 is not None and np.shape(stroke_BxHxWx3) != source_shape:
    raise ValueError(
        f'stroke shape {np.shape(stroke_BxHxWx3)} differs from '
        f'source shape {source_shape}'
    )
  if np.shape(mask_BxHxW) != source_shape[:-1]:
    raise ValueError(
        f'mask shape {np.shape(mask_BxHxW)} does not match the '
        f'source images {source_shape} (expected '
        f'{source_shape[:-1]})'
    )
  token_factor(_square_size(source_shape[:-1], 'source'), latent_size)
  return mask_kinds(mask_BxHxW)


def pixel_to_token_mask(
    mask_BxHxW: Array, latent_size: int, dilation: int = 0
) -> np.ndarray:
  """Marks every token whose pixel patch the mask touches, then dilates.

  Args:
    mask_BxHxW: boolean-like pixel mask with square ``H x H`` images.
    latent_size: side ``h`` of the token grid.
    dilation: grow the marked region by this many tokens in every direction
      (8-connected, i.e. a max-pool with window ``2 * dilation + 1``),
      clipped at the grid borders.

  Returns:
    bool ``[B, h, h]`` token mask.

  Raises:
    ValueError: for non-square masks, ``H % latent_size != 0``, negative
      dilation or non-boolean mask values.
  """
  if dilation < 0:
    raise ValueError(f'dilation must be >= 0, got {dilation}')
  mask_BxHxW = _as_bool_mask(mask_BxHxW)
  f = token_factor(_square_size(mask_BxHxW.shape, 'mask'), latent_size)
  batch = mask_BxHxW.shape[:-2]
  patches = mask_BxHxW.reshape(*batch, latent_size, f, latent_size, f)
  tokens_Bxhxw = patches.any(axis=(-3, -1))
  if dilation == 0:
    return tokens_Bxhxw
  pad = [(0, 0)] * len(batch) + [(dilation, dilation)] * 2
  padded = np.pad(tokens_Bxhxw, pad, constant_values=False)
  window = 2 * dilation + 1
  windows = np.lib.stride_tricks.sliding_window_view(
      padded, (window, window), axis=(-2, -1)
  )
  return windows.any(axis=(-2, -1))


def token_to_pixel_mask(token_mask_Bxhxw: Array, image_size: int) -> np.ndarray:
  """Nearest-neighbour upsampling of a token mask to pixels.

  Args:
    token_mask_Bxhxw: boolean-like token mask on a square grid.
    image_size: side ``H`` of the image; a multiple of ``h``.

  Returns:
    bool ``[B, H, H]`` mask, True on every pixel of every marked token.
  """
  token_mask_Bxhxw = _as_bool_mask(token_mask_Bxhxw, 'token mask')
  f = token_factor(
      image_size, _square_size(token_mask_Bxhxw.shape, 'token mask')
  )
  return token_mask_Bxhxw.repeat(f, axis=-2).repeat(f, axis=-1)


def _namespace(*arrays: Array | None):
  """jax.numpy if any input is a jax array (or tracer), else numpy."""
  return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def _gaussian_blur(x_BxHxW: Array, sigma_px: float) -> Array:
  """Separable Gaussian blur over the last two axes, edge-replicating.

  Replicating the border keeps an edit region that touches the image edge
  from fading out there: the image border is not a seam.
  """
  xp = _namespace(x_BxHxW)
  radius = max(1, math.ceil(3 * sigma_px))
  taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_px) ** 2)
  taps = (taps / taps.sum()).astype(np.float32)
  for axis in (x_BxHxW.ndim - 2, x_BxHxW.ndim - 1):
    pad = [(0, 0)] * x_BxHxW.ndim
    pad[axis] = (radius, radius)
    padded = xp.pad(x_BxHxW, pad, mode='edge')
    size = x_BxHxW.shape[axis]
    x_BxHxW = sum(
        float(tap) * padded[(slice(None),) * axis + (slice(k, k + size),)]
        for k, tap in enumerate(taps)
    )
  return x_BxHxW


def feather(
    region_mask_BxHxW: Array,
    sigma_px: float,
    core_mask_BxHxW: Array | None = None,
) -> Array:
  """Compositing weights that fade to zero at the edited region's boundary.

  The released MaskGIT composites with a Gaussian-blurred mask, so weights
  leak outside the edited region and unedited pixels change slightly. Here
  the feathering happens strictly INSIDE the region instead:

    b = gaussian_blur(region, sigma_px)          (edge-replicated borders)
    w = clip(2 * b - 1, 0, 1)   inside region,   0 outside region
    w = 1                       on core_mask (e.g. the user's stroke)

  Along a straight region edge ``w = erf(d / (sigma * sqrt(2)))`` at depth
  ``d``: 0 at the boundary, ~0.95 at ``2 * sigma`` inside. Hence pixels
  outside the region are exactly the source, core pixels exactly the
  generated image, and the seam is hidden in the band just inside the
  boundary (tokens that were regenerated but not painted).

  Args:
    region_mask_BxHxW: boolean-like edited region in pixels, normally
      ``token_to_pixel_mask`` of the (dilated) token mask.
    sigma_px: Gaussian standard deviation in pixels; 0 gives the hard mask.
    core_mask_BxHxW: optional boolean-like pixels forced to weight 1.

  Returns:
    float32 ``[B, H, W]`` weights in [0, 1] (numpy, or jax for jax inputs).

  Raises:
    ValueError: for a negative ``sigma_px`` or a core mask of another shape.
  """
  if sigma_px < 0:
    raise ValueError(f'sigma_px must be >= 0, got {sigma_px}')
  xp = _namespace(region_mask_BxHxW, core_mask_BxHxW)
  region_BxHxW = xp.asarray(region_mask_BxHxW).astype(bool)
  weights_BxHxW = region_BxHxW.astype(np.float32)
  if sigma_px > 0:
    blurred_BxHxW = _gaussian_blur(weights_BxHxW, sigma_px)
    ramp_BxHxW = xp.clip(2 * blurred_BxHxW - 1, 0, 1)
    weights_BxHxW = xp.where(region_BxHxW, ramp_BxHxW, 0).astype(np.float32)
  if core_mask_BxHxW is not None:
    if np.shape(core_mask_BxHxW) != region_BxHxW.shape:
      raise ValueError(
          f'core mask shape {np.shape(core_mask_BxHxW)} differs '
          f'from region mask shape {region_BxHxW.shape}'
      )
    core_BxHxW = xp.asarray(core_mask_BxHxW).astype(bool)
    weights_BxHxW = xp.where(core_BxHxW, np.float32(1), weights_BxHxW)
  return weights_BxHxW


def composite(
    source_BxHxWx3: Array,
    generated_BxHxWx3: Array,
    region_mask_BxHxW: Array,
    mode: str = 'hard',
    sigma_px: float | None = None,
    core_mask_BxHxW: Array | None = None,
) -> Array:
  """Pastes the generated image over the source inside the edited region.

  Args:
    source_BxHxWx3: source images.
    generated_BxHxWx3: decoded images, same shape.
    region_mask_BxHxW: boolean-like edited region in pixels.
    mode: 'hard' (``where(region, generated, source)``) or 'feather'
      (``w * generated + (1 - w) * source`` with ``w = feather(...)``).
    sigma_px: feathering width, required by 'feather' (the editing default
      is `edit.EditSettings.feather_sigma_px`).
    core_mask_BxHxW: pixels that keep the generated image exactly in
      'feather' mode (typically the stroke mask); see ``feather``.

  Returns:
    ``[B, H, W, 3]`` images; pixels outside the region equal the source
    exactly in both modes.

  Raises:
    ValueError: for an unknown mode or mismatched shapes.
  """
  if mode not in COMPOSITE_MODES:
    raise ValueError(
        f'unknown composite mode {mode!r}; expected one of {COMPOSITE_MODES}'
    )
  if mode == 'feather' and sigma_px is None:
    raise ValueError("composite mode 'feather' needs sigma_px")
  if np.shape(generated_BxHxWx3) != np.shape(source_BxHxWx3):
    raise ValueError(
        f'generated shape {np.shape(generated_BxHxWx3)} differs '
        f'from source shape {np.shape(source_BxHxWx3)}'
    )
  if np.shape(region_mask_BxHxW) != np.shape(source_BxHxWx3)[:-1]:
    raise ValueError(
        f'mask shape {np.shape(region_mask_BxHxW)} does not '
        f'match images of shape {np.shape(source_BxHxWx3)}'
    )
  xp = _namespace(
      source_BxHxWx3, generated_BxHxWx3, region_mask_BxHxW, core_mask_BxHxW
  )
  if mode == 'hard':
    region_BxHxWx1 = xp.asarray(region_mask_BxHxW).astype(bool)[..., None]
    return xp.where(region_BxHxWx1, generated_BxHxWx3, source_BxHxWx3)
  weights_BxHxWx1 = feather(region_mask_BxHxW, sigma_px, core_mask_BxHxW)[
      ..., None
  ]
  return (
      weights_BxHxWx1 * generated_BxHxWx3
      + (1 - weights_BxHxWx1) * source_BxHxWx3
  )


def _read_png(path: str | os.PathLike, role: str) -> Image.Image:
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{role} file not found: {path}')
  try:
    with Image.open(path) as image:
      image.load()
      return image
  except OSError as e:  # Unidentified, truncated or corrupt.
    raise ValueError(f'{role} file {path} is not a readable image: {e}') from e


def mask_from_image(image: Image.Image) -> np.ndarray:
  """A mask image's HxW bool mask: true where any colour channel is non-zero
  (and the pixel is opaque). The one rule for every mask file read."""
  if image.mode == 'P':
    image = image.convert('RGBA')
  pixels = np.asarray(image)
  if pixels.ndim == 2:
    return pixels != 0
  if image.mode in ('LA', 'RGBA'):
    # Transparent pixels are unpainted whatever colour they store.
    return pixels[..., :-1].any(axis=-1) & (pixels[..., -1] != 0)
  return pixels.any(axis=-1)


def load_edit_triplet(
    source_png: str | os.PathLike,
    stroke_png: str | os.PathLike,
    mask_png: str | os.PathLike,
    image_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Reads one edit (source, stroke, mask) from image files.

  Args:
    source_png: source image path.
    stroke_png: stroke image path (the source with the stroke painted in).
    mask_png: mask path; any non-zero pixel (in L, RGB or the opaque part of
      LA/RGBA) is masked.
    image_size: if given, resize all three to ``image_size`` squared
      (bicubic for images, nearest for the mask); they must be square.

  Returns:
    source float32 ``[H, W, 3]`` in [0, 1], stroke likewise, mask bool
    ``[H, W]``.

  Raises:
    FileNotFoundError: naming the missing file.
    ValueError: naming the files when their sizes differ, or a non-square
      file when ``image_size`` is given.
  """
  paths = {'source': source_png, 'stroke': stroke_png, 'mask': mask_png}
  images = {role: _read_png(path, role) for role, path in paths.items()}
  sizes = {role: image.size for role, image in images.items()}
  if len(set(sizes.values())) != 1:
    listing = ', '.join(
        f'{paths[role]} is {w}x{h}' for role, (w, h) in sizes.items()
    )
    raise ValueError(f'edit files differ in size: {listing}')
  if image_size is not None:
    width, height = sizes['source']
    if width != height:
      raise ValueError(
          f'cannot resize non-square {width}x{height} image '
          f'{source_png} to {image_size}x{image_size}; crop first'
      )
    images = {
        role: image.resize(
            (image_size, image_size),
            Image.Resampling.NEAREST
            if role == 'mask'
            else Image.Resampling.BICUBIC,
        )
        for role, image in images.items()
    }
  source, stroke = (
      image_lib.to_float(images[role].convert('RGB'))
      for role in ('source', 'stroke')
  )
  return source, stroke, mask_from_image(images['mask'])


def box_mask(image_size: int, box: Box) -> np.ndarray:
  """bool ``[H, H]`` mask, True inside ``box = (top, left, bottom, right)``."""
  top, left, bottom, right = box
  if not 0 <= top < bottom <= image_size or not 0 <= left < right <= image_size:
    raise ValueError(
        f'box {box} is empty or outside a {image_size}x{image_size} image'
    )
  mask_HxW = np.zeros((image_size, image_size), bool)
  mask_HxW[top:bottom, left:right] = True
  return mask_HxW


def centre_box(image_size: int, fraction: float = 0.5) -> Box:
  """Centred square box with side ``round(fraction * image_size)``."""
  side = round(fraction * image_size)
  if not 0 < side <= image_size:
    raise ValueError(
        f'fraction {fraction} gives a box side of {side} px in '
        f'a {image_size} px image'
    )
  top = (image_size - side) // 2
  return top, top, top + side, top + side


def outpaint_mask(image_size: int, keep_box: Box) -> np.ndarray:
  """bool ``[H, H]`` mask editing everything outside ``keep_box``.

  With ``keep_box = centre_box(...)`` this is a border ring.
  """
  return ~box_mask(image_size, keep_box)
