"""Every image under a folder (recursive), centre-cropped and resized.

Files are split deterministically by a hash of their path relative to the
folder: a file is in "test" when its hash falls below `test_fraction`.
Unreadable files are skipped and counted (one warning); images smaller than
the output size are an error unless `allow_upscale`.
"""

import hashlib
import os
import warnings

import numpy as np
from PIL import Image

from maskgit_edit import data

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def _hash_fraction(relative_path: str) -> float:
  digest = hashlib.sha256(relative_path.encode()).digest()
  return int.from_bytes(digest[:8], "big") / 2 ** 64


def list_images(path: str) -> list[str]:
  """Sorted image paths under `path` (relative to it)."""
  if not os.path.isdir(path):
    raise FileNotFoundError(f"Image folder {path!r} does not exist.")
  found = []
  for root, _, files in os.walk(path):
    for name in files:
      if name.lower().endswith(EXTENSIONS):
        found.append(os.path.relpath(os.path.join(root, name), path))
  if not found:
    raise ValueError(f"No images ({', '.join(EXTENSIONS)}) under {path!r}.")
  return sorted(found)


class FolderSource:
  """`ImageSource` over the images of a folder (unlabelled: label 0)."""

  num_classes = 0

  def __init__(self, path: str, split: str, image_size: int,
               test_fraction: float = 0.1, allow_upscale: bool = False):
    data.split_index(split)
    self.image_size = image_size
    self._allow_upscale = allow_upscale
    files = list_images(path)
    if len(files) == 1:
      warnings.warn(f"{path!r} holds a single image: both splits use it.")
      chosen = files
    else:
      in_test = [_hash_fraction(f) < test_fraction for f in files]
      chosen = [f for f, t in zip(files, in_test) if t == (split == "test")]
    self.files, unreadable = [], 0
    for name in chosen:
      full = os.path.join(path, name)
      try:
        with Image.open(full) as image:
          size = image.size
          image.verify()
      except (OSError, SyntaxError):
        unreadable += 1
        continue
      if min(size) < image_size and not allow_upscale:
        raise ValueError(
            f"{full!r} is {size[0]}x{size[1]}, smaller than image_size "
            f"{image_size} (set folder_allow_upscale to upscale).")
      if min(size) < image_size:
        warnings.warn(f"Upscaling {full!r} ({size[0]}x{size[1]}).")
      self.files.append(full)
    if unreadable:
      warnings.warn(f"Skipped {unreadable} unreadable image file(s) in "
                    f"{path!r}.")
    if not self.files:
      raise ValueError(f"No readable images for split {split!r} in {path!r} "
                       f"({len(chosen)} candidates, {unreadable} unreadable).")

  def __len__(self) -> int:
    return len(self.files)

  def get(self, indices_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images_NxSxSx3 uint8, labels_N int32 zeros)."""
    indices_N = data.check_indices(indices_N, len(self.files))
    images = []
    for index in indices_N:
      with Image.open(self.files[index]) as image:
        image = image.convert("RGB")
        images.append(data.crop_resize(image, data.center_square(*image.size),
                                       self.image_size))
    size = self.image_size
    return (np.stack(images) if images else np.zeros((0, size, size, 3),
                                                       np.uint8),
            np.zeros(len(indices_N), np.int32))
