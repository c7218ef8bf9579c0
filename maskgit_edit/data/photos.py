"""Random multi-scale crops of the colour photographs shipped with
scikit-image and scikit-learn (no download).

Whole photographs are held out: the test split crops only `TEST_PHOTOS`, the
train split only the others, so no test pixel is ever seen in training. The
label of a crop is the index of its photograph among its split's photos.
Crop i of a split is a pure function of (seed, split, i): a side drawn
log-uniformly in [min_scale, max_scale] x the photo's shorter side, a uniform
position, an optional left-right flip.
"""

import functools

import numpy as np
from PIL import Image

from maskgit_edit import data

SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket",
                  "hubble_deep_field", "immunohistochemistry", "retina",
                  "colorwheel")
SKLEARN_PHOTOS = ("china", "flower")
TEST_PHOTOS = ("chelsea", "flower")


@functools.lru_cache(maxsize=None)
def load_photo(name: str) -> Image.Image:
  """The RGB photograph called `name` (see SKIMAGE_/SKLEARN_PHOTOS)."""
  if name in SKIMAGE_PHOTOS:
    import skimage.data  # pylint: disable=g-import-not-at-top
    array = getattr(skimage.data, name)()
  elif name in SKLEARN_PHOTOS:
    from sklearn.datasets import load_sample_image  # pylint: disable=g-import-not-at-top
    array = load_sample_image(f"{name}.jpg")
  else:
    raise ValueError(f"Unknown photo {name!r}.")
  return Image.fromarray(np.asarray(array)[..., :3]).convert("RGB")


def split_photos(split: str) -> tuple[str, ...]:
  data.split_index(split)
  every = SKIMAGE_PHOTOS + SKLEARN_PHOTOS
  if split == "test":
    return TEST_PHOTOS
  return tuple(p for p in every if p not in TEST_PHOTOS)


class PhotosSource:
  """`ImageSource` of random crops of the split's photographs."""

  def __init__(self, image_size: int, num_examples: int, seed: int,
               split: str, min_scale: float = 0.25, max_scale: float = 1.0,
               flip: bool = True):
    if not 0 < min_scale <= max_scale <= 1:
      raise ValueError(f"Need 0 < min_scale <= max_scale <= 1; got "
                       f"{min_scale}, {max_scale}.")
    self.photos = split_photos(split)
    self.num_classes = len(self.photos)
    self.image_size = image_size
    self._num_examples = num_examples
    self._seed, self._split = seed, split
    self._scales = (min_scale, max_scale)
    self._flip = flip

  def __len__(self) -> int:
    return self._num_examples

  def crop(self, index: int) -> tuple[int, tuple[float, float, float, float],
                                      bool]:
    """(photo id, crop box (left, upper, right, lower), flipped)."""
    rng = data.example_rng(self._seed, self._split, index)
    label = int(rng.integers(len(self.photos)))
    width, height = load_photo(self.photos[label]).size
    low, high = np.log(self._scales)
    side = np.exp(rng.uniform(low, high)) * min(width, height)
    left = rng.uniform(0, width - side)
    upper = rng.uniform(0, height - side)
    flip = bool(self._flip and rng.random() < 0.5)
    return label, (left, upper, left + side, upper + side), flip

  def get(self, indices_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images_NxSxSx3 uint8, labels_N int32)."""
    indices_N = data.check_indices(indices_N, self._num_examples)
    images, labels = [], []
    for index in indices_N:
      label, box, flip = self.crop(int(index))
      image = data.crop_resize(load_photo(self.photos[label]), box,
                               self.image_size)
      images.append(image[:, ::-1] if flip else image)
      labels.append(label)
    size = self.image_size
    return (np.stack(images) if images else np.zeros((0, size, size, 3),
                                                       np.uint8),
            np.asarray(labels, np.int32))
