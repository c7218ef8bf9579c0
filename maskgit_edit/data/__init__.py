"""Image sources picked by name from `config.data`, and the data stream.

Every source is a random-access `ImageSource`: `get(indices)` returns square RGB
uint8 images and int32 labels, deterministically per index, so that a training
step's batch is a pure function of (step, seed) (see `batch_indices`) and
multi-host runs shard it with `process_slice`.

`config.data` fields (`default_data_config()` gives them all with defaults;
optional fields missing from a config take those defaults):
  name: which source. One of
      'fashion_mnist'  Fashion-MNIST, 10 garment classes (`fashion_mnist.py`);
      'shapes'         procedural multi-object scenes (`shapes.py`);
      'photos'         random crops of the photographs shipped with
                       scikit-image and scikit-learn (`photos.py`);
      'tfds:<name>'    a TFDS dataset prepared in ArrayRecord format
                       (`tfds_source.py`), e.g. 'tfds:imagenet2012';
      'folder:<path>'  every image under a folder (`folder.py`).
  image_size: side of the square output images, in pixels.
  seed: seed of the generated sources (shapes scenes, photo crops). The
      train and test splits draw from disjoint streams.
  num_train, num_test: number of examples of the generated sources (shapes,
      photos) in each split; tfds and folder sources have their own sizes.
  photos_min_scale, photos_max_scale: range of the crop side as a fraction of
      the photo's shorter side (sampled log-uniformly).
  photos_flip: whether photo crops are randomly mirrored left-right.
  fashion_mnist_dir: folder of the Fashion-MNIST IDX files (None: Debian's).
  tfds_data_dir: TFDS data directory (None: the TFDS default).
  tfds_train_split, tfds_test_split: TFDS split names used for 'train' and
      'test' (e.g. 'validation' for the test split of imagenet2012).
  folder_test_fraction: fraction of a folder's files held out for 'test'.
  folder_allow_upscale: upscale folder images smaller than image_size (with a
      warning) instead of raising.
"""

import functools
from typing import Any, Protocol

import ml_collections
import numpy as np
from ml_collections import config_dict

from maskgit_edit.data import base

SPLITS = base.SPLITS


class ImageSource(Protocol):
  """Random-access source of square RGB images with integer labels."""

  image_size: int  # H == W == image_size.
  num_classes: int  # 0 if unlabelled.

  def __len__(self) -> int:
    ...

  def get(self, indices_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images_NxHxWx3 uint8, labels_N int32), deterministically."""
    ...


def default_data_config() -> ml_collections.ConfigDict:
  """Returns `config.data` with every field at its default (see module doc)."""
  return ml_collections.ConfigDict(
      dict(
          name="shapes",
          image_size=32,
          seed=0,
          num_train=20000,
          num_test=1000,
          photos_min_scale=0.25,
          photos_max_scale=1.0,
          photos_flip=True,
          fashion_mnist_dir=config_dict.placeholder(str),
          tfds_data_dir=config_dict.placeholder(str),
          tfds_train_split="train",
          tfds_test_split="test",
          folder_test_fraction=0.1,
          folder_allow_upscale=False,
      )
  )


def get_source(data_config: Any, split: str) -> ImageSource:
  """Builds the source named by `data_config.name` for `split`.

  Args:
    data_config: `config.data` (ConfigDict or mapping); see the module doc.
    split: 'train' or 'test'.

  Raises:
    ValueError: unknown source name or split.
  """
  base.split_index(split)
  option = functools.partial(_option, data_config)
  name = data_config["name"]
  image_size = data_config["image_size"]
  # Sources are imported on demand: tensorflow_datasets alone takes seconds.
  if name == "fashion_mnist":
    from maskgit_edit.data import fashion_mnist

    return fashion_mnist.FashionMnistSource(
        split=split,
        image_size=image_size,
        folder=option("fashion_mnist_dir"),
        tfds_data_dir=option("tfds_data_dir"),
    )
  if name == "shapes":
    from maskgit_edit.data import shapes

    return shapes.ShapesSource(
        image_size=image_size,
        num_examples=_num_examples(data_config, split),
        seed=data_config["seed"],
        split=split,
    )
  if name == "photos":
    from maskgit_edit.data import photos

    return photos.PhotosSource(
        image_size=image_size,
        num_examples=_num_examples(data_config, split),
        seed=data_config["seed"],
        split=split,
        min_scale=option("photos_min_scale"),
        max_scale=option("photos_max_scale"),
        flip=option("photos_flip"),
    )
  if name.startswith("tfds:"):
    from maskgit_edit.data import tfds_source

    return tfds_source.TfdsSource(
        name=name.removeprefix("tfds:"),
        split=option(f"tfds_{split}_split"),
        image_size=image_size,
        data_dir=option("tfds_data_dir"),
    )
  if name.startswith("folder:"):
    from maskgit_edit.data import folder

    return folder.FolderSource(
        path=name.removeprefix("folder:"),
        split=split,
        image_size=image_size,
        test_fraction=option("folder_test_fraction"),
        allow_upscale=option("folder_allow_upscale"),
    )
  raise ValueError(
      f"Unknown data source name {name!r}; expected 'fashion_mnist',"
      " 'shapes', 'photos',"
      " 'tfds:<name>' or 'folder:<path>'."
  )


def class_names(data_config: Any) -> tuple[str, ...]:
  """Names of the classes of a source, without reading its data; () for
  sources whose classes are unnamed."""
  name = data_config["name"]
  if name == "fashion_mnist":
    from maskgit_edit.data import fashion_mnist

    return fashion_mnist.CLASS_NAMES
  if name == "shapes":
    from maskgit_edit.data import shapes

    return shapes.SHAPE_NAMES
  return ()


def batch_indices(
    step: int, batch_size: int, num_examples: int, seed: int
) -> np.ndarray:
  """Global example indices of the batch of a training step.

  The stream is the concatenation of per-epoch permutations of
  range(num_examples), the permutation of epoch e seeded by (seed, e); the
  batch of step s is stream[s * batch_size : (s + 1) * batch_size]. It is thus
  a pure function of (step, seed): a run resumed at step s continues the exact
  data stream. Batches may straddle epochs, and batch_size may exceed
  num_examples.

  Returns:
    indices_B: int64 array of shape [batch_size].
  """
  if step < 0 or batch_size <= 0 or num_examples <= 0 or seed < 0:
    raise ValueError(
        f"batch_indices needs step >= 0, batch_size > 0, num_examples > 0 and"
        f" seed >= 0; got step={step}, batch_size={batch_size},"
        f" num_examples={num_examples}, seed={seed}."
    )
  position_B = step * batch_size + np.arange(batch_size, dtype=np.int64)
  epoch_B, offset_B = np.divmod(position_B, num_examples)
  indices_B = np.empty(batch_size, dtype=np.int64)
  for epoch in np.unique(epoch_B):
    in_epoch = epoch_B == epoch
    indices_B[in_epoch] = _epoch_permutation(seed, int(epoch), num_examples)[
        offset_B[in_epoch]
    ]
  return indices_B


# Consecutive steps reuse the same one or two epochs; caching avoids
# re-permuting large datasets (e.g. 1.28M indices) at every step.
@functools.lru_cache(maxsize=4)
def _epoch_permutation(seed: int, epoch: int, num_examples: int) -> np.ndarray:
  permutation = np.random.default_rng([seed, epoch]).permutation(num_examples)
  permutation.flags.writeable = False
  return permutation


def process_slice(
    indices_B: np.ndarray, process_index: int, process_count: int
) -> np.ndarray:
  """This host's contiguous shard of a global batch.

  Args:
    indices_B: global batch indices, shape [B]; B divisible by process_count.
    process_index: this host's index in [0, process_count).
    process_count: number of hosts.

  Returns:
    indices_b: shape [B // process_count], the process_index-th block.
  """
  (batch_size,) = np.shape(indices_B)
  if process_count <= 0 or not 0 <= process_index < process_count:
    raise ValueError(
        f"process_index must be in [0, process_count); got"
        f" process_index={process_index}, process_count={process_count}."
    )
  if batch_size % process_count:
    raise ValueError(
        f"Global batch size {batch_size} is not divisible by the process"
        f" count {process_count}."
    )
  per_process = batch_size // process_count
  start = process_index * per_process
  return indices_B[start : start + per_process]


def load_images(
    data_config: Any, split: str, num: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """Returns (images_NxHxWx3 uint8, labels_N int32) of the first `num` examples.

  All examples of the split when `num` is None.
  """
  source = get_source(data_config, split)
  num = len(source) if num is None else num
  if not 0 <= num <= len(source):
    raise ValueError(
        f"Asked for {num} examples of the {split!r} split, which has"
        f" {len(source)}."
    )
  return source.get(np.arange(num))


def _num_examples(data_config: Any, split: str) -> int:
  num = data_config[f"num_{split}"]
  if num <= 0:
    raise ValueError(f"num_{split} must be positive; got {num}.")
  return num


def _option(data_config: Any, key: str) -> Any:
  return data_config.get(key, default_data_config()[key])
