"""Every image under a folder (recursive), centre-cropped and resized.

Files with the extensions in EXTENSIONS (any case) are sorted by path. Files
PIL cannot identify are skipped, with one warning giving their count; the rest
are split deterministically by a hash of their path relative to the folder
(stable when files are added or removed): the test split takes the files whose
hash, a fraction in [0, 1), is below `test_fraction`, but always at least one
file and never all of them. A folder of a single image uses it for both splits
(with a warning).

Labels follow the ImageFolder convention: when every image sits in a
subfolder of the folder itself (`root/<class>/<image>`) and there are at
least two such subfolders, the label is the index of the subfolder's name in
their sorted list (`class_names`). Otherwise images are unlabelled (label 0,
num_classes 0).

Only headers are read when the source is built; an image that is truncated
past its header fails in `get`, with an error naming the file.
"""

import hashlib
import pathlib
import warnings

import numpy as np
from PIL import Image
from PIL import ImageOps

from maskgit_edit.data import base

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class FolderSource:
  """`ImageSource` over the images of a folder; see the module docstring."""

  def __init__(
      self,
      path: str,
      split: str,
      image_size: int,
      test_fraction: float,
      allow_upscale: bool,
  ):
    base.split_index(split)
    if not 0 < test_fraction < 1:
      raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction}.")
    self.image_size = image_size
    folder = pathlib.Path(path)
    readable = readable_images(folder, image_size, allow_upscale)
    self.class_names = class_subfolders(readable, folder)
    self.num_classes = len(self.class_names)
    self.files = _split_files(readable, folder, split, test_fraction)
    self._labels_F = np.array(
        [
            self.class_names.index(file.relative_to(folder).parts[0])
            if self.class_names
            else 0
            for file in self.files
        ],
        np.int32,
    )

  def __len__(self) -> int:
    return len(self.files)

  def get(self, indices_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images_NxSxSx3 uint8, labels_N int32)."""
    indices_N = base.check_indices(indices_N, len(self.files))
    size = self.image_size
    images_NxSxSx3 = np.empty((len(indices_N), size, size, 3), np.uint8)
    for n, index in enumerate(indices_N):
      images_NxSxSx3[n] = load_square(self.files[index], size)
    return images_NxSxSx3, self._labels_F[indices_N]


def class_subfolders(
    files: list[pathlib.Path], folder: pathlib.Path
) -> tuple[str, ...]:
  """Sorted class names when `files` follow `folder/<class>/<image>` with
  at least two classes; () otherwise."""
  parts = [file.relative_to(folder).parts for file in files]
  if any(len(p) != 2 for p in parts):
    return ()
  names = tuple(sorted({p[0] for p in parts}))
  return names if len(names) >= 2 else ()


def load_square(file: pathlib.Path, image_size: int) -> np.ndarray:
  """An image file, upright, centre-cropped and resized: uint8 [S, S, 3]."""
  try:
    with Image.open(file) as image:
      # Phone photos store their orientation in EXIF instead of the pixels.
      upright = ImageOps.exif_transpose(image)
      return base.crop_resize(
          upright, base.center_square(*upright.size), image_size
      )
  except OSError as e:
    raise OSError(f"Cannot decode image {str(file)!r}: {e}") from e


def readable_images(
    folder: pathlib.Path, image_size: int, allow_upscale: bool
) -> list[pathlib.Path]:
  """Sorted image files under `folder` that PIL can identify."""
  if not folder.is_dir():
    raise FileNotFoundError(f"Image folder {str(folder)!r} does not exist.")
  candidates = sorted(
      file
      for file in folder.rglob("*")
      if file.suffix.lower() in EXTENSIONS and file.is_file()
  )
  if not candidates:
    raise ValueError(
        f"No images ({', '.join(EXTENSIONS)}) under {str(folder)!r}."
    )
  readable, small = [], []
  for file in candidates:
    try:
      with Image.open(file) as image:
        width, height = image.size
    except OSError:  # Includes PIL.UnidentifiedImageError.
      continue
    if min(width, height) < image_size:
      if not allow_upscale:
        raise ValueError(
            f"Image {str(file)!r} is {width}x{height}, smaller than"
            f" image_size {image_size}; remove it or set"
            " folder_allow_upscale=True."
        )
      small.append(file)
    readable.append(file)
  if len(readable) < len(candidates):
    warnings.warn(
        f"Skipped {len(candidates) - len(readable)} unreadable image file(s)"
        f" of {len(candidates)} under {str(folder)!r}."
    )
  if not readable:
    raise ValueError(f"None of the images under {str(folder)!r} is readable.")
  if small:
    warnings.warn(
        f"Upscaling {len(small)} image(s) smaller than {image_size} px under"
        f" {str(folder)!r}, e.g. {str(small[0])!r}."
    )
  return readable


def _split_files(
    files: list[pathlib.Path],
    folder: pathlib.Path,
    split: str,
    test_fraction: float,
) -> list[pathlib.Path]:
  if len(files) == 1:
    warnings.warn(
        f"{str(folder)!r} holds a single readable image: both the train and"
        " test splits use it."
    )
    return files
  hash_F = np.array([_hash_fraction(f.relative_to(folder)) for f in files])
  num_test = np.clip(np.sum(hash_F < test_fraction), 1, len(files) - 1)
  in_test_F = np.zeros(len(files), bool)
  in_test_F[np.argsort(hash_F, kind="stable")[:num_test]] = True
  keep_F = in_test_F if split == "test" else ~in_test_F
  return [file for file, keep in zip(files, keep_F) if keep]


def _hash_fraction(relative_path: pathlib.Path) -> float:
  """Fraction in [0, 1) fixed by the path, independent of the other files."""
  digest = hashlib.sha256(relative_path.as_posix().encode()).digest()
  return int.from_bytes(digest[:8], "big") / 2**64
