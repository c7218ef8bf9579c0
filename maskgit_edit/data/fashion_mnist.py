"""Fashion-MNIST (Xiao et al. 2017): 28 px grey garments in 10 classes.

The official split: 60,000 train and 10,000 test images. Read from the IDX
files of Debian's `dataset-fashion-mnist` package (`DEBIAN_DIR`), or from a
folder of such files given in `config.data.fashion_mnist_dir` (which may hold
the first images of a split only, as `pretrained/fashion_mnist/data/` does);
where a split's files are missing there, from `DEBIAN_DIR`, else from a
prepared TFDS copy of `fashion_mnist` (never downloaded). Images are padded
with black to `image_size` (centred) when it is at least 28, resized
otherwise, and given three equal channels.
"""

import functools
import gzip
import os

import numpy as np
from PIL import Image

from maskgit_edit.data import base

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
CLASS_NAMES = (
    "T-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
NATIVE_SIZE = 28
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
INSTALL_HINT = (
    "Fashion-MNIST is not installed: `apt-get install dataset-fashion-mnist`"
    f" (files in {DEBIAN_DIR}), or prepare a TFDS copy (`tfds build"
    " fashion_mnist --file_format=array_record`) and set data.tfds_data_dir."
)


class FashionMnistSource:
  """`ImageSource` over one split of Fashion-MNIST; see the module doc."""

  num_classes = len(CLASS_NAMES)
  class_names = CLASS_NAMES

  def __init__(
      self,
      split: str,
      image_size: int,
      folder: str | None = None,
      tfds_data_dir: str | None = None,
  ):
    base.split_index(split)
    self.image_size = image_size
    folders = tuple(dict.fromkeys((folder or DEBIAN_DIR, DEBIAN_DIR)))
    self._images_Nx28x28, self._labels_N = _load_split(
        split, folders, tfds_data_dir
    )

  def __len__(self) -> int:
    return len(self._labels_N)

  def get(self, indices_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images_NxSxSx3 uint8, labels_N int32)."""
    indices_N = base.check_indices(indices_N, len(self))
    grey_NxSxS = to_size(self._images_Nx28x28[indices_N], self.image_size)
    return np.repeat(grey_NxSxS[..., None], 3, axis=-1), self._labels_N[
        indices_N
    ].astype(np.int32)


def to_size(grey_Nx28x28: np.ndarray, image_size: int) -> np.ndarray:
  """Pads (centred, black) or resizes 28 px images to `image_size`."""
  if image_size >= NATIVE_SIZE:
    before = (image_size - NATIVE_SIZE) // 2
    after = image_size - NATIVE_SIZE - before
    return np.pad(grey_Nx28x28, ((0, 0), (before, after), (before, after)))
  return np.stack(
      [
          np.asarray(
              Image.fromarray(image).resize(
                  (image_size, image_size), Image.Resampling.BICUBIC
              )
          )
          for image in grey_Nx28x28
      ]
  )


@functools.lru_cache(maxsize=4)
def _load_split(
    split: str, folders: tuple[str, ...], tfds_data_dir: str | None
) -> tuple[np.ndarray, np.ndarray]:
  for where in folders:
    paths = [os.path.join(where, name) for name in FILES[split]]
    if all(os.path.exists(p) for p in paths):
      images = read_idx(paths[0], (NATIVE_SIZE, NATIVE_SIZE))
      labels = read_idx(paths[1], ())
      if len(images) != len(labels):
        raise ValueError(
            f"Fashion-MNIST files {paths[0]!r} and {paths[1]!r} hold"
            f" {len(images)} images but {len(labels)} labels."
        )
      break
  else:
    images, labels = _load_tfds(split, tfds_data_dir)
  if labels.max() >= len(CLASS_NAMES):
    raise ValueError(
        f"Fashion-MNIST {split} labels reach {labels.max()}; expected 0 to"
        f" {len(CLASS_NAMES) - 1}."
    )
  images.flags.writeable = labels.flags.writeable = False
  return images, labels


def read_idx(path: str, item_shape: tuple[int, ...]) -> np.ndarray:
  """A gzipped IDX file of unsigned bytes: [N, *item_shape], N from its
  header (a subset of the official files reads as well)."""
  try:
    with gzip.open(path, "rb") as f:
      raw = f.read()
  except (OSError, EOFError) as e:
    raise ValueError(f"Corrupt Fashion-MNIST file {path!r}: {e}") from e
  ndim = 1 + len(item_shape)
  header = 4 + 4 * ndim
  dims = tuple(
      int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
  )
  if (
      len(raw) < header
      or int.from_bytes(raw[:4], "big") != 0x0800 + ndim  # unsigned bytes
      or dims[1:] != item_shape
      or len(raw) != header + int(np.prod(dims))
  ):
    raise ValueError(
        f"Corrupt Fashion-MNIST file {path!r}: expected an IDX array of"
        f" unsigned bytes of shape [N, {', '.join(map(str, item_shape))}]"
        f" and header + N * {int(np.prod(item_shape))} bytes; got a header"
        f" of {dims} and {len(raw)} bytes."
    )
  return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def write_idx(path: str, array: np.ndarray) -> None:
  """Writes uint8 `array` as a gzipped IDX file (`read_idx`'s format)."""
  array = np.asarray(array, np.uint8)
  header = (0x0800 + array.ndim).to_bytes(4, "big") + b"".join(
      n.to_bytes(4, "big") for n in array.shape
  )
  # mtime=0: the same array gives the same bytes (committed copies).
  with (
      open(path, "wb") as raw,
      gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f,
  ):
    f.write(header + array.tobytes())


def _load_tfds(split: str, tfds_data_dir: str | None):
  """(images [N, 28, 28], labels [N]) of a prepared TFDS copy."""
  data_dir = tfds_data_dir or os.environ.get(
      "TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets")
  )
  if not os.path.isdir(os.path.join(data_dir, "fashion_mnist")):
    raise FileNotFoundError(INSTALL_HINT)
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  try:
    examples = tfds.data_source(
        "fashion_mnist", split=split, data_dir=tfds_data_dir, download=False
    )
  except (NotImplementedError, KeyError, FileNotFoundError) as e:
    raise FileNotFoundError(INSTALL_HINT) from e
  rows = [examples[i] for i in range(len(examples))]
  images = np.stack([np.asarray(r["image"]).reshape(28, 28) for r in rows])
  labels = np.array([r["label"] for r in rows], np.uint8)
  return images.astype(np.uint8), labels
