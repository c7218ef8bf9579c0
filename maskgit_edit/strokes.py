"""SDEdit-style automatic stroke simulation and the stroke-set manifest.

A simulated stroke imitates a user painting a coarse blob of flat colour over
an image region, as in SDEdit's stroke generation:

1. median-filter each channel (kernel ~23 px at 256 px, scaled with size) to
   wipe out texture,
2. simplify colours, either with a k-means palette (~6 colours) or with SLIC
   superpixels,
3. split the simplified image into connected regions and pick one whose area
   is a moderate fraction of the image,
4. fill that region with a flat colour: its mean colour in the original image
   ("inversion": the stroke is a realistic, flattened version of the content)
   or a random colour clearly different from that mean ("counterfactual";
   a grey level on grey images).

Convention: images are uint8 RGB arrays of shape HxWx3 everywhere in this
module (inputs, stroke images, PNG files); colours are uint8 RGB triples;
colour distances are L2 in RGB scaled to [0, 1]. Masks are HxW bool.

Everything random draws from an explicit `np.random.Generator`; `make_strokes`
seeds one per (seed, image) for the segmentation and one per (seed, image,
stroke) for the region and colour, so a stroke does not depend on which other
images are in the batch or on their order.
"""

from collections.abc import Mapping, Sequence
import dataclasses
import json
import os
import pathlib
from typing import Any

import numpy as np
from PIL import Image
import skimage.filters
import skimage.measure
import skimage.segmentation
import threadpoolctl

from maskgit_edit import files
from maskgit_edit import regions

MODES = ("inversion", "counterfactual")
SEGMENTATIONS = ("kmeans", "slic")
# Minimum L2 distance (RGB in [0, 1]) between a counterfactual fill colour and
# the region's mean colour, so the edit is a visible change of colour.
COUNTERFACTUAL_MIN_DISTANCE = 0.3
MANIFEST_NAME = "manifest.json"

_REFERENCE_SIZE = 256
_REFERENCE_MEDIAN_KERNEL = 23
# The palette is fitted on a pixel subsample: colours are well estimated from a
# few thousand pixels and the fit then costs the same at any image size.
_MAX_PALETTE_FIT_PIXELS = 4096
_SLIC_COMPACTNESS = 10.0
# As many superpixels as palette colours would average ~1/6 of the image each
# and often exceed the admissible stroke area; 3x gives blobs of ~5%.
_SLIC_SEGMENTS_PER_COLOR = 3
_MANIFEST_RESERVED_KEYS = ("image_size", "seed", "entries")


@dataclasses.dataclass(frozen=True)
class Stroke:
  """One simulated stroke.

  Attributes:
    stroke_image: HxWx3 uint8, the source with the stroke region filled.
    mask: HxW bool, exactly the filled region.
    mode: 'inversion' or 'counterfactual'.
    color: uint8 RGB fill colour.
  """

  stroke_image: np.ndarray
  mask: np.ndarray
  mode: str
  color: tuple[int, int, int]

  @property
  def area_frac(self) -> float:
    """Fraction of the image covered by the stroke."""
    return float(self.mask.mean())


@dataclasses.dataclass(frozen=True)
class StrokeRecord:
  """A stroke together with where it came from.

  Attributes:
    image_index: index of the source image (its row in the images given to
      `make_strokes`, offset by `first_index`).
    stroke_index: index of the stroke among the strokes of that image.
    seed: global seed the stroke was generated from.
    stroke: the stroke itself.
  """

  image_index: int
  stroke_index: int
  seed: int
  stroke: Stroke

  @property
  def id(self) -> str:
    return f"{self.image_index:04d}_{self.stroke_index}"


@dataclasses.dataclass(frozen=True)
class StrokeExample:
  """A manifest entry with its images loaded.

  Attributes:
    entry: the manifest entry (id, paths, mode, indices, color, area_frac,
      seed).
    source: HxWx3 uint8 source image.
    stroke_image: HxWx3 uint8 stroke image.
    mask: HxW bool stroke mask.
  """

  entry: Mapping[str, Any]
  source: np.ndarray
  stroke_image: np.ndarray
  mask: np.ndarray


def median_kernel_size(image_size: int) -> int:
  """Odd median-filter width, ~23 px at 256 px scaled linearly, at least 3."""
  width = round(_REFERENCE_MEDIAN_KERNEL * image_size / _REFERENCE_SIZE)
  return max(3, width | 1)


def _check_image(image: np.ndarray) -> None:
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f"Expected an HxWx3 RGB image, got shape {image.shape}.")
  if image.dtype != np.uint8:
    raise ValueError(f"Expected a uint8 image, got dtype {image.dtype}.")


def _median_filter(image_HxWx3: np.ndarray, kernel: int) -> np.ndarray:
  # The histogram-based rank filter is ~20x faster than ndimage's at 256 px.
  footprint_KxK = np.ones((kernel, kernel), dtype=bool)
  return np.stack(
      [
          skimage.filters.median(
              channel_HxW, footprint=footprint_KxK, behavior="rank"
          )
          for channel_HxW in np.moveaxis(image_HxWx3, -1, 0)
      ],
      axis=-1,
  )


def _kmeans_labels(
    image_HxWx3: np.ndarray, rng: np.random.Generator, num_colors: int
) -> np.ndarray:
  """Index of each pixel's colour in a k-means palette, HxW int."""
  pixels_Px3 = image_HxWx3.reshape(-1, 3).astype(np.float32) / 255.0
  num_fit = min(len(pixels_Px3), _MAX_PALETTE_FIT_PIXELS)
  fit_pixels_Fx3 = pixels_Px3[
      rng.choice(len(pixels_Px3), num_fit, replace=False)
  ]
  # Fewer distinct colours than clusters would leave empty clusters.
  num_clusters = min(num_colors, len(np.unique(fit_pixels_Fx3, axis=0)))
  # Imported here: sklearn takes ~1.5 s to import, and most tools that import
  # this module never colour-cluster.
  import sklearn.cluster  # pylint: disable=g-import-not-at-top

  kmeans = sklearn.cluster.KMeans(
      n_clusters=num_clusters,
      n_init=1,
      random_state=int(rng.integers(2**31 - 1)),
  )
  # A few thousand points need no threads, and OpenMP's busy-waiting workers
  # slow the fit ~10x when other processes share the cores.
  with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
    kmeans.fit(fit_pixels_Fx3)
    labels_P = kmeans.predict(pixels_Px3)
  return labels_P.reshape(image_HxWx3.shape[:2])


def _slic_labels(image_HxWx3: np.ndarray, num_colors: int) -> np.ndarray:
  """SLIC superpixel index of each pixel, HxW int."""
  return skimage.segmentation.slic(
      image_HxWx3.astype(np.float32) / 255.0,
      n_segments=_SLIC_SEGMENTS_PER_COLOR * num_colors,
      compactness=_SLIC_COMPACTNESS,
      start_label=0,
      channel_axis=-1,
  )


def segment_regions(
    image_HxWx3: np.ndarray,
    rng: np.random.Generator,
    *,
    num_colors: int = 6,
    median_kernel: int | None = None,
    segmentation: str = "kmeans",
) -> np.ndarray:
  """Splits an image into flat-colour connected regions.

  Args:
    image_HxWx3: uint8 RGB image.
    rng: source of randomness (pixel subsample and k-means seed).
    num_colors: palette size for 'kmeans'; 'slic' makes
      _SLIC_SEGMENTS_PER_COLOR times as many superpixels.
    median_kernel: odd median-filter width; None scales it with image size
      (`median_kernel_size`).
    segmentation: 'kmeans' (colour palette) or 'slic' (superpixels).

  Returns:
    HxW int array of region ids 1..R (4-connected regions of equal label).
  """
  _check_image(image_HxWx3)
  if segmentation not in SEGMENTATIONS:
    raise ValueError(
        f"Unknown segmentation {segmentation!r}; expected one of "
        f"{SEGMENTATIONS}."
    )
  if num_colors < 2:
    raise ValueError(f"num_colors must be >= 2, got {num_colors}.")
  if median_kernel is None:
    median_kernel = median_kernel_size(min(image_HxWx3.shape[:2]))
  if median_kernel < 1 or median_kernel % 2 == 0:
    raise ValueError(
        f"median_kernel must be odd and positive, got {median_kernel}."
    )
  filtered_HxWx3 = _median_filter(image_HxWx3, median_kernel)
  if segmentation == "kmeans":
    labels_HxW = _kmeans_labels(filtered_HxWx3, rng, num_colors)
  else:
    labels_HxW = _slic_labels(filtered_HxWx3, num_colors)
  # `label` treats 0 as background; shift so every label forms regions.
  return skimage.measure.label(labels_HxW + 1, connectivity=1)


def pick_region(
    regions_HxW: np.ndarray,
    rng: np.random.Generator,
    *,
    min_area_frac: float,
    max_area_frac: float,
) -> np.ndarray:
  """Picks one region, uniformly among those of admissible area.

  Args:
    regions_HxW: region ids 1..R as from `segment_regions`.
    rng: source of randomness.
    min_area_frac: smallest admissible area, as a fraction of the image.
    max_area_frac: largest admissible area, as a fraction of the image.

  Returns:
    HxW bool mask of the region. If no region is admissible, the region whose
    area is closest to [min_area_frac, max_area_frac] (the first on ties).
  """
  if not 0.0 <= min_area_frac <= max_area_frac <= 1.0:
    raise ValueError(
        "Need 0 <= min_area_frac <= max_area_frac <= 1, got "
        f"{min_area_frac} and {max_area_frac}."
    )
  area_fracs_R = np.bincount(regions_HxW.ravel())[1:] / regions_HxW.size
  admissible_R = (area_fracs_R >= min_area_frac) & (
      area_fracs_R <= max_area_frac
  )
  if admissible_R.any():
    region = rng.choice(np.flatnonzero(admissible_R))
  else:
    gap_R = np.maximum(
        min_area_frac - area_fracs_R, area_fracs_R - max_area_frac
    )
    region = np.argmin(gap_R)
  return regions_HxW == region + 1


def region_mean_color(
    image_HxWx3: np.ndarray, mask_HxW: np.ndarray
) -> np.ndarray:
  """Mean RGB of the image over the mask, float64 [3] in [0, 255]."""
  return image_HxWx3[mask_HxW].mean(axis=0)


def _counterfactual_color(
    mean_rgb: np.ndarray, rng: np.random.Generator, grey: bool
) -> np.ndarray:
  # Rejection sampling ends quickly: even a mid-grey mean rejects only the
  # ~11% of the RGB cube (35% of the grey levels) within the minimum distance.
  while True:
    color_rgb = (
        np.repeat(rng.integers(0, 256, dtype=np.uint8), 3)
        if grey
        else rng.integers(0, 256, size=3, dtype=np.uint8)
    )
    distance = np.linalg.norm((color_rgb - mean_rgb) / 255.0)
    if distance >= COUNTERFACTUAL_MIN_DISTANCE:
      return color_rgb


def fill_region(
    image_HxWx3: np.ndarray,
    mask_HxW: np.ndarray,
    rng: np.random.Generator,
    mode: str,
) -> Stroke:
  """Paints the masked region with a flat colour chosen by `mode`.

  Args:
    image_HxWx3: uint8 RGB source.
    mask_HxW: bool, non-empty region to fill.
    rng: source of randomness (counterfactual colour).
    mode: 'inversion' (region mean colour, rounded) or 'counterfactual'
      (uniform random colour at least COUNTERFACTUAL_MIN_DISTANCE from the
      region mean; a grey level when the source is grey).

  Returns:
    The stroke; outside the mask its image equals the source exactly.
  """
  if mode not in MODES:
    raise ValueError(f"Unknown stroke mode {mode!r}; expected one of {MODES}.")
  if not mask_HxW.any():
    raise ValueError("Cannot fill an empty region.")
  mean_rgb = region_mean_color(image_HxWx3, mask_HxW)
  if mode == "inversion":
    color_rgb = np.rint(mean_rgb).astype(np.uint8)
  else:
    grey = bool((image_HxWx3 == image_HxWx3[..., :1]).all())
    color_rgb = _counterfactual_color(mean_rgb, rng, grey)
  stroke_image_HxWx3 = image_HxWx3.copy()
  stroke_image_HxWx3[mask_HxW] = color_rgb
  return Stroke(
      stroke_image=stroke_image_HxWx3,
      mask=mask_HxW,
      mode=mode,
      color=tuple(int(c) for c in color_rgb),
  )


def _stroke_from_regions(
    image_HxWx3, regions_HxW, rng, mode, *, min_area_frac, max_area_frac
) -> Stroke:
  mask_HxW = pick_region(
      regions_HxW, rng, min_area_frac=min_area_frac, max_area_frac=max_area_frac
  )
  return fill_region(image_HxWx3, mask_HxW, rng, mode)


def make_strokes(
    images_NxHxWx3: np.ndarray,
    *,
    strokes_per_image: int,
    modes: Sequence[str] = MODES,
    seed: int,
    num_colors: int = 6,
    median_kernel: int | None = None,
    segmentation: str = "kmeans",
    min_area_frac: float = 0.03,
    max_area_frac: float = 0.35,
    first_index: int = 0,
) -> list[StrokeRecord]:
  """Simulates `strokes_per_image` strokes on every image.

  Stroke k of an image uses mode `modes[k % len(modes)]`. Each image is
  segmented once with a generator seeded by (seed, image_index); each stroke
  picks its region and colour with one seeded by (seed, image_index, k), so
  results depend only on the seed and the indices: a set made in chunks
  (each with its `first_index`) equals the set made in one call.

  Args:
    images_NxHxWx3: uint8 RGB images.
    strokes_per_image: number of strokes per image (>= 1).
    modes: stroke modes to cycle through.
    seed: non-negative global seed.
    num_colors: palette size; sets the superpixel count for 'slic'.
    median_kernel: odd median-filter width; None scales ~23 px at 256 px.
    segmentation: 'kmeans' or 'slic'.
    min_area_frac: smallest admissible stroke area (fraction of the image).
    max_area_frac: largest admissible stroke area (fraction of the image).
    first_index: image_index of the first image (row n has first_index + n).

  Returns:
    N * strokes_per_image records, image-major.
  """
  if strokes_per_image < 1:
    raise ValueError(
        f"strokes_per_image must be >= 1, got {strokes_per_image}."
    )
  if seed < 0 or first_index < 0:
    raise ValueError(
        f"seed and first_index must be >= 0, got {seed} and {first_index}."
    )
  if not modes:
    raise ValueError("Need at least one stroke mode.")
  for mode in modes:
    if mode not in MODES:
      raise ValueError(
          f"Unknown stroke mode {mode!r}; expected one of {MODES}."
      )
  records = []
  for image_index, image_HxWx3 in enumerate(images_NxHxWx3, first_index):
    regions_HxW = segment_regions(
        image_HxWx3,
        np.random.default_rng([seed, image_index]),
        num_colors=num_colors,
        median_kernel=median_kernel,
        segmentation=segmentation,
    )
    for stroke_index in range(strokes_per_image):
      stroke = _stroke_from_regions(
          image_HxWx3,
          regions_HxW,
          np.random.default_rng([seed, image_index, stroke_index]),
          modes[stroke_index % len(modes)],
          min_area_frac=min_area_frac,
          max_area_frac=max_area_frac,
      )
      records.append(
          StrokeRecord(
              image_index=image_index,
              stroke_index=stroke_index,
              seed=seed,
              stroke=stroke,
          )
      )
  return records


def _save_png(path: pathlib.Path, array: np.ndarray) -> None:
  with files.atomic_path(str(path)) as tmp:
    Image.fromarray(array).save(tmp)


def write_stroke_set(
    out_dir: str | os.PathLike[str],
    sources_NxHxWx3: np.ndarray,
    records: Sequence[StrokeRecord],
    *,
    metadata: Mapping[str, Any] | None = None,
) -> pathlib.Path:
  """Writes sources, strokes, masks and a manifest to a directory.

  Files: `source_XXXX.png` per source image, `stroke_XXXX_k.png` and
  `mask_XXXX_k.png` (L mode, 0/255) per record, and `manifest.json` holding
  top-level `image_size` [H, W], `seed`, the given metadata (e.g. `data`,
  `split`) and `entries`: one dict per record with id, source, stroke, mask
  (paths relative to the manifest), mode, image_index, stroke_index, color,
  area_frac, seed.

  Args:
    out_dir: output directory, created if needed.
    sources_NxHxWx3: uint8 source images; record.image_index indexes rows.
    records: strokes from `make_strokes` on these sources.
    metadata: extra JSON-serialisable top-level fields.

  Returns:
    Path of the manifest.
  """
  metadata = dict(metadata or {})
  clashes = sorted(set(metadata) & set(_MANIFEST_RESERVED_KEYS))
  if clashes:
    raise ValueError(f"metadata may not set reserved keys {clashes}.")
  image_shape = sources_NxHxWx3.shape[1:]
  for record in records:
    if not 0 <= record.image_index < len(sources_NxHxWx3):
      raise ValueError(
          f"Record {record.id} refers to image "
          f"{record.image_index} but there are "
          f"{len(sources_NxHxWx3)} sources."
      )
    if record.stroke.stroke_image.shape != image_shape:
      raise ValueError(
          f"Record {record.id} has stroke image shape "
          f"{record.stroke.stroke_image.shape}, sources have "
          f"{image_shape}."
      )
  entries = [
      dict(
          id=record.id,
          source=f"source_{record.image_index:04d}.png",
          stroke=f"stroke_{record.id}.png",
          mask=f"mask_{record.id}.png",
          mode=record.stroke.mode,
          image_index=record.image_index,
          stroke_index=record.stroke_index,
          color=list(record.stroke.color),
          area_frac=record.stroke.area_frac,
          seed=record.seed,
      )
      for record in records
  ]
  seeds = sorted({record.seed for record in records})
  manifest = dict(
      image_size=list(image_shape[:2]),
      seed=seeds[0] if len(seeds) == 1 else seeds,
      **metadata,
      entries=entries,
  )
  out_dir = pathlib.Path(out_dir)
  _check_same_set(out_dir / MANIFEST_NAME, manifest)
  out_dir.mkdir(parents=True, exist_ok=True)
  for image_index, source_HxWx3 in enumerate(sources_NxHxWx3):
    _save_png(out_dir / f"source_{image_index:04d}.png", source_HxWx3)
  for record, entry in zip(records, entries):
    _save_png(out_dir / entry["stroke"], record.stroke.stroke_image)
    _save_png(
        out_dir / entry["mask"],
        record.stroke.mask.astype(np.uint8) * np.uint8(255),
    )
  manifest_path = out_dir / MANIFEST_NAME
  # Written last and atomically: a manifest marks a complete set, so a
  # killed run leaves none (and is redone) rather than half of one.
  with files.atomic_path(str(manifest_path)) as tmp:
    pathlib.Path(tmp).write_text(json.dumps(manifest, indent=1))
  return manifest_path


def _check_same_set(manifest_path: pathlib.Path, manifest: dict) -> None:
  """Refuses to overwrite a stroke set made with other settings (a rerun of
  the same command rewrites the same files)."""
  differ = files.differing_keys(manifest_path, manifest)
  if differ:
    raise ValueError(
        f"{manifest_path.parent} holds a stroke set made otherwise (its "
        f"{', '.join(differ)} differ): give another --out or remove it."
    )


def _load_png(path: pathlib.Path, manifest_path: pathlib.Path) -> Image.Image:
  if not path.is_file():
    raise FileNotFoundError(
        f"{path} listed in manifest {manifest_path} does not exist."
    )
  with Image.open(path) as image:
    image.load()
    return image


def read_manifest(path: str | os.PathLike[str]) -> list[StrokeExample]:
  """Loads and validates a stroke set written by `write_stroke_set`.

  Args:
    path: the manifest file.

  Returns:
    One example per manifest entry, in manifest order.

  Raises:
    FileNotFoundError: the manifest or a file it lists is missing.
    ValueError: malformed entries, images of mixed sizes, a mask whose size
      differs from its image, or an empty mask.
  """
  manifest_path = pathlib.Path(path)
  if not manifest_path.is_file():
    raise FileNotFoundError(f"Stroke manifest {manifest_path} does not exist.")
  manifest = files.read_json(manifest_path, "Stroke manifest")
  entries = manifest.get("entries") if isinstance(manifest, dict) else None
  if entries is None:
    raise ValueError(
        f"{manifest_path} is not a stroke manifest (no entries): make one"
        " with make_strokes.py."
    )
  if not entries:
    raise ValueError(f"Stroke manifest {manifest_path} has no strokes.")
  root = manifest_path.parent
  examples = []
  for entry in entries:
    missing = [
        key
        for key in ("id", "source", "stroke", "mask", "mode")
        if key not in entry
    ]
    if missing:
      raise ValueError(f"Entry {entry} in {manifest_path} lacks {missing}.")
    rgb = lambda key: np.asarray(
        _load_png(root / entry[key], manifest_path).convert("RGB")
    )
    examples.append(
        StrokeExample(
            entry=entry,
            source=rgb("source"),
            stroke_image=rgb("stroke"),
            mask=regions.mask_from_image(
                _load_png(root / entry["mask"], manifest_path)
            ),
        )
    )
  _check_examples(examples, manifest_path)
  return examples


def _check_examples(
    examples: Sequence[StrokeExample], manifest_path: pathlib.Path
) -> None:
  image_sizes = {
      image.shape[:2]
      for example in examples
      for image in (example.source, example.stroke_image)
  }
  if len(image_sizes) > 1:
    raise ValueError(
        f"Images in {manifest_path} have mixed sizes "
        f"{sorted(image_sizes)}; expected one size."
    )
  for example in examples:
    name = example.entry["mask"]
    if example.mask.shape != example.source.shape[:2]:
      raise ValueError(
          f"Mask {name} in {manifest_path} has size "
          f"{example.mask.shape}, its image has "
          f"{example.source.shape[:2]}."
      )
    if not example.mask.any():
      raise ValueError(f"Mask {name} in {manifest_path} is empty.")
