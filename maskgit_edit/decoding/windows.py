"""Windowed editing: decode only a box of tokens around the edited ones.

A stroke usually covers a small part of the image, yet a full decode runs the
transformer over the whole token grid at every step. A window is the bounding
box of the edited tokens E grown by a context ring of `ring` tokens, clipped
at the borders; the transformer then sees only the window's tokens, each with
the embedding of its true grid position. Tokens outside the window are kept,
as they are in a full decode, but the edited tokens no longer attend to them.

Window sides are rounded up to a bucket (`bucket_for`) and a batch shares
one window size, so a new stroke reuses a compiled program and only a new
bucketed size compiles. A window as large as the grid decodes exactly like
the full grid.
"""

import numpy as np


def parse_ring(value) -> int | None:
  """A window setting as users write it: None, "" or "full" (the whole
  grid), or a context ring of tokens >= 0 (an int or its digits)."""
  if value in (None, "", "full"):
    return None
  if isinstance(value, bool) or not str(value).isdigit():
    raise ValueError(
        f"window must be 'full' or a number of tokens >= 0, got {value!r}."
    )
  return int(value)


def bucket_for(size: int) -> int:
  """Sizes up to `size` are rounded up to multiples of this, so that at most
  8 of them compile (window sides; the positions key/value reuse runs)."""
  return -(-size // 8)


def grown_box(unknown_hxw, ring: int) -> tuple[int, int, int, int] | None:
  """(top, left, bottom, right) of the unknown tokens' bounding box grown by
  `ring` and clipped to the grid (bottom/right exclusive); None if none."""
  rows, cols = np.nonzero(unknown_hxw)
  if not len(rows):
    return None
  side_h, side_w = np.shape(unknown_hxw)
  return (
      max(rows.min() - ring, 0),
      max(cols.min() - ring, 0),
      min(rows.max() + ring + 1, side_h),
      min(cols.max() + ring + 1, side_w),
  )


def window_size(unknown_Bxhxw, ring: int) -> tuple[int, int]:
  """Bucketed (height, width) covering every row's grown box."""
  unknown = np.asarray(unknown_Bxhxw, bool)
  boxes = [b for b in (grown_box(u, ring) for u in unknown) if b is not None]
  height = max([bottom - top for top, _, bottom, _ in boxes], default=1)
  width = max([right - left for _, left, _, right in boxes], default=1)
  round_up = lambda n, side: min(
      -(-n // bucket_for(side)) * bucket_for(side), side
  )
  return (
      int(round_up(height, unknown.shape[1])),
      int(round_up(width, unknown.shape[2])),
  )


def window_corner(unknown_hxw, ring: int, size_hw: tuple[int, int]):
  """(top, left) of the `size_hw` window centred on the grown box, shifted
  to lie inside the grid."""
  box = grown_box(unknown_hxw, ring)
  if box is None:
    return 0, 0
  top, left, bottom, right = box
  side_h, side_w = np.shape(unknown_hxw)
  top -= (size_hw[0] - (bottom - top)) // 2
  left -= (size_hw[1] - (right - left)) // 2
  return (
      int(np.clip(top, 0, side_h - size_hw[0])),
      int(np.clip(left, 0, side_w - size_hw[1])),
  )


def window_positions(unknown_Bxhxw, ring: int) -> np.ndarray:
  """int32 [B, W]: row-major grid indices of each row's window.

  Args:
    unknown_Bxhxw: bool, the tokens to decode (every one lies in its row's
      window).
    ring: context tokens kept around the unknown tokens' bounding box (>= 0).
  """
  if ring < 0:
    raise ValueError(f"The window's context ring must be >= 0, got {ring}.")
  unknown = np.asarray(unknown_Bxhxw, bool)
  _, _, side_w = unknown.shape
  height, width = window_size(unknown, ring)
  grid_hxw = np.arange(height)[:, None] * side_w + np.arange(width)[None, :]
  positions = []
  for unknown_hxw in unknown:
    top, left = window_corner(unknown_hxw, ring, (height, width))
    positions.append((grid_hxw + top * side_w + left).ravel())
  return np.stack(positions).astype(np.int32)
