"""The whole pipeline on a dataset, stage by stage (`scripts/main.py`).

Stages (each a command printed before it runs, so any one can be re-run by
hand): train the tokenizer, the transformer, the judge, a deliberately weak
transformer (100 steps, or the quick budget's few, for the judge's
validation), the `reweight` kernel and the `iterate` fine-tune; make
auto-strokes on the held-out split (a small set to edit, a large one to
validate the judge); measure sample quality with the judge; run every
variant over its knob on every stroke; render the grid, the metric table and
the faithfulness/realism plot. A finished stage (its `final_metrics.json` or
output file exists) is skipped, and training resumes from its last
checkpoint, so a killed run continues where it stopped. The "pretrained"
budget takes the trained runs from `pretrained/<data>/` (see
scripts/export_pretrained.py) and runs strokes, edits and rendering. The
"reference" budget edits 256 strokes on 128 images and renders the study
into the committed top-level `output/`.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import time

from maskgit_edit import files

TRAINERS = (
    "tokenizer",
    "maskgit",
    "judge",
    "maskgit_weak",
    "reweight",
    "iterate",
)
WEAK_STEPS = 100

# The judge needs class labels that name what is in the image, so the other
# data have no judge stages (and train unconditional transformers:
# configs/maskgit_photos.py).
JUDGED_DATA = ("fashion_mnist", "shapes")
NO_JUDGE_SKIPS = ("judge", "maskgit_weak", "judge_strokes", "quality")
DATA_FREE_TRAINERS = ("reweight", "iterate")
USER_DATA_PREFIXES = ("folder:", "tfds:")

STROKES_PER_IMAGE = 2
# Held-out images to stroke for editing (2 strokes each) and, separately,
# for the judge's validation (2 strokes each, one row of the quality table).
NUM_IMAGES = {"fashion_mnist": 32, "shapes": 64, "photos": 60, "user": 60}
# The reference study (`--reference`): 256 strokes, realism among 1,024 real
# images, a dozen examples rendered into the committed top-level output/.
REFERENCE_NUM_IMAGES = 128
REFERENCE_NUM_REAL = 1024
REFERENCE_OUTPUT = os.path.join(files.CHECKOUT, "output")
# Variants edited again with windowed decoding by `--windows`.
WINDOW_VARIANTS = ("none", "sdedit", "self_fixed")
NUM_QUALITY_IMAGES = 1000


def pretrained_dir(data: str) -> str:
  return os.path.join(files.CHECKOUT, "pretrained", data)


def data_kind(data: str) -> str:
  """ "fashion_mnist", "shapes", "photos" or "user" (`folder:PATH`,
  `tfds:NAME`)."""
  if data in ("fashion_mnist", "shapes", "photos"):
    return data
  if data.startswith(USER_DATA_PREFIXES) and data.partition(":")[2]:
    return "user"
  raise ValueError(
      f"Unknown --data {data!r}: fashion_mnist, shapes, photos, folder:PATH"
      " or tfds:NAME."
  )


def data_slug(data: str) -> str:
  """Name in runs/ and figure files: "folder:~/my pics" -> "folder_my_pics"."""
  if data_kind(data) != "user":
    return data
  source, _, where = data.partition(":")
  name = os.path.basename(os.path.normpath(os.path.expanduser(where)))
  return f"{source}_{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')}"


def data_overrides(data: str, trainer: str) -> list[str]:
  """Config flags a trainer needs for `data` beyond its config file."""
  if trainer == "tokenizer" and data_kind(data) == "user":
    return [f"--config.data.name={data}"]
  return []


def config_arg(budget: str) -> str:
  """The configs' argument for `budget` (e.g. configs/x.py:runlocal)."""
  return {"quick": "runlocal", "reference": "reference"}.get(budget, "")


def _config(trainer: str, data: str, arg: str) -> str:
  # A user's images take the photos configs; the fine-tunes' configs serve
  # every data set.
  name = trainer.removesuffix("_weak")
  dataset = {"user": "photos"}.get(data_kind(data), data)
  file = f"{name}.py" if name in DATA_FREE_TRAINERS else f"{name}_{dataset}.py"
  return os.path.join("configs", file) + (f":{arg}" if arg else "")


def _train(runs, trainer, data, arg, **links):
  args = [
      sys.executable,
      "-m",
      "maskgit_edit.train",
      f"--config={_config(trainer, data, arg)}",
      f"--workdir={runs[trainer]}",
  ]
  args += [f"--config.{k}={runs[v]}" for k, v in links.items()]
  args += data_overrides(data, trainer.removesuffix("_weak"))
  # The quick budget's transformer already trains only a few steps.
  if trainer == "maskgit_weak" and arg != "runlocal":
    args.append(f"--config.total_steps={WEAK_STEPS}")
  return args, os.path.join(runs[trainer], "final_metrics.json")


def figures_dir(workdir: str, budget: str, kind: str) -> str:
  """Where a budget's figures go: the committed imgs/ (shown by the README
  and docs/results.md) or the run's own.

  `kind` "models" (reconstructions, samples) comes from the runs that train
  models, "edits" (grid, plot) from those whose edits the docs show.
  """
  shown = {
      "models": ("default", "reference"),
      "edits": ("default", "pretrained"),
  }[kind]
  return (
      os.path.join(files.CHECKOUT, "imgs")
      if budget in shown
      else os.path.join(workdir, "imgs")
  )


def held_out_images(data: str, arg: str) -> int:
  """Images in the held-out (test) split of user data `data`, as its
  tokenizer config splits them."""
  # pylint: disable=g-import-not-at-top
  from maskgit_edit import config_files
  from maskgit_edit import data as data_lib

  config = config_files.load(
      os.path.join(files.CHECKOUT, _config("tokenizer", data, arg))
  )
  config.data.name = data
  return len(data_lib.get_source(config.data, "test"))


def min_stroked_images() -> int:
  """Fewest images to stroke: SWD's folds need one stroke each."""
  from maskgit_edit.study import scoring  # pylint: disable=g-import-not-at-top

  return -(-scoring.SwdSettings().folds // STROKES_PER_IMAGE)


def fit_num_images(
    held_out: int, requested: int, explicit: bool, minimum: int
) -> int:
  """Images to stroke so that the held-out split also gives the study its
  real images (one per stroke): 1 + STROKES_PER_IMAGE held-out images per
  stroked one. Fewer than requested when the data are small (not
  below `minimum`, which SWD's folds need); a ValueError when that does not
  fit or an explicit request does not."""
  per_image = 1 + STROKES_PER_IMAGE
  fits = held_out // per_image
  if requested <= fits:
    return requested
  if explicit or fits < minimum:
    raise ValueError(
        f"The held-out split has {held_out} images; stroking {requested}"
        f" needs {per_image * requested} (each stroked image, and a real one per"
        f" stroke), and the study strokes at least {minimum}: "
        + (f"give --num_images={fits} or " if fits >= minimum else "")
        + "add images."
    )
  return fits


def run_folders(workdir: str, data: str, pretrained: bool) -> dict:
  """Folder of every trainer's run."""
  source = pretrained_dir(data) if pretrained else workdir
  return {t: os.path.join(source, t) for t in TRAINERS}


def stages(
    workdir: str,
    data: str,
    budget: str,
    num_images: int,
    pretrained: bool = False,
    window_rings: tuple[int, ...] = (),
    full_pass_every: int = 1,
):
  """(name, command, file that marks it done or None) for every stage.

  With `window_rings`, the edits of `WINDOW_VARIANTS` are made again one
  stroke at a time, with the full decode and with windowed decoding at each
  context ring, and compared stroke by stroke (output/windows.md); with
  `full_pass_every` > 1 as well with key/value reuse over the whole grid and
  at each ring.
  """
  w = lambda *p: os.path.join(workdir, *p)
  runs = run_folders(workdir, data, pretrained)
  arg = config_arg(budget)
  figures = figures_dir(workdir, budget, "edits")
  prefix = (
      f"{data_slug(data)}_{budget}" if budget != "default" else data_slug(data)
  )
  # 16 px smoke-run images have two pyramid levels only from 8 px up.
  edit_args = ["--swd_min_resolution=8"] if budget == "quick" else []
  reference = budget == "reference"
  output = REFERENCE_OUTPUT if reference else w("output")
  if reference:
    edit_args.append(f"--num_real={REFERENCE_NUM_REAL}")
  if data_kind(data) in JUDGED_DATA:
    edit_args.append(f"--judge_workdir={runs['judge']}")
  num_quality = 16 if budget == "quick" else NUM_QUALITY_IMAGES
  training = [
      ("tokenizer", *_train(runs, "tokenizer", data, arg)),
      (
          "maskgit",
          *_train(runs, "maskgit", data, arg, tokenizer_workdir="tokenizer"),
      ),
      (
          "judge",
          *_train(runs, "judge", data, "runlocal" if budget == "quick" else ""),
      ),
      (
          "maskgit_weak",
          *_train(
              runs, "maskgit_weak", data, arg, tokenizer_workdir="tokenizer"
          ),
      ),
      (
          "reweight",
          *_train(runs, "reweight", data, arg, transformer_workdir="maskgit"),
      ),
      (
          "iterate",
          *_train(runs, "iterate", data, arg, transformer_workdir="maskgit"),
      ),
  ]
  strokes = lambda out, num: [
      sys.executable,
      "make_strokes.py",
      f"--out={out}",
      f"--run={runs['tokenizer']}",
      f"--num_images={num}",
      f"--strokes_per_image={STROKES_PER_IMAGE}",
      "--seed=0",
  ]
  after = [
      (
          "strokes",
          strokes(w("strokes"), num_images),
          w("strokes", "manifest.json"),
      ),
      (
          "judge_strokes",
          strokes(w("judge_strokes"), num_quality // 2),
          w("judge_strokes", "manifest.json"),
      ),
      (
          "quality",
          [
              sys.executable,
              "scripts/sample_quality.py",
              f"--judge_workdir={runs['judge']}",
              f"--tokenizer_workdir={runs['tokenizer']}",
              f"--transformer_workdir={runs['maskgit']}",
              f"--weak_transformer_workdir={runs['maskgit_weak']}",
              f"--strokes={w('judge_strokes', 'manifest.json')}",
              f"--num_images={num_quality}",
              f"--out_dir={w('quality')}",
          ],
          w("quality", "quality.json"),
      ),
      (
          "edits",
          [
              sys.executable,
              "scripts/run_edits.py",
              f"--manifest={w('strokes', 'manifest.json')}",
              f"--tokenizer_workdir={runs['tokenizer']}",
              f"--transformer_workdir={runs['maskgit']}",
              f"--reweight_workdir={runs['reweight']}",
              f"--iterate_workdir={runs['iterate']}",
              f"--out_dir={w('edits')}",
              *edit_args,
          ],
          w("edits", "results.json"),
      ),
      (
          "render",
          [
              sys.executable,
              "scripts/render_comparison_table.py",
              f"--results={w('edits', 'results.json')}",
              f"--output_dir={output}",
              *(
                  [
                      f"--grid={output}/comparison_grid.png",
                      f"--plot={output}/faithfulness_vs_realism.png",
                      "--examples_per_mode=6",
                  ]
                  if reference
                  else [
                      f"--grid={figures}/{prefix}_comparison_grid.png",
                      f"--plot={figures}/{prefix}_faithfulness_vs_realism.png",
                  ]
              ),
          ],
          # The committed output/ is redrawn from this run's edits.
          None if reference else w("output", "comparison.md"),
      ),
  ]
  if window_rings:
    # One stroke per decode: a batch decodes the window that covers all of
    # its strokes, so larger batches would measure the largest stroke.
    edits_command = next(c for name, c, _ in after if name == "edits")
    windowed = [a for a in edits_command if not a.startswith("--out_dir=")] + [
        "--batch_size=1",
        "--variants",
        *WINDOW_VARIANTS,
    ]
    compared = []
    for ring in ("full", *window_rings):
      for every in sorted({1, full_pass_every}):
        name = f"edits_window_{ring}" + (f"_reuse{every}" if every > 1 else "")
        after.append(
            (
                name,
                windowed
                + [f"--out_dir={w(name)}"]
                + ([] if ring == "full" else [f"--window={ring}"])
                + ([f"--full_pass_every={every}"] if every > 1 else []),
                w(name, "results.json"),
            )
        )
        compared += [] if name == "edits_window_full" else [name]
    after.append(
        (
            "windows",
            [
                sys.executable,
                "scripts/compare_runs.py",
                f"--baseline={w('edits_window_full', 'results.json')}",
                "--runs",
                *[w(name, "results.json") for name in compared],
                f"--out={w('output', 'windows.md')}",
            ],
            # Seconds of work: always redone, so that it covers the runs
            # of this command's --windows and --full_pass_every.
            None,
        )
    )
  skips = set(NO_JUDGE_SKIPS if data_kind(data) not in JUDGED_DATA else ())
  if pretrained:  # The model card holds their sample quality.
    skips |= {name for name, _, _ in training} | {"judge_strokes", "quality"}
  return [stage for stage in training + after if stage[0] not in skips]


def run(
    workdir: str,
    data: str,
    budget: str,
    num_images: int,
    *,
    window_rings: tuple[int, ...] = (),
    full_pass_every: int = 1,
    only: set[str] = frozenset(),
) -> None:
  """Runs the stages of `stages` in order, each a subprocess whose command is
  printed first; skips finished ones (unless named in `only`, which runs
  those alone); exits with a one-line message when a stage fails."""
  pretrained = budget == "pretrained"
  plan = stages(
      workdir,
      data,
      budget,
      num_images,
      pretrained=pretrained,
      window_rings=window_rings,
      full_pass_every=full_pass_every,
  )
  unknown = only - {name for name, _, _ in plan}
  if unknown:
    raise ValueError(
        f"unknown --only stages {sorted(unknown)}: this pipeline has "
        + ", ".join(name for name, _, _ in plan)
        + "."
    )
  env = dict(os.environ, WANDB_MODE=os.environ.get("WANDB_MODE", "disabled"))
  start = time.time()
  slug = data_slug(data)
  for name, command, done in plan:
    if only and name not in only:
      continue
    if done and os.path.exists(done) and not only:
      print(f"[{name}] done already ({done}); skipping", flush=True)
      continue
    print(f"[{name}] $ {shlex.join(command)}", flush=True)
    t0 = time.time()
    returncode = subprocess.run(command, cwd=files.CHECKOUT, env=env).returncode
    if returncode:
      # The stage printed its error; a rerun resumes where it stopped.
      sys.exit(
          f"[{name}] failed (exit {returncode}); fix the error above and"
          " rerun the same command: finished stages are skipped."
      )
    print(
        f"[{name}] finished in {time.time() - t0:.0f}s "
        f"(total {time.time() - start:.0f}s)",
        flush=True,
    )
  # The trainers' and the judge's figures join the grid and the plot.
  figures = figures_dir(workdir, budget, "models")
  os.makedirs(figures, exist_ok=True)  # --only may skip the stages making it.
  runs = run_folders(workdir, data, pretrained)
  prefix = f"{slug}_{budget}" if budget != "default" else slug
  for source, figure in (
      (
          os.path.join(runs["tokenizer"], "reconstructions.png"),
          "reconstructions",
      ),
      (os.path.join(workdir, "quality", "samples.png"), "samples"),
  ):
    if os.path.exists(source) and not pretrained:
      shutil.copyfile(source, os.path.join(figures, f"{prefix}_{figure}.png"))
  print(
      f"Pipeline finished in {time.time() - start:.0f}s; see "
      f"{os.path.join(workdir, 'output')}",
      flush=True,
  )
