r"""Imports released MaskGIT checkpoints as project run folders.

  python scripts/import_released.py --image_size 256 --out runs/imagenet256 \
      --transformer checkpoints/released/maskgit_imagenet256_checkpoint \
      --tokenizer checkpoints/released/tokenizer_imagenet256_checkpoint \
      [--data tfds:imagenet2012 --num_train 100000 --num_test 10000]

What it writes and checks: `maskgit_edit.released_runs`. `--data` tokenizes
--num_train / --num_test examples of a data source into the token caches
that `reweight` and `iterate` train on; `--sizes_from CONFIG_JSON` takes the
sizes from a release-style config.json instead of the ImageNet ones.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from maskgit_edit import cli
from maskgit_edit import released_runs

# pylint: enable=g-import-not-at-top,wrong-import-position


def parse_args(argv):
  parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
      "--transformer",
      required=True,
      help="Released transformer file (maskgit_imagenet*_checkpoint).",
  )
  parser.add_argument(
      "--tokenizer",
      required=True,
      help="Released tokenizer file (tokenizer_imagenet*_checkpoint).",
  )
  sizes = parser.add_mutually_exclusive_group(required=True)
  sizes.add_argument(
      "--image_size",
      type=int,
      choices=(256, 512),
      help="Released ImageNet model sizes at this resolution.",
  )
  sizes.add_argument(
      "--sizes_from",
      metavar="CONFIG_JSON",
      help="Take the sizes from a release-style config.json.",
  )
  parser.add_argument(
      "--out",
      required=True,
      help="Folder of the two runs (must not exist or be empty).",
  )
  parser.add_argument(
      "--data", default=None, help="Data source to tokenize into token caches."
  )
  parser.add_argument(
      "--num_train",
      type=int,
      default=None,
      help="Training examples to tokenize (default: all).",
  )
  parser.add_argument(
      "--num_test",
      type=int,
      default=None,
      help="Held-out examples to tokenize (default: all).",
  )
  parser.add_argument(
      "--batch_size", type=int, default=64, help="Images per tokenizer call."
  )
  args = parser.parse_args(argv)
  if args.data is None and (args.num_train or args.num_test):
    parser.error("--num_train / --num_test need --data.")
  return args


def main(argv=None) -> dict[str, str]:
  args = parse_args(argv)
  sizes = (
      released_runs.sizes_from_json(args.sizes_from)
      if args.sizes_from
      else released_runs.released_sizes(args.image_size)
  )
  runs = released_runs.import_released(
      args.transformer,
      args.tokenizer,
      sizes,
      args.out,
      data_name=args.data,
      num_train=args.num_train,
      num_test=args.num_test,
      batch_size=args.batch_size,
  )
  for name, workdir in runs.items():
    print(f"{name}: {workdir}")
  if args.data is None:
    print(
        "No --data: the Editor and generation work on these runs; reweight / "
        "iterate need token caches (re-import with --data)."
    )
  return runs


if __name__ == "__main__":
  cli.run(main)
