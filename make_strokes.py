r"""Simulated user strokes (SDEdit-style) on held-out images.

  python make_strokes.py --out runs/shapes/strokes --run runs/shapes/tokenizer \
      --num_images 60 --strokes_per_image 2
  python make_strokes.py --out strokes --data photos --image_size 64
  python make_strokes.py --out strokes --folder my_images/ --image_size 64

Images come from the data source of a tokenizer run (`--run`: same source,
size and seed, the held-out split by default), from a named source
(`--data`, see `maskgit_edit.data`), or from every image of a folder
(`--folder`, centre-cropped and resized to `--image_size`). Stroke k of an
image uses mode `modes[k % len(modes)]` (inversion: the region's mean colour;
counterfactual: a random colour). Writes source/stroke/mask PNGs and
`manifest.json` (see `maskgit_edit.strokes.write_stroke_set`). For data
sources the manifest records the data config and split, so evaluation can
re-read each source (and its label) by `image_index`; folder images are
unlabelled and the manifest records the folder instead.
"""

import argparse
import pathlib
import time
from typing import Any

import numpy as np

from maskgit_edit import artefacts
from maskgit_edit import cli
from maskgit_edit import data as data_lib
from maskgit_edit import strokes as strokes_lib
from maskgit_edit.data import folder as folder_lib

# Images per make_strokes call: sets how often progress is printed.
_CHUNK = 16


def load_folder_images(
    folder: str, image_size: int, num_images: int | None = None
) -> np.ndarray:
  """Every image under `folder` (sorted by path), centre-cropped and resized.

  Unlike the 'folder:' data source, no images are held out: a folder given
  here is the set to stroke.

  Args:
    folder: directory searched recursively for `folder_lib.EXTENSIONS` files.
    image_size: side of the square output images.
    num_images: keep the first `num_images` files (None: all).

  Returns:
    images_NxSxSx3: uint8, S = image_size.

  Raises:
    FileNotFoundError: the folder does not exist.
    ValueError: it holds no readable image files.
  """
  files = folder_lib.readable_images(
      pathlib.Path(folder), image_size, allow_upscale=True
  )
  return np.stack(
      [folder_lib.load_square(file, image_size) for file in files[:num_images]]
  )


def _data_config(args: argparse.Namespace):
  if args.run:
    config = artefacts.load_run_config(args.run).data
  else:
    config = data_lib.default_data_config()
    config.name = args.data
  if args.image_size:
    config.image_size = args.image_size
  return config


def load_images(
    args: argparse.Namespace,
) -> tuple[np.ndarray, dict[str, Any], str]:
  """Returns (images_NxSxSx3 uint8, manifest metadata, description)."""
  if args.folder:
    if not args.image_size:
      raise ValueError("--folder needs --image_size.")
    images = load_folder_images(args.folder, args.image_size, args.num_images)
    return images, {"folder": args.folder}, f"folder {args.folder!r}"
  config = _data_config(args)
  source = data_lib.get_source(config, args.split)
  num = min(args.num_images, len(source))
  images, _ = source.get(np.arange(num))
  description = (
      f"{num} of {len(source)} images of {config.name!r} ({args.split})"
  )
  return images, {"data": config.to_dict(), "split": args.split}, description


def _parse_args(argv):
  parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True, help="Output folder.")
  source = parser.add_mutually_exclusive_group()
  source.add_argument("--run", help="Tokenizer run whose data to use.")
  source.add_argument(
      "--data",
      default="shapes",
      help="Data source name (shapes, photos, tfds:..).",
  )
  source.add_argument("--folder", help="Folder of images (all are used).")
  parser.add_argument("--split", default="test", choices=data_lib.SPLITS)
  parser.add_argument(
      "--image_size",
      type=int,
      default=None,
      help="Default: the data source's (required with --folder).",
  )
  parser.add_argument("--num_images", type=int, default=60)
  parser.add_argument("--strokes_per_image", type=int, default=2)
  parser.add_argument(
      "--modes",
      default=",".join(strokes_lib.MODES),
      help="Comma-separated stroke modes to cycle through.",
  )
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--num_colors", type=int, default=6)
  parser.add_argument(
      "--segmentation", default="kmeans", choices=strokes_lib.SEGMENTATIONS
  )
  parser.add_argument("--min_area_frac", type=float, default=0.03)
  parser.add_argument("--max_area_frac", type=float, default=0.35)
  args = parser.parse_args(argv)
  unknown = set(args.modes.split(",")) - set(strokes_lib.MODES)
  if unknown:
    parser.error(
        f"unknown --modes {sorted(unknown)}; choose from "
        f"{strokes_lib.MODES}."
    )
  return args


def main(argv=None) -> str:
  """Makes and writes a stroke set; returns the manifest path."""
  args = _parse_args(argv)
  images, metadata, description = load_images(args)
  options = dict(
      modes=tuple(args.modes.split(",")),
      num_colors=args.num_colors,
      segmentation=args.segmentation,
      min_area_frac=args.min_area_frac,
      max_area_frac=args.max_area_frac,
  )
  print(
      f"Making {args.strokes_per_image} strokes on each of {description}, "
      f"{images.shape[1]} px",
      flush=True,
  )
  start = time.time()
  records = []
  for first in range(0, len(images), _CHUNK):
    records += strokes_lib.make_strokes(
        images[first : first + _CHUNK],
        strokes_per_image=args.strokes_per_image,
        seed=args.seed,
        first_index=first,
        **options,
    )
    print(
        f"  {min(first + _CHUNK, len(images))}/{len(images)} images", flush=True
    )
  path = strokes_lib.write_stroke_set(
      args.out, images, records, metadata=dict(metadata, strokes=options)
  )
  modes = [r.stroke.mode for r in records]
  print(
      f"Wrote {len(records)} strokes ("
      + ", ".join(f"{m}: {modes.count(m)}" for m in sorted(set(modes)))
      + f", mean area {np.mean([r.stroke.area_frac for r in records]):.2f})"
      f" in {time.time() - start:.1f}s to {path}",
      flush=True,
  )
  return str(path)


if __name__ == "__main__":
  cli.run(main)
