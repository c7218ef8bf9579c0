"""The strokes of a manifest as arrays, their class labels, and real images.

A manifest is written by `strokes.write_stroke_set` (read with
`strokes.read_manifest`, whose errors on missing files or mixed image sizes
surface unchanged). Its optional top-level `data` (a `config.data` mapping)
and `split` (default "test") name the data source its `image_index` entries
index into. Class labels for class-conditional models are re-read from that
source (`stroke_labels`); a manifest without `data` gets label 0 for every
stroke, with a warning.
"""

from collections.abc import Mapping
import dataclasses
import os
import pathlib
from typing import Any
import warnings

import numpy as np

from maskgit_edit import data
from maskgit_edit import files
from maskgit_edit import images as images_lib
from maskgit_edit import strokes


@dataclasses.dataclass(frozen=True)
class StrokeSet:
  """The strokes of a manifest, as arrays in manifest order.

  Attributes:
    manifest_path: absolute path of the manifest.
    ids: stroke ids [N].
    modes: stroke modes [N] ("inversion" / "counterfactual").
    image_indices_N: int64 index of each stroke's source in the data source,
      -1 where the manifest does not record it.
    sources_NxHxWx3: float32 source images in [0, 1].
    strokes_NxHxWx3: float32 stroke images in [0, 1].
    masks_NxHxW: bool stroke masks.
    data_config: the manifest's `data` mapping, or None.
    split: the manifest's `split` ("test" if absent).
  """

  manifest_path: str
  ids: tuple[str, ...]
  modes: tuple[str, ...]
  image_indices_N: np.ndarray
  sources_NxHxWx3: np.ndarray
  strokes_NxHxWx3: np.ndarray
  masks_NxHxW: np.ndarray
  data_config: Mapping[str, Any] | None
  split: str

  def __len__(self) -> int:
    return len(self.ids)

  @property
  def image_size(self) -> int:
    return self.sources_NxHxWx3.shape[1]


def load_stroke_set(manifest_path: str | os.PathLike) -> StrokeSet:
  """Reads a manifest (see `strokes.read_manifest` for the errors raised)."""
  manifest_path = pathlib.Path(manifest_path).resolve()
  examples = strokes.read_manifest(manifest_path)
  if not examples:
    raise ValueError(f"Stroke manifest {manifest_path} has no entries.")
  manifest = files.read_json(manifest_path, "Stroke manifest")
  stack = lambda name: images_lib.to_float(
      np.stack([getattr(e, name) for e in examples])
  )
  return StrokeSet(
      manifest_path=str(manifest_path),
      ids=tuple(e.entry["id"] for e in examples),
      modes=tuple(e.entry["mode"] for e in examples),
      image_indices_N=np.array(
          [e.entry.get("image_index", -1) for e in examples], np.int64
      ),
      sources_NxHxWx3=stack("source"),
      strokes_NxHxWx3=stack("stroke_image"),
      masks_NxHxW=np.stack([e.mask for e in examples]),
      data_config=manifest.get("data"),
      split=manifest.get("split", "test"),
  )


def stroke_labels(stroke_set: StrokeSet) -> np.ndarray:
  """Class label of each stroke's source, int32 [N].

  Re-reads the sources from the manifest's data source and checks they are
  the manifest's images. Without a recorded data source, every label is 0
  (with a warning): a class-conditional model then edits as if every image
  were of class 0.
  """
  n = len(stroke_set)
  if stroke_set.data_config is None:
    warnings.warn(
        f"{stroke_set.manifest_path} records no data source "
        "('data'): using class label 0 for every stroke."
    )
    return np.zeros(n, np.int32)
  indices_N = stroke_set.image_indices_N
  if np.any(indices_N < 0):
    raise ValueError(
        f"{stroke_set.manifest_path} records a data source but "
        f"{np.sum(indices_N < 0)} entries lack an image_index."
    )
  unique, inverse = np.unique(indices_N, return_inverse=True)
  images, labels = data.get_source(
      stroke_set.data_config, stroke_set.split
  ).get(unique)
  mismatch = np.any(
      images_lib.to_float(images)[inverse] != stroke_set.sources_NxHxWx3,
      axis=(1, 2, 3),
  )
  if mismatch.any():
    ids = np.array(stroke_set.ids)[mismatch][:5].tolist()
    raise ValueError(
        f"The sources of strokes {ids} differ from images "
        f"{indices_N[mismatch][:5].tolist()} of the manifest's data source "
        f"({stroke_set.data_config.get('name')!r}, split "
        f"{stroke_set.split!r}), so their labels are unknown. Remove 'data' "
        "from the manifest to use label 0."
    )
  return labels[inverse].astype(np.int32)


def real_images(
    stroke_set: StrokeSet,
    fallback_data_config: Mapping[str, Any],
    split: str,
    num: int,
) -> np.ndarray:
  """Held-out real images for SWD, float32 [num, H, W, 3].

  From the manifest's data source (else `fallback_data_config`) at `split`,
  in index order, skipping the stroke sources when `split` is the
  manifest's split of the same source.
  """
  config = stroke_set.data_config or fallback_data_config
  source = data.get_source(config, split)
  candidates = np.arange(len(source))
  if stroke_set.data_config is not None and split == stroke_set.split:
    candidates = np.setdiff1d(candidates, stroke_set.image_indices_N)
  if len(candidates) < num:
    raise ValueError(
        f"Asked for {num} real images but the {split!r} split of "
        f"{config['name']!r} has {len(candidates)} besides the "
        "stroke sources."
    )
  images, _ = source.get(candidates[:num])
  if images.shape[1] != stroke_set.image_size:
    raise ValueError(
        f"Real images are {images.shape[1]} px but the strokes "
        f"are {stroke_set.image_size} px."
    )
  return images_lib.to_float(images)


def stroke_clusters(image_indices_N) -> np.ndarray:
  """Source image of each stroke (its own cluster where unrecorded: index
  < 0), [N]."""
  indices_N = np.asarray(image_indices_N)
  return np.where(indices_N >= 0, indices_N, -1 - np.arange(len(indices_N)))
