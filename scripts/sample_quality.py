r"""Sample quality under the judge, with the judge's validation rows.

  python scripts/sample_quality.py --judge_workdir runs/shapes/judge \
      --tokenizer_workdir runs/shapes/tokenizer \
      --transformer_workdir runs/shapes/maskgit \
      [--weak_transformer_workdir runs/shapes/maskgit_weak] \
      [--strokes runs/shapes/strokes/manifest.json] --out_dir runs/shapes/quality

The rows, the validation and the outputs: `maskgit_edit.quality`.
"""

from maskgit_edit import cli
from maskgit_edit import quality


def parse_args(argv):
  parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--judge_workdir", required=True)
  parser.add_argument("--tokenizer_workdir", required=True)
  parser.add_argument("--transformer_workdir", default=None)
  parser.add_argument("--weak_transformer_workdir", default=None)
  parser.add_argument(
      "--strokes", default=None, help="manifest.json of an auto-stroke set."
  )
  parser.add_argument("--num_images", type=int, default=1000)
  parser.add_argument("--seed", type=int, default=0)
  # Overrides of the transformer run's sampling settings.
  cli.add_decode_flags(parser, quality.DECODE_OVERRIDES)
  parser.add_argument("--out_dir", required=True)
  args = parser.parse_args(argv)
  if args.num_images < 2:
    parser.error(f"--num_images must be at least 2, got {args.num_images}.")
  return args


def main(argv=None) -> dict:
  args = parse_args(argv)
  return quality.measure(
      args.judge_workdir,
      args.tokenizer_workdir,
      args.out_dir,
      transformer_workdir=args.transformer_workdir,
      weak_transformer_workdir=args.weak_transformer_workdir,
      strokes=args.strokes,
      num_images=args.num_images,
      seed=args.seed,
      decode_overrides=cli.decode_overrides(args),
  )


if __name__ == "__main__":
  cli.run(main)
