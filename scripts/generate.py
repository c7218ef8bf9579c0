r"""Sample grids and inpainting / outpainting / relabelling grids of a run.

  python scripts/generate.py --tokenizer_workdir runs/shapes/tokenizer \
      --transformer_workdir runs/shapes/maskgit --out output/generate \
      [--num_steps 12 --schedule cosine --choice_temperature 4.5 \
       --start_iter 2 --stop_iter 8] [--dilation 1] [--composite feather] \
      [--seed 0]

The grids: `maskgit_edit.generation`.
"""

import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from maskgit_edit import cli
from maskgit_edit import edit as edit_lib
from maskgit_edit import generation
from maskgit_edit import regions

# pylint: enable=g-import-not-at-top,wrong-import-position


def parse_args(argv):
  defaults = edit_lib.EditSettings()
  parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tokenizer_workdir", required=True)
  parser.add_argument("--transformer_workdir", required=True)
  parser.add_argument(
      "--out", default="output/generate", help="Folder for the PNG grids."
  )
  cli.add_decode_flags(
      parser,
      (
          "num_steps",
          "schedule",
          "choice_temperature",
          "start_iter",
          "stop_iter",
          "class_guidance",
      ),
  )
  parser.add_argument(
      "--dilation",
      type=int,
      default=defaults.dilation,
      help="Tokens added around the edited token region.",
  )
  parser.add_argument(
      "--composite", default=defaults.composite, choices=regions.COMPOSITE_MODES
  )
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
      "--per_row", type=int, default=8, help="Samples per row of samples.png."
  )
  parser.add_argument(
      "--num_rows",
      type=int,
      default=4,
      help="Rows of samples.png for unconditional models.",
  )
  parser.add_argument(
      "--num_images",
      type=int,
      default=6,
      help="Held-out images (rows) of the edit grids.",
  )
  parser.add_argument(
      "--num_seeds",
      type=int,
      default=4,
      help="Results (columns) per edited image.",
  )
  parser.add_argument(
      "--box_fraction",
      type=float,
      default=0.5,
      help="Side of the centre box as a fraction of the image.",
  )
  parser.add_argument(
      "--new_label",
      type=int,
      default=None,
      help="Label of relabel.png (default: the next class).",
  )
  parser.add_argument(
      "--scale",
      type=int,
      default=None,
      help="Pixel repetition of the PNGs (default: images "
      "shown at >= 128 px).",
  )
  args = parser.parse_args(argv)
  for name in ("per_row", "num_rows", "num_images", "num_seeds"):
    if getattr(args, name) < 1:
      raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}.")
  return args


def main(argv=None) -> dict:
  """Writes the grids; returns {name: path}."""
  args = parse_args(argv)
  decode = dataclasses.replace(
      edit_lib.EditSettings().decode, **cli.decode_overrides(args)
  )
  return generation.write_grids(
      args.tokenizer_workdir,
      args.transformer_workdir,
      args.out,
      edit_lib.EditSettings(
          decode=decode, dilation=args.dilation, composite=args.composite
      ),
      seed=args.seed,
      per_row=args.per_row,
      num_rows=args.num_rows,
      num_images=args.num_images,
      num_seeds=args.num_seeds,
      box_fraction=args.box_fraction,
      new_label=args.new_label,
      scale=args.scale,
  )


if __name__ == "__main__":
  cli.run(main)
