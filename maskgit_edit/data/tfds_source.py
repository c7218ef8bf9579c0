"""TFDS datasets through `tfds.data_source` (ArrayRecord, random access).

No TensorFlow needed. The dataset must have been prepared by the user, e.g.
`tfds build imagenet2012 --file_format=array_record`.
"""

import numpy as np
from PIL import Image

from maskgit_edit import data


class TfdsSource:
  """`ImageSource` over the 'image' (and 'label') features of a TFDS split."""

  def __init__(self, name: str, split: str, image_size: int,
               data_dir: str | None = None):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    try:
      self._source = tfds.data_source(name, split=split, data_dir=data_dir,
                                      download=False)
    except Exception as e:  # tfds raises several types for a missing dataset
      raise FileNotFoundError(
          f"TFDS dataset {name!r} (split {split!r}) is not available in "
          f"{data_dir or 'the default data dir'}: prepare it with `tfds build "
          f"{name} --file_format=array_record`. ({e})") from e
    info = getattr(self._source, "dataset_info", None)
    label = info.features["label"] if info and "label" in info.features else None
    self.num_classes = int(label.num_classes) if label is not None else 0
    self.image_size = image_size
    if len(self._source) == 0:
      raise ValueError(f"TFDS dataset {name!r} split {split!r} is empty.")

  def __len__(self) -> int:
    return len(self._source)

  def get(self, indices_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images_NxSxSx3 uint8, labels_N int32)."""
    indices_N = data.check_indices(indices_N, len(self._source))
    images, labels = [], []
    for index in indices_N:
      example = self._source[int(index)]
      array = np.asarray(example["image"])
      if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
      image = Image.fromarray(array).convert("RGB")
      images.append(data.crop_resize(image, data.center_square(*image.size),
                                     self.image_size))
      labels.append(int(example.get("label", 0)))
    return np.stack(images), np.asarray(labels, np.int32)
