"""TFDS datasets read through `tfds.data_source` (random access, no TensorFlow).

The dataset must already be prepared in ArrayRecord format, e.g.
  tfds build imagenet2012 --file_format=array_record [--data_dir=DIR]
Nothing is downloaded. The 'image' feature is centre-cropped to a square and
resized (grey images get three equal channels); the label is the 'label'
feature when the dataset has one (num_classes from its ClassLabel), else 0.
"""

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from maskgit_edit.data import base


class TfdsSource:
  """`ImageSource` over one split of a prepared TFDS dataset."""

  def __init__(
      self, name: str, split: str, image_size: int, data_dir: str | None
  ):
    self.image_size = image_size
    self._name = name
    try:
      self._examples = tfds.data_source(
          name, split=split, data_dir=data_dir, download=False
      )
    # What tfds raises for a dataset that is not prepared (or prepared as
    # TFRecord only, which has no random access) or for a missing split.
    except (NotImplementedError, KeyError, FileNotFoundError) as e:
      raise FileNotFoundError(
          f"TFDS dataset {name!r} (split {split!r}) is not prepared in"
          f" ArrayRecord format in data_dir={data_dir or 'the TFDS default'}."
          f" Prepare it with `tfds build {name} --file_format=array_record"
          f"{f' --data_dir={data_dir}' if data_dir else ''}`. ({e})"
      ) from e
    features = self._examples.dataset_info.features
    if "image" not in features:
      raise ValueError(
          f"TFDS dataset {name!r} has no 'image' feature; it has"
          f" {sorted(features.keys())}."
      )
    self._has_label = "label" in features
    self.num_classes = (
        getattr(features["label"], "num_classes", 0) if self._has_label else 0
    )

  def __len__(self) -> int:
    return len(self._examples)

  def get(self, indices_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images_NxSxSx3 uint8, labels_N int32)."""
    indices_N = base.check_indices(indices_N, len(self._examples))
    size = self.image_size
    images_NxSxSx3 = np.empty((len(indices_N), size, size, 3), np.uint8)
    labels_N = np.zeros(len(indices_N), np.int32)
    for n, index in enumerate(indices_N):
      example = self._examples[int(index)]
      image = _to_pil(np.asarray(example["image"]))
      images_NxSxSx3[n] = base.crop_resize(
          image, base.center_square(*image.size), size
      )
      if self._has_label:
        labels_N[n] = example["label"]
    return images_NxSxSx3, labels_N


def _to_pil(image_HxWxC: np.ndarray) -> Image.Image:
  """A PIL image of an HxWx1 (grey), HxWx3 or HxWx4 uint8 array."""
  if image_HxWxC.ndim != 3 or image_HxWxC.shape[-1] not in (1, 3, 4):
    raise ValueError(
        f"Expected an HxWx1, HxWx3 or HxWx4 image; got {image_HxWxC.shape}."
    )
  # crop_resize turns modes 'L' and 'RGBA' into RGB.
  if image_HxWxC.shape[-1] == 1:
    return Image.fromarray(image_HxWxC[..., 0])
  return Image.fromarray(image_HxWxC)
