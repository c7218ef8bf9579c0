"""Random square crops of the colour photographs shipped with scikit-image and
scikit-learn: a small natural-image source that needs no download.

Whole photographs are held out for the test split (TEST_PHOTOS), so test crops
never overlap training crops. Example `index` of a split crops the photo
`index % num_photos` of that split; its crop side is a log-uniform fraction in
[min_scale, max_scale] of the photo's shorter side (but at least image_size
pixels when the photo allows, so that crops are not blurry upsamplings), its
position is uniform, and it is mirrored left-right with probability 1/2 when
`flip` is set; all drawn from a generator owned by (seed, split, index).
Label = position of the source photo in `photo_names(split)`, so labels of the
two splits name different photos and num_classes = len(photo_names(split)).
"""

import functools

import numpy as np
import skimage.data
from PIL import Image
from sklearn import datasets as sklearn_datasets

from maskgit_edit.data import base


def _sklearn_sample(file_name: str) -> np.ndarray:
  sample = sklearn_datasets.load_sample_images()
  (image,) = [
      image
      for path, image in zip(sample.filenames, sample.images)
      if path.endswith(file_name)
  ]
  return image


# name -> loader of an HxWx3 uint8 photo. skimage's `cat` is `chelsea` again,
# `logo` has an alpha channel, and several others are grey or need pooch.
_PHOTO_LOADERS = {
    "astronaut": skimage.data.astronaut,
    "chelsea": skimage.data.chelsea,
    "coffee": skimage.data.coffee,
    "rocket": skimage.data.rocket,
    "hubble_deep_field": skimage.data.hubble_deep_field,
    "immunohistochemistry": skimage.data.immunohistochemistry,
    "retina": skimage.data.retina,
    "colorwheel": skimage.data.colorwheel,
    "motorcycle": lambda: skimage.data.stereo_motorcycle()[0],
    "china": functools.partial(_sklearn_sample, "china.jpg"),
    "flower": functools.partial(_sklearn_sample, "flower.jpg"),
}
TEST_PHOTOS = ("chelsea", "flower")


def photo_names(split: str) -> tuple[str, ...]:
  """Names of the photos of a split, in label order."""
  is_test = base.split_index(split) == base.SPLITS.index("test")
  return tuple(
      name for name in _PHOTO_LOADERS if (name in TEST_PHOTOS) == is_test
  )


@functools.cache
def load_photo(name: str) -> Image.Image:
  """The full-resolution photo `name`, as an RGB PIL image (cached)."""
  photo_HxWx3 = _PHOTO_LOADERS[name]()
  if photo_HxWx3.ndim != 3 or photo_HxWx3.shape[-1] != 3:
    raise ValueError(f"Photo {name!r} is not RGB: shape {photo_HxWx3.shape}.")
  return Image.fromarray(photo_HxWx3)


class PhotosSource:
  """`ImageSource` of random photo crops; see the module docstring."""

  def __init__(
      self,
      image_size: int,
      num_examples: int,
      seed: int,
      split: str,
      min_scale: float,
      max_scale: float,
      flip: bool,
  ):
    if not 0 < min_scale <= max_scale <= 1:
      raise ValueError(
          "Photo crop scales need 0 < min_scale <= max_scale <= 1; got"
          f" min_scale={min_scale}, max_scale={max_scale}."
      )
    self.image_size = image_size
    self.photo_names = photo_names(split)
    self.num_classes = len(self.photo_names)
    self._photos = [load_photo(name) for name in self.photo_names]
    self._num_examples = num_examples
    self._seed = seed
    self._split = split
    self._log_scale_range = (np.log(min_scale), np.log(max_scale))
    self._flip = flip

  def __len__(self) -> int:
    return self._num_examples

  def get(self, indices_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images_NxSxSx3 uint8, labels_N int32)."""
    indices_N = base.check_indices(indices_N, self._num_examples)
    labels_N = (indices_N % self.num_classes).astype(np.int32)
    size = self.image_size
    images_NxSxSx3 = np.empty((len(indices_N), size, size, 3), np.uint8)
    for n, (index, label) in enumerate(zip(indices_N, labels_N)):
      images_NxSxSx3[n] = self._crop(index, label)
    return images_NxSxSx3, labels_N

  def _crop(self, index: int, label: int) -> np.ndarray:
    rng = base.example_rng(self._seed, self._split, index)
    photo = self._photos[label]
    width, height = photo.size
    shorter = min(width, height)
    side = shorter * np.exp(rng.uniform(*self._log_scale_range))
    side = max(side, min(self.image_size, shorter))
    left, upper = rng.uniform(0, width - side), rng.uniform(0, height - side)
    crop_SxSx3 = base.crop_resize(
        photo, (left, upper, left + side, upper + side), self.image_size
    )
    if self._flip and rng.random() < 0.5:
      crop_SxSx3 = crop_SxSx3[:, ::-1]
    return crop_SxSx3
