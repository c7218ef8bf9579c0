r"""The whole pipeline on an embedded dataset, stage by stage.

  python scripts/main.py                    # Fashion-MNIST, Quickstart budget, < 20 min
  python scripts/main.py --reference        # reference budget, < 2 h
  python scripts/main.py --pretrained       # committed weights, < 5 min
  python scripts/main.py --quick            # smoke run (runlocal sizes)
  python scripts/main.py --data shapes      # the tiny embedded scenes
  python scripts/main.py --data photos
  python scripts/main.py --data folder:PATH         # your own images

The stages, what is skipped and how a killed run resumes:
`maskgit_edit.pipeline`. `--reference` renders its study into the committed
top-level `output/` (`docs/results.md` shows it).
"""

import os

from maskgit_edit import cli
from maskgit_edit import pipeline


def main(argv=None):
  parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
      "--data",
      default="fashion_mnist",
      help="fashion_mnist, shapes, photos, folder:PATH (a folder of your "
      "images) or tfds:NAME (a prepared TFDS data set).",
  )
  parser.add_argument(
      "--workdir",
      default=None,
      help="Run folder (default runs/<data>[_<budget>]).",
  )
  budget = parser.add_mutually_exclusive_group()
  budget.add_argument(
      "--quick",
      action="store_true",
      help="Tiny sizes: checks the pipeline in minutes.",
  )
  budget.add_argument(
      "--reference",
      action="store_true",
      help="The reference budget (`:reference` configs).",
  )
  budget.add_argument(
      "--pretrained",
      action="store_true",
      help="Skip training: use the runs in pretrained/<data>/.",
  )
  parser.add_argument(
      "--num_images",
      type=int,
      default=None,
      help="Held-out images to stroke for editing (2 strokes "
      "each; default: pipeline.NUM_IMAGES).",
  )
  parser.add_argument(
      "--windows",
      default="",
      help="Comma-separated context rings: also edit with "
      "windowed decoding at each and compare with the full "
      "decode (output/windows.md), e.g. 1,2,4; with --full_pass_every, "
      "also with key/value reuse on the whole grid and at each ring.",
  )
  # With --windows: also edit with key/value reuse, on the whole grid and at
  # each ring (compared in output/windows.md).
  cli.add_decode_flags(parser, ("full_pass_every",))
  parser.add_argument(
      "--only", default="", help="Comma-separated stages to run (default all)."
  )
  args = parser.parse_args(argv)
  try:
    pipeline.data_kind(args.data)
  except ValueError as e:
    parser.error(str(e))
  slug = pipeline.data_slug(args.data)
  budget = (
      "quick"
      if args.quick
      else "reference"
      if args.reference
      else "pretrained"
      if args.pretrained
      else "default"
  )
  if args.pretrained and not os.path.isdir(pipeline.pretrained_dir(args.data)):
    parser.error(
        f"No pretrained runs for {args.data!r} in "
        f"{pipeline.pretrained_dir(args.data)}: make them with "
        f"`python scripts/main.py --data {args.data} --reference` and "
        "`python scripts/export_pretrained.py`."
    )
  workdir = args.workdir or os.path.join(
      "runs", slug + ("" if budget == "default" else f"_{budget}")
  )
  workdir = os.path.abspath(workdir)
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    cli.fail(f"--workdir {workdir}: {e}")
  num_images = args.num_images or (
      4
      if args.quick
      else pipeline.REFERENCE_NUM_IMAGES
      if args.reference
      else pipeline.NUM_IMAGES[pipeline.data_kind(args.data)]
  )
  if pipeline.data_kind(args.data) == "user":
    try:
      held_out = pipeline.held_out_images(
          args.data, pipeline.config_arg(budget)
      )
      fitted = pipeline.fit_num_images(
          held_out,
          num_images,
          bool(args.num_images),
          pipeline.min_stroked_images(),
      )
    except (ValueError, OSError) as e:
      cli.fail(f"--data {args.data}: {e}")
    if fitted < num_images:
      print(
          f"Stroking {fitted} images, not {num_images}: the held-out split"
          f" has {held_out} images, {1 + pipeline.STROKES_PER_IMAGE} per stroked"
          " image.",
          flush=True,
      )
    num_images = fitted
  window_rings = tuple(int(r) for r in args.windows.split(",") if r)
  full_pass_every = args.full_pass_every or 1
  if full_pass_every != 1 and not window_rings:
    parser.error(
        "--full_pass_every adds runs to the --windows study: give "
        "--windows too."
    )
  try:
    pipeline.run(
        workdir,
        args.data,
        budget,
        num_images,
        window_rings=window_rings,
        full_pass_every=full_pass_every,
        only=set(filter(None, args.only.split(","))),
    )
  except ValueError as e:
    parser.error(str(e))


if __name__ == "__main__":
  cli.run(main)
