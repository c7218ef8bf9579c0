"""Image conversions and PNG grids."""

import os

import numpy as np
from PIL import Image

from maskgit_edit import files


def to_float(images_uint8):
  """uint8 [..., 3] -> float32 in [0, 1]."""
  return np.asarray(images_uint8, np.float32) / 255.0


def to_uint8(images):
  """float in [0, 1] (clipped) -> uint8."""
  return np.round(np.clip(np.asarray(images, np.float32), 0, 1) * 255).astype(
      np.uint8
  )


def grid(images_NxHxWx3, num_cols: int, pad: int = 2, pad_value: float = 1.0):
  """Tiles images row-major into one float image with `pad` px gutters."""
  images = np.asarray(images_NxHxWx3, np.float32)
  n, h, w, c = images.shape
  num_rows = -(-n // num_cols)
  out = np.full(
      (num_rows * (h + pad) + pad, num_cols * (w + pad) + pad, c),
      pad_value,
      np.float32,
  )
  for i, image in enumerate(images):
    r, q = divmod(i, num_cols)
    top, left = pad + r * (h + pad), pad + q * (w + pad)
    out[top : top + h, left : left + w] = image
  return out


def save_png(image_HxWx3, path: str, scale: int = 1):
  """Writes a float [0, 1] image, optionally enlarged by pixel repetition
  (atomically: a kill or a full disk leaves an existing `path` as it was)."""
  image = to_uint8(image_HxWx3)
  if scale > 1:
    image = image.repeat(scale, axis=0).repeat(scale, axis=1)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with files.atomic_path(path) as tmp:
    Image.fromarray(image).save(tmp)
  return path
