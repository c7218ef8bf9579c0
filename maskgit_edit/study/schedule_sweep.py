"""Inpainting quality over mask schedule x steps T x sweet spot k/T.

The schedule / sweet-spot study of MaskGIT inpainting
(`scripts/sweep_schedules.py`). The problem is fixed:
the centre box (side `box_fraction`) of the first `num_images` images of the
tokenizer run's held-out (test) split is decoded from the tokens around it
(`dilation` extra tokens). For every schedule, T in `steps` and sweet spot
k = ceil(f * T) for f in `fractions` (run steps [start_iter, k), then fill
what is still unknown with the argmax of one more pass; k = T is plain
decoding), the same images are decoded with the same keys (batch b uses
fold_in(key(seed), b) in every combination, so samples are paired), the
decoded pixels are pasted into the decoded region (hard composite) and
scored:

  swd             realism: sliced Wasserstein distance (x1e3, Karras et al.
                  2018) between the inpainted images and the next
                  `num_reference` test images, which are never sources.
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
patches per image are drawn. `swd_min_resolution` and
`swd_descriptors` override both (`scoring.SwdSettings.for_image_size`).

Writes to its folder: sweep.csv (one row per combination), baseline.csv (the same
metrics for the source's true tokens decoded by the tokenizer, and swd of the
real source images), and <metric>.png for each metric against k/T, one curve
per schedule, one panel per T, the baselines dashed. Each combination is a
new static `DecodeSettings`, hence one compilation of its `Sampler`.
"""

from collections.abc import Sequence
import csv
import dataclasses
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_edit import artefacts
from maskgit_edit import batching
from maskgit_edit import data as data_lib
from maskgit_edit import edit as edit_lib
from maskgit_edit import images as images_lib
from maskgit_edit import intervals
from maskgit_edit import metrics
from maskgit_edit import regions
from maskgit_edit.decoding import sampling
from maskgit_edit.study import plot
from maskgit_edit.study import schema
from maskgit_edit.study import scoring

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


@dataclasses.dataclass(frozen=True)
class Sweep:
  """What the sweep decodes and how it scores it (see the module doc)."""

  schedules: Sequence[str] = (
      "cosine",
      "linear",
      "square",
      "pow3",
      "log",
      "exp",
  )
  steps: Sequence[int] = (4, 8, 12, 16)  # Total steps T.
  fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0)  # Sweet spots k/T.
  num_images: int = 100  # Sources: the first held-out (test) images.
  num_reference: int = 1000  # SWD's real images: the test images after them.
  box_fraction: float = 0.5  # Side of the centre box, of the image side.
  dilation: int = 0  # Tokens added around the box's tokens.
  choice_temperature: float = sampling.DecodeSettings().choice_temperature
  start_iter: int = 0
  batch_size: int = 32  # Images per decode call.
  seed: int = 0
  swd_min_resolution: int | None = None
  swd_descriptors: int | None = None

  def __post_init__(self):
    if self.num_images < 2:  # Confidence intervals need two images.
      raise ValueError(f"--num_images must be >= 2, got {self.num_images}.")
    if self.batch_size < 1:
      raise ValueError(f"--batch_size must be >= 1, got {self.batch_size}.")
    # A batch larger than the problem would only decode padding.
    object.__setattr__(
        self, "batch_size", min(self.batch_size, self.num_images)
    )


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
    swd: the SWD settings.
    reference_descriptors: their descriptors of the real reference images.
  """

  sources_NxHxWx3: np.ndarray
  labels_N: np.ndarray
  tokens_Nxhxw: np.ndarray
  unknown_Nxhxw: np.ndarray
  region_NxHxW: np.ndarray
  context_log_probs_NxhxwxC: np.ndarray
  swd: scoring.SwdSettings
  reference_descriptors: list


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

  return batching.map_in_batches(
      run, (tokens_Nxhxw, unknown_Nxhxw, labels_N), batch_size, indexed=True
  )


def build_problem(
    editor: edit_lib.Editor, tokenizer_workdir: str, sweep: Sweep
) -> Problem:
  """Sources, masks, true tokens, context predictions and SWD reference."""
  data_config = artefacts.load_run_config(tokenizer_workdir).data
  source = data_lib.get_source(data_config, "test")
  num = sweep.num_images
  num_reference = min(sweep.num_reference, len(source) - num)
  if num_reference < 1:
    raise ValueError(
        f"The test split has {len(source)} images: none is left for the SWD "
        f"reference after {num} sources."
    )
  images, labels = source.get(np.arange(num + num_reference))
  images = images_lib.to_float(images)
  sources_NxHxWx3, reference = np.split(images, [num])
  labels_N = labels[:num]
  size = sources_NxHxWx3.shape[1]
  side = editor.layout.grid_side
  box_HxW = regions.box_mask(size, regions.centre_box(size, sweep.box_fraction))
  unknown_Nxhxw = np.broadcast_to(
      regions.pixel_to_token_mask(box_HxW[None], side, sweep.dilation),
      (num, side, side),
  )
  tokens_Nxhxw = batching.map_in_batches(
      editor.tokenize, sources_NxHxWx3, sweep.batch_size
  )
  swd = scoring.SwdSettings.for_image_size(
      size,
      min_resolution=sweep.swd_min_resolution,
      num_descriptors=sweep.swd_descriptors,
      seed=sweep.seed,
  )
  print(
      f"{num} sources, {num_reference} SWD reference images of {size} px; "
      f"{int(unknown_Nxhxw[0].sum())} of {unknown_Nxhxw[0].size} tokens to "
      f"decode; {swd}",
      flush=True,
  )
  return Problem(
      sources_NxHxWx3=sources_NxHxWx3,
      labels_N=labels_N,
      tokens_Nxhxw=tokens_Nxhxw,
      unknown_Nxhxw=unknown_Nxhxw,
      region_NxHxW=regions.token_to_pixel_mask(unknown_Nxhxw, size),
      context_log_probs_NxhxwxC=context_log_probs(
          editor, tokens_Nxhxw, unknown_Nxhxw, labels_N, sweep.batch_size
      ),
      swd=swd,
      reference_descriptors=swd.descriptors(reference),
  )


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
          cap=schema.PSNR_CAP,
      ),
      "token_nll": metrics.token_nll(
          log_probs_NxLxC, tokens_Nxhxw.reshape(n, -1), unknown_NxL
      ),
      "token_accuracy": (
          (tokens_Nxhxw == problem.tokens_Nxhxw) & problem.unknown_Nxhxw
      ).sum(axis=(1, 2))
      / problem.unknown_Nxhxw.sum(axis=(1, 2)),
  }
  row = {
      "swd": problem.swd.distance(
          inpainted_NxHxWx3, problem.reference_descriptors
      )
  }
  for name, values_N in per_image.items():
    row[name], row[f"{name}_ci"] = intervals.mean_ci(values_N)
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

  tokens_Nxhxw = batching.map_in_batches(
      decode,
      (problem.tokens_Nxhxw, problem.unknown_Nxhxw, problem.labels_N),
      batch_size,
      indexed=True,
  )
  pixels_NxHxWx3 = batching.map_in_batches(
      editor.detokenize, tokens_Nxhxw, batch_size
  )
  return tokens_Nxhxw, pixels_NxHxWx3


def baseline_rows(
    editor: edit_lib.Editor, problem: Problem, batch_size: int
) -> list[dict]:
  """Metrics of the true tokens, and swd of the real sources themselves."""
  pixels = batching.map_in_batches(
      editor.detokenize, problem.tokens_Nxhxw, batch_size
  )
  true_tokens = {
      "fill": "true_tokens",
      **score(problem, problem.tokens_Nxhxw, pixels),
  }
  real = {
      "fill": "real_images",
      **{c: math.nan for c in METRIC_COLUMNS},
      "swd": problem.swd.distance(
          problem.sources_NxHxWx3, problem.reference_descriptors
      ),
  }
  return [true_tokens, real]


def write_csv(rows: list[dict], columns, path: str) -> str:
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
  return path


def run_sweep(
    tokenizer_workdir: str, transformer_workdir: str, out: str, sweep: Sweep
) -> list[dict]:
  """Runs the sweep, writes the CSVs and plots to `out`; returns the rows."""
  grid = sweep_settings(
      sweep.schedules,
      sweep.steps,
      sweep.fractions,
      choice_temperature=sweep.choice_temperature,
      start_iter=sweep.start_iter,
  )
  editor = edit_lib.Editor.from_workdirs(tokenizer_workdir, transformer_workdir)
  problem = build_problem(editor, tokenizer_workdir, sweep)
  os.makedirs(out, exist_ok=True)
  baselines = baseline_rows(editor, problem, sweep.batch_size)
  write_csv(
      baselines,
      ("fill",) + METRIC_COLUMNS,
      os.path.join(out, "baseline.csv"),
  )
  samplers = {
      s: sampling.Sampler(editor.sampler.model, editor.layout, s) for s in grid
  }
  rows = []
  for i, (settings, sampler) in enumerate(samplers.items()):
    start = time.perf_counter()
    tokens, pixels = run_setting(
        editor, sampler, problem, sweep.seed, sweep.batch_size
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
      os.path.join(out, "sweep.csv"),
  )
  print(f"Wrote {csv_path}", flush=True)
  for metric, label in METRIC_LABELS.items():
    path = os.path.join(out, f"{metric}.png")
    plot.plot_sweep_metric(rows, baselines, metric, label, path)
    print("Wrote", path, flush=True)
  return rows
