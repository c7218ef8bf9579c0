r"""Simulated user strokes (SDEdit-style) on held-out images.

  python make_strokes.py --out runs/shapes/strokes --run runs/shapes/tokenizer \
      --num_images 60 --strokes_per_image 2
  python make_strokes.py --out strokes --data photos --image_size 64
  python make_strokes.py --out strokes --folder my_images/ --image_size 64

Images come from the data source of a tokenizer run (`--run`: same source,
size and seed, the held-out split by default), from a named source
(`--data`), or from a folder. Stroke k of an image uses mode
`modes[k % len(modes)]` (inversion: the region's mean colour;
counterfactual: a random colour). Writes source/stroke/mask PNGs and
`manifest.json` (see `maskgit_edit.strokes.write_stroke_set`).
"""

import argparse
import os
import time

import numpy as np

from maskgit_edit import artefacts
from maskgit_edit import data as data_lib
from maskgit_edit import strokes as strokes_lib


def _data_config(args):
  if args.run:
    config = artefacts.load_run_config(args.run).data
  else:
    config = data_lib.default_data_config()
    config.name = f"folder:{args.folder}" if args.folder else args.data
  if args.image_size:
    config.image_size = args.image_size
  if args.folder:
    # Every image of a folder is a candidate: do not hold any out.
    config.folder_test_fraction = 0.0 if args.split == "train" else 1.0
  return config


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True, help="Output folder.")
  source = parser.add_mutually_exclusive_group()
  source.add_argument("--run", help="Tokenizer run whose data to use.")
  source.add_argument("--data", default="shapes",
                      help="Data source name (shapes, photos, tfds:..).")
  source.add_argument("--folder", help="Folder of images.")
  parser.add_argument("--split", default="test", choices=data_lib.SPLITS)
  parser.add_argument("--image_size", type=int, default=None)
  parser.add_argument("--num_images", type=int, default=60)
  parser.add_argument("--strokes_per_image", type=int, default=2)
  parser.add_argument("--modes", default="inversion,counterfactual")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--num_colors", type=int, default=6)
  parser.add_argument("--segmentation", default="kmeans",
                      choices=("kmeans", "slic"))
  args = parser.parse_args(argv)

  config = _data_config(args)
  images_source = data_lib.get_source(config, args.split)
  num = min(args.num_images, len(images_source))
  if num < 1:
    raise ValueError(f"No images in the {args.split!r} split of "
                     f"{config.name!r}.")
  images, _ = images_source.get(np.arange(num))
  print(f"Making {args.strokes_per_image} strokes on each of {num} "
        f"{config.image_size}px images from {config.name!r} ({args.split})",
        flush=True)
  start = time.time()
  records = strokes_lib.make_strokes(
      images, strokes_per_image=args.strokes_per_image,
      modes=tuple(args.modes.split(",")), seed=args.seed,
      num_colors=args.num_colors, segmentation=args.segmentation)
  path = strokes_lib.write_stroke_set(
      args.out, images, records,
      metadata={"data": config.to_dict(), "split": args.split})
  modes = [r.stroke.mode for r in records]
  print(f"Wrote {len(records)} strokes ("
        + ", ".join(f"{m}: {modes.count(m)}" for m in sorted(set(modes)))
        + f", mean area {np.mean([r.stroke.area_frac for r in records]):.2f})"
        f" in {time.time() - start:.1f}s to {path}", flush=True)
  return str(path)


if __name__ == "__main__":
  main()
