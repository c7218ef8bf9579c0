r"""Inpainting quality over mask schedule x steps T x sweet spot k/T.

  python scripts/sweep_schedules.py --tokenizer_workdir runs/shapes/tokenizer \
      --transformer_workdir runs/shapes/maskgit --out output/sweep \
      [--num_images 100] [--schedules cosine,linear,square,pow3,log,exp] \
      [--steps 4,8,12,16] [--fractions 0.25,0.5,0.75,1] [--seed 0]

The schedule / sweet-spot study of MaskGIT inpainting. The problem is fixed:
the centre box (side --box_fraction) of the first --num_images images of the
tokenizer run's held-out (test) split is decoded from the tokens around it
(`--dilation` extra tokens). For every schedule, T in --steps and sweet spot
k = ceil(f * T) for f in --fractions (run steps [start_iter, k), then fill
what is still unknown with the argmax of one more pass; k = T is plain
decoding), the same images are decoded with the same keys (batch b uses
fold_in(key(seed), b) in every combination, so samples are paired), the
decoded pixels are pasted into the decoded region (hard composite) and
scored:

  swd             realism: sliced Wasserstein distance (x1e3, Karras et al.
                  2018) between the inpainted images and the next
                  --num_reference test images, which are never sources.
  psnr_region     PSNR (dB) to the original image inside the decoded region.
  token_nll       mean NLL (nats) of the filled tokens under the model's
                  prediction from the context alone (region masked, one
                  forward pass): how plausible each filled token is given
                  the kept tokens. It rewards modal tokens; read it with swd.
  token_accuracy  share of the filled tokens equal to the source's tokens.
(`*_ci`: half-width of the 95% t-interval over images; swd is one number
per image set.)

SWD on small images: the original settings (coarsest level 16 px, 128 7x7
patches per image and level) leave a 16 px image a single pyramid level and
draw 128 patches from only 10x10 patch positions. By default the coarsest
level is min(16, H / 2) px (>= the patch size), so 16 px images get two
levels (16, 8) and 32 px images the original two (32, 16); below 64 px 32
patches per image are drawn. --swd_min_resolution / --swd_descriptors
override both.

Writes to --out: sweep.csv (one row per combination), baseline.csv (the same
metrics for the source's true tokens decoded by the tokenizer, and swd of the
real source images), and <metric>.png for each metric against k/T, one curve
per schedule, one panel per T, the baselines dashed. Each combination is a
new static `DecodeSettings`, hence one compilation of its `Sampler`.
"""

import csv
import dataclasses
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")  # Files only, no display.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)  # Runs from a checkout without installing.

# pylint: disable=g-import-not-at-top,wrong-import-position
import matplotlib.pyplot as plt

from maskgit_edit import artefacts
from maskgit_edit import cli
from maskgit_edit import data as data_lib
from maskgit_edit import edit as edit_lib
from maskgit_edit import images as images_lib
from maskgit_edit import metrics
from maskgit_edit import regions
from maskgit_edit.decoding import sampling

# pylint: enable=g-import-not-at-top,wrong-import-position

SETTING_COLUMNS = ("schedule", "num_steps", "stop_iter", "sweet_spot")
# Per-image metrics, reported as mean and CI half-width.
IMAGE_METRICS = ("psnr_region", "token_nll", "token_accuracy")
METRIC_COLUMNS = ("swd",) + tuple(
    c for m in IMAGE_METRICS for c in (m, f"{m}_ci")
)
METRIC_LABELS = {
    "swd": "SWD x1e3 (lower = more real)",
    "psnr_region": "PSNR in region (dB)",
    "token_nll": "filled-token NLL (nats)",
    "token_accuracy": "token accuracy",
}
SWD_PATCH_SIZE = 7
# Identical images give PSNR = inf; capped so that means stay finite.
PSNR_CAP_DB = 100.0


def _csv_list(kind):
  return lambda text: [kind(v) for v in text.split(",") if v]


def parse_args(argv):
  parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tokenizer_workdir", required=True)
  parser.add_argument("--transformer_workdir", required=True)
  parser.add_argument("--out", default="output/sweep_schedules")
  parser.add_argument(
      "--num_images",
      type=int,
      default=100,
      help="Held-out images to inpaint (the first of test).",
  )
  parser.add_argument(
      "--num_reference",
      type=int,
      default=1000,
      help="Real images for SWD: the test images after the "
      "sources (fewer if the split is shorter).",
  )
  parser.add_argument(
      "--schedules",
      type=_csv_list(str),
      default="cosine,linear,square,pow3,log,exp",
  )
  parser.add_argument(
      "--steps", type=_csv_list(int), default="4,8,12,16", help="Total steps T."
  )
  parser.add_argument(
      "--fractions",
      type=_csv_list(float),
      default="0.25,0.5,0.75,1",
      help="Sweet spots k/T (k = ceil(f * T)).",
  )
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
      "--choice_temperature",
      type=float,
      default=sampling.DecodeSettings().choice_temperature,
  )
  parser.add_argument("--start_iter", type=int, default=0)
  parser.add_argument(
      "--box_fraction",
      type=float,
      default=0.5,
      help="Side of the centre box as a fraction of the image.",
  )
  parser.add_argument(
      "--dilation",
      type=int,
      default=0,
      help="Tokens added around the box's tokens.",
  )
  parser.add_argument(
      "--batch_size",
      type=int,
      default=32,
      help="Images per decode call (at most --num_images).",
  )
  parser.add_argument("--swd_min_resolution", type=int, default=None)
  parser.add_argument("--swd_descriptors", type=int, default=None)
  args = parser.parse_args(argv)
  if args.num_images < 2:  # Confidence intervals need two images.
    raise ValueError(f"--num_images must be >= 2, got {args.num_images}.")
  if args.batch_size < 1:
    raise ValueError(f"--batch_size must be >= 1, got {args.batch_size}.")
  # A batch larger than the problem would only decode padding.
  args.batch_size = min(args.batch_size, args.num_images)
  return args


def sweet_spot_iter(fraction: float, num_steps: int) -> int:
  """k = ceil(fraction * T), robust to float error (0.3 * 10 -> 3)."""
  if not 0.0 < fraction <= 1.0:
    raise ValueError(f"Sweet-spot fraction must be in (0, 1], got {fraction}.")
  return math.ceil(round(fraction * num_steps, 6))


def sweep_settings(
    schedules, steps, fractions, *, choice_temperature: float, start_iter: int
) -> list[sampling.DecodeSettings]:
  """Every distinct (schedule, T, k) as DecodeSettings, in sweep order.

  Fractions that round to the same k for some T give one setting.

  Raises:
    ValueError: for a bad fraction or schedule, or a k <= start_iter.
  """
  settings = {}
  for schedule in schedules:
    for num_steps in steps:
      for fraction in fractions:
        stop_iter = sweet_spot_iter(fraction, num_steps)
        if stop_iter <= start_iter:
          raise ValueError(
              f"Sweet spot k/T = {fraction} of T = {num_steps} gives k = "
              f"{stop_iter}, not after start_iter = {start_iter}."
          )
        s = sampling.DecodeSettings(
            num_steps=num_steps,
            schedule=schedule,
            choice_temperature=choice_temperature,
            start_iter=start_iter,
            stop_iter=stop_iter,
        )
        settings[s] = None
  return list(settings)


def swd_options(
    image_size: int,
    min_resolution: int | None = None,
    num_descriptors: int | None = None,
) -> dict:
  """SWD keyword arguments for `image_size` px images (see module doc)."""
  if min_resolution is None:
    min_resolution = max(SWD_PATCH_SIZE, min(16, image_size // 2))
  if num_descriptors is None:
    num_descriptors = 128 if image_size >= 64 else 32
  if image_size < min_resolution:
    raise ValueError(
        f"Images of {image_size} px are smaller than the SWD "
        f"coarsest level of {min_resolution} px."
    )
  return dict(
      min_resolution=min_resolution,
      num_descriptors=num_descriptors,
      patch_size=SWD_PATCH_SIZE,
  )


@dataclasses.dataclass(frozen=True)
class Problem:
  """The fixed inpainting problem that every decode setting is scored on.

  Attributes:
    sources_NxHxWx3: float32 held-out images in [0, 1].
    labels_N: int32 class labels.
    tokens_Nxhxw: int32 true (source) tokens.
    unknown_Nxhxw: bool tokens to decode.
    region_NxHxW: bool pixels of the decoded tokens.
    context_log_probs_NxhxwxC: float32 model log-probabilities of every
      code given the tokens outside the region.
    reference_descriptors: SWD descriptors of the real reference images.
    swd_options: keyword arguments of `metrics.swd_descriptors`.
    seed: seed of the SWD patch positions and directions.
  """

  sources_NxHxWx3: np.ndarray
  labels_N: np.ndarray
  tokens_Nxhxw: np.ndarray
  unknown_Nxhxw: np.ndarray
  region_NxHxW: np.ndarray
  context_log_probs_NxhxwxC: np.ndarray
  reference_descriptors: list
  swd_options: dict
  seed: int


def batches(num: int, batch_size: int):
  """(indices_B, count) per batch; the last is padded with the first images.

  Padding keeps every call at one shape, hence one compilation per Sampler;
  only the first `count` rows of a batch are real.
  """
  for start in range(0, num, batch_size):
    yield np.arange(start, start + batch_size) % num, min(
        batch_size, num - start
    )


def batched(fn, num: int, batch_size: int, *arrays):
  """Concatenated fn(batch_index, *arrays[indices]) over padded batches."""
  outputs = []
  for b, (indices_B, count) in enumerate(batches(num, batch_size)):
    out = fn(b, *(a[indices_B] for a in arrays))
    outputs.append(np.asarray(out)[:count])
  return np.concatenate(outputs)


def context_log_probs(
    editor: edit_lib.Editor,
    tokens_Nxhxw,
    unknown_Nxhxw,
    labels_N,
    batch_size: int,
) -> np.ndarray:
  """log p(code | tokens outside the region) at every position, [N, h, w, C]."""
  layout = editor.layout
  # Params are an argument, not a closure: constants would be baked into the
  # compiled program.
  logits = jax.jit(
      lambda params, *inputs: sampling.logits_fn_for(
          editor.sampler.model, params, layout
      )(*inputs)
  )

  def run(_, tokens_Bxhxw, unknown_Bxhxw, labels_B):
    batch = tokens_Bxhxw.shape[0]
    ids_BxL = layout.inputs(
        jnp.asarray(tokens_Bxhxw, jnp.int32).reshape(batch, -1),
        labels_B,
        unknown_Bxhxw.reshape(batch, -1),
    )
    logits_BxLxC = logits(
        editor.params,
        ids_BxL,
        jnp.full(ids_BxL.shape, -1, jnp.int32),
        jnp.zeros((batch,), jnp.float32),
    )
    log_probs = jax.nn.log_softmax(layout.code_logits(logits_BxLxC), axis=-1)
    return log_probs.reshape(*tokens_Bxhxw.shape, -1)

  return batched(
      run, len(tokens_Nxhxw), batch_size, tokens_Nxhxw, unknown_Nxhxw, labels_N
  )


def build_problem(editor: edit_lib.Editor, tokenizer_workdir: str, args):
  """Sources, masks, true tokens, context predictions and SWD reference."""
  data_config = artefacts.load_run_config(tokenizer_workdir).data
  source = data_lib.get_source(data_config, "test")
  num_reference = min(args.num_reference, len(source) - args.num_images)
  if num_reference < 1:
    raise ValueError(
        f"The test split has {len(source)} images: none is left for the SWD "
        f"reference after {args.num_images} sources."
    )
  images, labels = source.get(np.arange(args.num_images + num_reference))
  images = images_lib.to_float(images)
  sources_NxHxWx3, reference = np.split(images, [args.num_images])
  labels_N = labels[: args.num_images]
  size = sources_NxHxWx3.shape[1]
  box_HxW = regions.box_mask(size, regions.centre_box(size, args.box_fraction))
  unknown_Nxhxw = np.broadcast_to(
      regions.pixel_to_token_mask(
          box_HxW[None], editor.layout.grid_side, args.dilation
      ),
      (args.num_images, editor.layout.grid_side, editor.layout.grid_side),
  )
  tokens_Nxhxw = batched(
      lambda _, x: editor.tokenize(x),
      args.num_images,
      args.batch_size,
      sources_NxHxWx3,
  )
  options = swd_options(size, args.swd_min_resolution, args.swd_descriptors)
  print(
      f"{args.num_images} sources, {num_reference} SWD reference images of "
      f"{size} px; {int(unknown_Nxhxw[0].sum())} of "
      f"{unknown_Nxhxw[0].size} tokens to decode; SWD {options}",
      flush=True,
  )
  return Problem(
      sources_NxHxWx3=sources_NxHxWx3,
      labels_N=labels_N,
      tokens_Nxhxw=tokens_Nxhxw,
      unknown_Nxhxw=unknown_Nxhxw,
      region_NxHxW=regions.token_to_pixel_mask(unknown_Nxhxw, size),
      context_log_probs_NxhxwxC=context_log_probs(
          editor, tokens_Nxhxw, unknown_Nxhxw, labels_N, args.batch_size
      ),
      reference_descriptors=metrics.swd_descriptors(
          reference, _swd_rngs(args.seed)[0], **options
      ),
      swd_options=options,
      seed=args.seed,
  )


def _swd_rngs(seed: int):
  """Generators of (patch positions, projection directions)."""
  return [
      np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)
  ]


def realism_swd(problem: Problem, images_NxHxWx3: np.ndarray) -> float:
  """SWD of an image set to the reference; fixed patches and directions."""
  positions, directions = _swd_rngs(problem.seed)
  descriptors = metrics.swd_descriptors(
      images_NxHxWx3, positions, **problem.swd_options
  )
  return metrics.swd_from_descriptors(
      descriptors, problem.reference_descriptors, directions
  )["mean"]


def score(
    problem: Problem, tokens_Nxhxw: np.ndarray, decoded_NxHxWx3: np.ndarray
) -> dict:
  """METRIC_COLUMNS of filled tokens and their decoded pixels."""
  inpainted_NxHxWx3 = regions.composite(
      problem.sources_NxHxWx3,
      np.clip(decoded_NxHxWx3, 0, 1),
      problem.region_NxHxW,
      "hard",
  )
  n = len(tokens_Nxhxw)
  unknown_NxL = problem.unknown_Nxhxw.reshape(n, -1)
  log_probs_NxLxC = problem.context_log_probs_NxhxwxC.reshape(
      *unknown_NxL.shape, -1
  )
  per_image = {
      "psnr_region": metrics.psnr(
          inpainted_NxHxWx3,
          problem.sources_NxHxWx3,
          mask=problem.region_NxHxW,
          cap=PSNR_CAP_DB,
      ),
      "token_nll": metrics.token_nll(
          log_probs_NxLxC, tokens_Nxhxw.reshape(n, -1), unknown_NxL
      ),
      "token_accuracy": (
          (tokens_Nxhxw == problem.tokens_Nxhxw) & problem.unknown_Nxhxw
      ).sum(axis=(1, 2))
      / problem.unknown_Nxhxw.sum(axis=(1, 2)),
  }
  row = {"swd": realism_swd(problem, inpainted_NxHxWx3)}
  for name, values_N in per_image.items():
    row[name], row[f"{name}_ci"] = metrics.mean_ci(values_N)
  return row


def run_setting(
    editor: edit_lib.Editor,
    sampler: sampling.Sampler,
    problem: Problem,
    seed: int,
    batch_size: int,
):
  """Filled tokens [N, h, w] and their pixels [N, H, W, 3] for one setting."""
  rng = jax.random.key(seed)

  def decode(b, tokens_Bxhxw, unknown_Bxhxw, labels_B):
    return sampler(
        editor.params,
        tokens_Bxhxw,
        unknown_Bxhxw,
        jax.random.fold_in(rng, b),
        labels_B=labels_B,
    )

  tokens_Nxhxw = batched(
      decode,
      len(problem.tokens_Nxhxw),
      batch_size,
      problem.tokens_Nxhxw,
      problem.unknown_Nxhxw,
      problem.labels_N,
  )
  pixels_NxHxWx3 = batched(
      lambda _, t: editor.detokenize(t),
      len(tokens_Nxhxw),
      batch_size,
      tokens_Nxhxw,
  )
  return tokens_Nxhxw, pixels_NxHxWx3


def baseline_rows(
    editor: edit_lib.Editor, problem: Problem, batch_size: int
) -> list[dict]:
  """Metrics of the true tokens, and swd of the real sources themselves."""
  pixels = batched(
      lambda _, t: editor.detokenize(t),
      len(problem.tokens_Nxhxw),
      batch_size,
      problem.tokens_Nxhxw,
  )
  true_tokens = {
      "fill": "true_tokens",
      **score(problem, problem.tokens_Nxhxw, pixels),
  }
  real = {
      "fill": "real_images",
      **{c: math.nan for c in METRIC_COLUMNS},
      "swd": realism_swd(problem, problem.sources_NxHxWx3),
  }
  return [true_tokens, real]


def write_csv(rows: list[dict], columns, path: str) -> str:
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
  return path


def plot_metric(
    rows: list[dict], baselines: list[dict], metric: str, path: str
) -> str:
  """metric vs k/T: one panel per T, one curve per schedule."""
  steps = sorted({r["num_steps"] for r in rows})
  schedules = list(dict.fromkeys(r["schedule"] for r in rows))
  fig, axes = plt.subplots(
      1,
      len(steps),
      figsize=(3.2 * len(steps) + 1, 3.2),
      sharey=True,
      squeeze=False,
  )
  for ax, num_steps in zip(axes[0], steps):
    for schedule in schedules:
      curve = sorted(
          (
              r
              for r in rows
              if r["schedule"] == schedule and r["num_steps"] == num_steps
          ),
          key=lambda r: r["sweet_spot"],
      )
      ax.errorbar(
          [r["sweet_spot"] for r in curve],
          [r[metric] for r in curve],
          yerr=[r.get(f"{metric}_ci", 0.0) for r in curve],
          marker="o",
          markersize=3,
          capsize=2,
          label=schedule,
      )
    for baseline, style in zip(baselines, ("--", ":")):
      if np.isfinite(baseline[metric]):
        ax.axhline(
            baseline[metric],
            color="k",
            linestyle=style,
            linewidth=1,
            label=baseline["fill"].replace("_", " "),
        )
    ax.set_title(f"T = {num_steps}")
    ax.set_xlabel("sweet spot k/T")
    ax.set_xlim(0, 1.05)
    ax.grid(alpha=0.3)
  axes[0, 0].set_ylabel(METRIC_LABELS[metric])
  axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def main(argv=None) -> list[dict]:
  """Runs the sweep, writes the CSVs and plots; returns the sweep rows."""
  args = parse_args(argv)
  grid = sweep_settings(
      args.schedules,
      args.steps,
      args.fractions,
      choice_temperature=args.choice_temperature,
      start_iter=args.start_iter,
  )
  editor = edit_lib.Editor.from_workdirs(
      args.tokenizer_workdir, args.transformer_workdir
  )
  problem = build_problem(editor, args.tokenizer_workdir, args)
  os.makedirs(args.out, exist_ok=True)
  baselines = baseline_rows(editor, problem, args.batch_size)
  write_csv(
      baselines,
      ("fill",) + METRIC_COLUMNS,
      os.path.join(args.out, "baseline.csv"),
  )
  samplers = {
      s: sampling.Sampler(editor.sampler.model, editor.layout, s) for s in grid
  }
  rows = []
  for i, (settings, sampler) in enumerate(samplers.items()):
    start = time.perf_counter()
    tokens, pixels = run_setting(
        editor, sampler, problem, args.seed, args.batch_size
    )
    row = {
        "schedule": settings.schedule,
        "num_steps": settings.num_steps,
        "stop_iter": settings.stop_iter,
        "sweet_spot": settings.stop_iter / settings.num_steps,
        **score(problem, tokens, pixels),
    }
    rows.append(row)
    summary = " ".join(f"{m}={row[m]:.4g}" for m in METRIC_LABELS)
    print(
        f"[{i + 1}/{len(samplers)}] {settings.schedule} "
        f"T={settings.num_steps} k={settings.stop_iter}: {summary} "
        f"({time.perf_counter() - start:.1f} s)",
        flush=True,
    )
  csv_path = write_csv(
      rows,
      SETTING_COLUMNS + METRIC_COLUMNS,
      os.path.join(args.out, "sweep.csv"),
  )
  print(f"Wrote {csv_path}", flush=True)
  for metric in METRIC_LABELS:
    print(
        "Wrote",
        plot_metric(
            rows, baselines, metric, os.path.join(args.out, f"{metric}.png")
        ),
        flush=True,
    )
  return rows


if __name__ == "__main__":
  cli.run(main)
