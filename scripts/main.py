r"""The whole pipeline on an embedded dataset, stage by stage.

  python scripts/main.py --data shapes            # < 20 min on 2 CPU cores
  python scripts/main.py --data photos
  python scripts/main.py --data shapes --quick    # smoke run (runlocal sizes)

Stages (each a command printed before it runs, so any one can be re-run by
hand): train the tokenizer, the transformer, the `reweight` kernel and the
`iterate` fine-tune; make auto-strokes on the held-out split; run every
variant over its knob on every stroke; render the grid, the metric table and
the faithfulness/realism plot. A finished stage (its `final_metrics.json` or
output file exists) is skipped, and training resumes from its last
checkpoint, so a killed run continues where it stopped.
"""

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINERS = ("tokenizer", "maskgit", "reweight", "iterate")


# Photo labels name different photographs in the train and test splits (whole
# photos are held out), so a class-conditional model would be meaningless.
# The rest keeps the settings of the README's photos results: its tokenizer
# makes 8x8 tokens, 4x fewer per image than the shapes one.
DATA_OVERRIDES = {"photos": {
    "maskgit": ["--config.model.class_conditional=False",
                "--config.batch_size=32", "--config.total_steps=1500",
                "--config.model.num_heads=4", "--config.model.dropout_rate=0.1",
                "--config.optim.lr=1e-3", "--config.mvtm.init_words=random",
                "--config.mvtm.init_positions=random"],
    "reweight": ["--config.batch_size=64"],
    "iterate": ["--config.batch_size=32", "--config.total_steps=200"]}}

# Held-out images to stroke (2 strokes each): 64 shapes strokes fill two
# editing batches of 32 and keep the shapes job within 20 minutes; photos
# (4x fewer tokens per image) keeps the 120 strokes of its README results.
NUM_IMAGES = {"shapes": 32, "photos": 60}


def _train(workdir, trainer, data, quick, **links):
  # Only the tokenizer reads images; later stages read its token cache.
  config = os.path.join(
      "configs", f"{trainer}_{data if trainer == 'tokenizer' else 'shapes'}.py")
  args = [sys.executable, "-m", "maskgit_edit.train",
          f"--config={config}{':runlocal' if quick else ''}",
          f"--workdir={os.path.join(workdir, trainer)}"]
  args += [f"--config.{k}={os.path.join(workdir, v)}" for k, v in links.items()]
  args += DATA_OVERRIDES.get(data, {}).get(trainer, [])
  done = os.path.join(workdir, trainer, "final_metrics.json")
  return args, done


def figures_dir(workdir: str, quick: bool) -> str:
  """Full runs write the README's figures into imgs/; smoke runs keep theirs."""
  return os.path.join(workdir, "imgs") if quick else os.path.join(ROOT, "imgs")


def stages(workdir: str, data: str, quick: bool, num_images: int):
  """(name, command, file that marks it done) for every stage, in order."""
  w = lambda *p: os.path.join(workdir, *p)
  figures = figures_dir(workdir, quick)
  # 16 px smoke-run images have two pyramid levels only from 8 px up.
  edit_args = ["--swd_min_resolution=8"] if quick else []
  return [
      ("tokenizer", *_train(workdir, "tokenizer", data, quick)),
      ("maskgit", *_train(workdir, "maskgit", data, quick,
                          tokenizer_workdir="tokenizer")),
      ("reweight", *_train(workdir, "reweight", data, quick,
                           transformer_workdir="maskgit")),
      ("iterate", *_train(workdir, "iterate", data, quick,
                          transformer_workdir="maskgit")),
      ("strokes", [sys.executable, "make_strokes.py", f"--out={w('strokes')}",
                   f"--run={w('tokenizer')}", f"--num_images={num_images}",
                   "--strokes_per_image=2", "--seed=0"],
       w("strokes", "manifest.json")),
      ("edits", [sys.executable, "scripts/run_edits.py",
                 f"--manifest={w('strokes', 'manifest.json')}",
                 f"--tokenizer_workdir={w('tokenizer')}",
                 f"--transformer_workdir={w('maskgit')}",
                 f"--reweight_workdir={w('reweight')}",
                 f"--iterate_workdir={w('iterate')}",
                 f"--out_dir={w('edits')}", *edit_args],
       w("edits", "results.json")),
      ("render", [sys.executable, "scripts/render_comparison_table.py",
                  f"--results={w('edits', 'results.json')}",
                  f"--output_dir={w('output')}",
                  f"--grid={figures}/{data}_comparison_grid.png",
                  f"--plot={figures}/{data}_faithfulness_vs_realism.png"],
       w("output", "comparison.md")),
  ]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default="shapes", choices=("shapes", "photos"))
  parser.add_argument("--workdir", default=None,
                      help="Run folder (default runs/<data>, or "
                      "runs/<data>_quick with --quick).")
  parser.add_argument("--quick", action="store_true",
                      help="Tiny sizes: checks the pipeline in minutes.")
  parser.add_argument("--num_images", type=int, default=None,
                      help="Held-out images to stroke (2 strokes each; default: "
                      "NUM_IMAGES).")
  parser.add_argument("--only", default="",
                      help="Comma-separated stages to run (default all).")
  args = parser.parse_args(argv)
  workdir = args.workdir or os.path.join(
      "runs", args.data + ("_quick" if args.quick else ""))
  workdir = os.path.abspath(workdir)
  num_images = args.num_images or (4 if args.quick else NUM_IMAGES[args.data])
  only = set(filter(None, args.only.split(",")))
  env = dict(os.environ, WANDB_MODE=os.environ.get("WANDB_MODE", "disabled"))
  start = time.time()
  for name, command, done in stages(workdir, args.data, args.quick,
                                    num_images):
    if only and name not in only:
      continue
    if os.path.exists(done) and not only:
      print(f"[{name}] done already ({done}); skipping", flush=True)
      continue
    print(f"[{name}] $ {shlex.join(command)}", flush=True)
    t0 = time.time()
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    print(f"[{name}] finished in {time.time() - t0:.0f}s "
          f"(total {time.time() - start:.0f}s)", flush=True)
  # The trainers' own figures join the grid and the plot.
  figures = figures_dir(workdir, args.quick)
  os.makedirs(figures, exist_ok=True)  # --only may skip the stages making it.
  for stage, figure in (("tokenizer", "reconstructions"),
                        ("maskgit", "samples")):
    source = os.path.join(workdir, stage, f"{figure}.png")
    if os.path.exists(source):
      shutil.copyfile(source, os.path.join(figures, f"{args.data}_{figure}.png"))
  print(f"Pipeline finished in {time.time() - start:.0f}s; see "
        f"{os.path.join(workdir, 'output')}", flush=True)


if __name__ == "__main__":
  main()
