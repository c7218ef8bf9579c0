r"""Speed of this machine on the project's workloads, with MFU.

  python scripts/benchmark.py [--out benchmark.json] [--reps 5] \
      [--batch_sizes 1,8,32] [--prng_impls rbg,unsafe_rbg] [--quick]

Measures, on randomly initialised models of the default configs:
  1. the machine's f32 matmul peak, the denominator of every MFU below;
  2. tokenizer (configs/tokenizer_shapes.py): images/s of the real jitted
     `TokenizerTask.train_step` and of encode+decode inference;
  3. transformer (configs/maskgit_shapes.py): tokens/s of the real jitted
     `MaskGitTask.train_step` (MVTM: forward + backward + AdamW), also with
     its rng from other PRNG implementations, and of a forward pass;
  4. decoding with `sampling.Sampler` (12 steps, 30% of the tokens unknown):
     latency, images/s and the loop overhead against one jitted forward per
     step at each batch size, compilations when the mask or the guidance
     variant changes, and memory.

Every timing is the median of `--reps` calls after a warm-up call, each
blocked on its outputs, in wall-clock and in process CPU seconds. FLOPs come
from XLA's cost analysis of the compiled programs.

The machine is often shared, so the peak is taken from CPU time: the best
matmul FLOPs per CPU-second of this process is one core's peak, times the
cores is the machine's. It does not shrink when other processes take cores,
unlike the best wall-clock rate (also reported). Each workload reports
  mfu              FLOPs / wall second / machine peak (what a user sees now),
  threads          CPU seconds / wall second (cores it kept busy),
  core_efficiency  FLOPs / CPU second / one core's peak (load-independent).

Results go to `--out` as JSON and to stdout as markdown tables. `--quick`
uses the configs' `runlocal` sizes (seconds of work; for the smoke test).
"""

import json
import math
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)  # Runs from a checkout without installing.

# pylint: disable=g-import-not-at-top,wrong-import-position
from maskgit_edit import cli
from maskgit_edit import config_files
from maskgit_edit import data as data_lib
from maskgit_edit import models
from maskgit_edit import released
from maskgit_edit.benchmarking import timing
from maskgit_edit.decoding import sampling
from maskgit_edit.decoding import guidance as guidance_lib
from maskgit_edit.decoding import windows
from maskgit_edit.trainers import maskgit as maskgit_trainer
from maskgit_edit.trainers import tokenizer as tokenizer_trainer

# pylint: enable=g-import-not-at-top,wrong-import-position

TOKENIZER_CONFIG = "configs/tokenizer_shapes.py"
TRANSFORMER_CONFIG = "configs/maskgit_shapes.py"
UNKNOWN_FRACTION = 0.3
NUM_DECODE_STEPS = 12
NUM_MASKS = 3
GUIDANCE_VARIANTS = (("context", 0.5), ("self_fixed", 2.0), ("iterative", 1.0))
# Parameters are random either way; with the default threefry keys XLA:CPU
# spends tens of seconds compiling the initialisers of the tokenizer alone.
INIT_PRNG_IMPL = "unsafe_rbg"


def _log(message: str) -> None:
  print(f"[benchmark {time.strftime('%H:%M:%S')}] {message}", flush=True)


def init_key() -> jax.Array:
  return jax.random.key(0, impl=INIT_PRNG_IMPL)


# --- sections -----------------------------------------------------------------
def matmul_peak(size: int, reps: int) -> dict:
  """Best f32 rates of a jitted [size, size] @ [size, size]."""
  keys = jax.random.split(jax.random.key(0))
  a_NxN, b_NxN = (jax.random.normal(k, (size, size), jnp.float32) for k in keys)
  matmul = jax.jit(jnp.matmul)
  (timings,) = timing.measure([lambda: matmul(a_NxN, b_NxN)], reps)
  flops = 2.0 * size**3
  per_core = flops / min(t.cpu_s for t in timings)
  return {
      "size": size,
      "reps": reps,
      "cores": timing.num_cores(),
      "per_core_gflop_per_s": per_core / 1e9,
      "peak_gflop_per_s": per_core * timing.num_cores() / 1e9,
      "best_wall_gflop_per_s": flops / min(t.wall_s for t in timings) / 1e9,
      "median_wall_gflop_per_s": flops
      / statistics.median(t.wall_s for t in timings)
      / 1e9,
  }


def tokenizer_benchmark(config, reps: int, peak: timing.Peak) -> dict:
  """Train step and encode+decode timing.throughput of the tokenizer."""
  task = tokenizer_trainer.TokenizerTask(config)
  batch, size = config.batch_size, config.data.image_size
  images_BxSxSx3 = jax.random.uniform(jax.random.key(1), (batch, size, size, 3))
  state = jax.jit(task.init_state)(init_key())
  # Inference first: the train step donates (consumes) the state's params.
  params = state["params"]
  reconstruct = jax.jit(task.reconstruct)
  infer_flops = timing.compiled_flops(reconstruct, params, images_BxSxSx3)
  _log(f"tokenizer encode+decode: batch {batch}, {size} px")
  infer = timing.time_calls(lambda: reconstruct(params, images_BxSxSx3), reps)

  step = jax.jit(task.train_step, donate_argnums=0)
  batch_dict, rng = {"images": images_BxSxSx3}, jax.random.key(2)
  train_flops = timing.compiled_flops(step, state, batch_dict, rng)
  _log(f"tokenizer train step: batch {batch}, {size} px")
  train = timing.time_calls(timing.threaded(step, state, batch_dict, rng), reps)
  return {
      "batch_size": batch,
      "image_size": size,
      "train": timing.throughput(train, batch, train_flops, peak, "images"),
      "inference": timing.throughput(infer, batch, infer_flops, peak, "images"),
  }


def random_token_task(tokenizer_config, transformer_config):
  """`MaskGitTask` over random token grids of the tokenizer config's sizes
  (token values and initial embeddings do not change the speed)."""
  num_classes = data_lib.get_source(tokenizer_config.data, "test").num_classes
  layout = models.TokenLayout.of_tokenizer(
      tokenizer_config.tokenizer,
      tokenizer_config.data.image_size,
      num_classes,
      transformer_config.model.class_conditional,
  )
  num = transformer_config.batch_size
  rng = np.random.default_rng(0)
  tokens_Nxhw = rng.integers(
      0, layout.codebook_size, (num, layout.grid_side**2)
  )
  labels_N = np.arange(num) % max(num_classes, 1)
  transformer_config = transformer_config.copy_and_resolve_references()
  transformer_config.mvtm.init_words = "random"
  return maskgit_trainer.MaskGitTask(
      transformer_config,
      transformer_config.model,
      layout,
      maskgit_trainer.TokenSplits(tokens_Nxhw, labels_N, tokens_Nxhw, labels_N),
  )


def transformer_benchmark(
    task, reps: int, peak: timing.Peak, prng_impls
) -> dict:
  """MVTM train step (per PRNG implementation) and forward throughput.

  "train" is the step with jax's default PRNG implementation, which the
  training loop uses; "train_by_prng_impl" adds each of `prng_impls`, timed
  interleaved with it.
  Tokens are sequence positions (class token included).
  """
  batch, layout = task.config.batch_size, task.layout
  tokens = batch * layout.seq_len
  example = {
      k: jnp.asarray(v) for k, v in task.examples(np.arange(batch)).items()
  }
  init = jax.jit(task.init_state)
  step = jax.jit(task.train_step, donate_argnums=0)

  default_impl = jax.config.jax_default_prng_impl
  impls = list(dict.fromkeys((default_impl, *prng_impls)))
  steps, flops = [], []
  for impl in impls:
    # A state per impl: the step donates (consumes) it.
    state, rng = init(init_key()), jax.random.key(1, impl=impl)
    flops.append(timing.compiled_flops(step, state, example, rng))
    steps.append(timing.threaded(step, state, example, rng))
  _log(f"transformer train step: batch {batch}, rng {', '.join(impls)}")
  train = {
      impl: timing.throughput(timing, tokens, impl_flops, peak, "tokens")
      for impl, timing, impl_flops in zip(
          impls, timing.time_interleaved(steps, reps), flops
      )
  }

  params = init(init_key())["params"]
  mask_BxN = maskgit_trainer.random_mask(
      jax.random.key(3),
      batch,
      layout.grid_side**2,
      jnp.full((batch,), UNKNOWN_FRACTION),
  )
  inputs_BxL = layout.inputs(example["tokens"], example["labels"], mask_BxN)
  forward = jax.jit(task.logits)
  forward_flops = timing.compiled_flops(forward, params, inputs_BxL)
  _log(f"transformer forward: batch {batch}")
  forward_time = timing.time_calls(lambda: forward(params, inputs_BxL), reps)
  return {
      "batch_size": batch,
      "seq_len": layout.seq_len,
      "vocab_size": layout.vocab_size,
      "num_params": sum(x.size for x in jax.tree.leaves(params)),
      "train": train[default_impl],
      "train_by_prng_impl": train,
      "forward": timing.throughput(
          forward_time, tokens, forward_flops, peak, "tokens"
      ),
  }


def decode_inputs(layout, batch: int, seed: int):
  """Random token grids, masks with 30% unknown per row, and labels."""
  tokens_rng, mask_rng = jax.random.split(jax.random.key(seed))
  side = layout.grid_side
  tokens_Bxhxw = jax.random.randint(
      tokens_rng, (batch, side, side), 0, layout.codebook_size
  )
  unknown_BxN = maskgit_trainer.random_mask(
      mask_rng, batch, side * side, jnp.full((batch,), UNKNOWN_FRACTION)
  )
  # A strong bool, as `Sampler.__call__` makes it (random_mask's is weak).
  unknown_Bxhxw = jnp.asarray(unknown_BxN, bool).reshape(batch, side, side)
  labels_B = jnp.arange(batch) % max(layout.num_classes, 1)
  return tokens_Bxhxw, unknown_Bxhxw, labels_B


def decode_batch(
    sampler, params, batch: int, reps: int, peak: timing.Peak
) -> dict:
  """Decode latency at one batch size against one jitted forward per step."""
  model, layout = sampler.model, sampler.layout
  tokens_Bxhxw, unknown_Bxhxw, labels_B = decode_inputs(layout, batch, 0)
  rng = jax.random.key(4)
  # Compiled ahead of the first call (which then reuses the program), with the
  # arguments `Sampler.__call__` passes.
  program_bytes = timing.compiled_bytes(
      sampler._decode,
      params,
      tokens_Bxhxw,  # pylint: disable=protected-access
      unknown_Bxhxw,
      labels_B,
      rng,
      None,
      None,
      return_history=False,
  )

  def forward_impl(params, input_ids_BxL, guide_ids_BxL, guide_scale_B):
    return sampling.logits_fn_for(model, params, layout)(
        input_ids_BxL, guide_ids_BxL, guide_scale_B
    )

  forward = jax.jit(forward_impl)
  inputs_BxL = layout.inputs(
      tokens_Bxhxw.reshape(batch, -1),
      labels_B,
      unknown_Bxhxw.reshape(batch, -1),
  )
  forward_args = (
      params,
      inputs_BxL,
      jnp.full_like(inputs_BxL, -1),
      jnp.zeros((batch,), jnp.float32),
  )
  forward_flops = timing.compiled_flops(forward, *forward_args)
  decode, one_forward = timing.time_interleaved(
      [
          lambda: sampler(
              params, tokens_Bxhxw, unknown_Bxhxw, rng, labels_B=labels_B
          ),
          lambda: forward(*forward_args),
      ],
      reps,
  )

  # New masks of the same shape must reuse the program compiled above.
  masks = [
      decode_inputs(layout, batch, seed)[1] for seed in range(1, NUM_MASKS + 1)
  ]
  with timing.CompileCounter() as counter:
    for new_unknown_Bxhxw in masks:
      jax.block_until_ready(
          sampler(
              params, tokens_Bxhxw, new_unknown_Bxhxw, rng, labels_B=labels_B
          )
      )
  steps = sampler.settings.num_steps - sampler.settings.start_iter
  return {
      "batch_size": batch,
      "decode_ms": 1e3 * decode.wall_s,
      "decode_cpu_ms": 1e3 * decode.cpu_s,
      "per_step_ms": 1e3 * decode.wall_s / steps,
      "per_edit_ms": 1e3 * decode.wall_s / batch,
      "images_per_s": batch / decode.wall_s,
      "forward_ms": 1e3 * one_forward.wall_s,
      "forward_cpu_ms": 1e3 * one_forward.cpu_s,
      "loop_overhead": decode.wall_s / (steps * one_forward.wall_s) - 1.0,
      "loop_overhead_cpu": decode.cpu_s / (steps * one_forward.cpu_s) - 1.0,
      "forward_mfu": forward_flops / one_forward.wall_s / peak.machine,
      "decode_program_mb": program_bytes / 2**20,
      "compiles_for_new_masks": counter.count,
  }


def guidance_benchmark(sampler, params, batch: int, reps: int) -> dict:
  """Decode time per guided variant, and compilations across the variants."""
  layout = sampler.layout
  tokens_Bxhxw, unknown_Bxhxw, labels_B = decode_inputs(layout, batch, 0)
  guide_Bxhxw = decode_inputs(layout, batch, 1)[0]
  kernel_CxC = guidance_lib.identity_kernel(layout.codebook_size)
  # Built before counting: eager array ops compile small programs of their own.
  guidances = {
      variant: guidance_lib.make_guidance(
          variant, knob, guide_Bxhxw, unknown_Bxhxw, kernel_CxC
      )
      for variant, knob in GUIDANCE_VARIANTS
  }
  rng = jax.random.key(5)
  _log(f"decode with {', '.join(guidances)} guidance: batch {batch}")
  with timing.CompileCounter() as counter:
    timings = timing.time_interleaved(
        [
            lambda g=guidance: sampler(
                params,
                tokens_Bxhxw,
                unknown_Bxhxw,
                rng,
                labels_B=labels_B,
                guidance=g,
            )
            for guidance in guidances.values()
        ],
        reps,
    )
  results = {
      variant: {
          "decode_ms": 1e3 * timing.wall_s,
          "decode_cpu_ms": 1e3 * timing.cpu_s,
          "images_per_s": batch / timing.wall_s,
      }
      for variant, timing in zip(guidances, timings)
  }
  # The first guided call compiles once; the other variants reuse it.
  return {"batch_size": batch, "variants": results, "compiles": counter.count}


def decoding_benchmark(
    model_config, layout, batch_sizes, reps: int, peak: timing.Peak
) -> dict:
  model = models.build_transformer(model_config, layout)
  params = jax.jit(model.init)(
      init_key(), jnp.zeros((1, layout.seq_len), jnp.int32)
  )["params"]
  sampler = sampling.Sampler(
      model, layout, sampling.DecodeSettings(num_steps=NUM_DECODE_STEPS)
  )
  per_batch = []
  for batch in batch_sizes:
    _log(f"decode: batch {batch}")
    per_batch.append(decode_batch(sampler, params, batch, reps, peak))
  guided_batch = batch_sizes[min(1, len(batch_sizes) - 1)]
  return {
      "num_steps": NUM_DECODE_STEPS,
      "unknown_fraction": UNKNOWN_FRACTION,
      "per_batch": per_batch,
      "guidance": guidance_benchmark(sampler, params, guided_batch, reps),
  }


# --- edit latency: windowed vs full decoding ---------------------------------
EDIT_AREAS = (0.05, 0.10, 0.25, 0.50, 1.0)


def edit_mask(side: int, area: float) -> np.ndarray:
  """bool [1, side, side]: a centred rectangle of about `area` of the grid."""
  num = max(1, round(area * side * side))
  height = min(side, math.ceil(math.sqrt(num)))
  width = min(side, math.ceil(num / height))
  top, left = (side - height) // 2, (side - width) // 2
  mask = np.zeros((1, side, side), bool)
  mask[0, top : top + height, left : left + width] = True
  return mask


def _spread(timings: list[timing.Timing]) -> dict:
  walls = [t.wall_s for t in timings]
  return {
      "median_ms": 1e3 * statistics.median(walls),
      "min_ms": 1e3 * min(walls),
      "max_ms": 1e3 * max(walls),
  }


def edit_latency_benchmark(
    size: int | None,
    ring: int,
    reps: int,
    areas=EDIT_AREAS,
    full_pass_every: int = 1,
) -> dict:
  """Batch-1 edit decode time against edit area: windowed decoding (context
  ring `ring`) against the full decode, interleaved. (The PyTorch peer is
  timed in its own process: `benchmarking.peer`.)

  size: 256 or 512 for the released ImageNet architecture with random
  weights; None for the shapes `runlocal` sizes (smoke test).
  full_pass_every: > 1 also times windowed decoding with key/value reuse.
  """
  if size is None:
    config = load_config(TRANSFORMER_CONFIG, quick=True).model
    layout = models.TokenLayout(
        codebook_size=16, num_classes=4, grid_side=8, class_conditional=True
    )
    model = models.build_transformer(config, layout)
  else:
    architecture = released.released_config(size)
    layout = models.TokenLayout(
        architecture["codebook_size"],
        architecture["num_classes"],
        architecture["latent_size"],
        True,
    )
    model = released.build_released_transformer(size)
  params = jax.jit(model.init)(
      init_key(), jnp.zeros((1, layout.seq_len), jnp.int32)
  )["params"]
  samplers = [
      sampling.Sampler(
          model,
          layout,
          sampling.DecodeSettings(
              num_steps=NUM_DECODE_STEPS, full_pass_every=every
          ),
      )
      for every in sorted({1, full_pass_every})
  ]
  tokens_1xhxw = jax.random.randint(
      jax.random.key(1),
      (1, layout.grid_side, layout.grid_side),
      0,
      layout.codebook_size,
  )
  labels_1 = np.zeros(1, np.int32)
  rng = jax.random.key(2)
  decode = lambda mask, window=None, sampler=samplers[0]: sampler(
      params, tokens_1xhxw, mask, rng, labels_B=labels_1, window=window
  )
  rows = []
  for number, area in enumerate(areas):
    mask = edit_mask(layout.grid_side, area)
    window = windows.window_size(mask, ring)
    _log(
        f"edit latency: area {area:.0%} ({mask.sum()} tokens, window "
        f"{window[0]}x{window[1]})"
    )
    # A full decode runs the transformer over the whole grid whatever the
    # area, so it is timed at the first area only, in the same rounds as its
    # windowed decode.
    reuse = samplers[-1]
    fns = {"windowed": lambda m=mask: decode(m, ring)}
    if full_pass_every > 1:
      fns["windowed_reuse"] = lambda m=mask: decode(m, ring, reuse)
      fns["full_reuse"] = lambda m=mask: decode(m, None, reuse)
    if number == 0:
      fns["full"] = lambda m=mask: decode(m)
    timings = dict(
        zip(fns, map(_spread, timing.measure(list(fns.values()), reps)))
    )
    if number == 0:
      full = timings.pop("full")
    row = {
        "area": area,
        "edited_tokens": int(mask.sum()),
        "window_tokens": window[0] * window[1],
        "decodes": timings,
        "speedups": {
            name: full["median_ms"] / t["median_ms"]
            for name, t in timings.items()
        },
    }
    rows.append(row)
  return {
      "size": size or "runlocal",
      "grid": layout.grid_side,
      "ring": ring,
      "full_pass_every": full_pass_every,
      "num_steps": NUM_DECODE_STEPS,
      "reps": reps,
      "full": full,
      "rows": rows,
  }


DECODE_LABELS = {
    "windowed": "windowed",
    "windowed_reuse": "windowed + key/value reuse",
    "full_reuse": "full grid + key/value reuse",
}


def edit_latency_markdown(results: dict) -> str:
  r = results
  names = list(r["rows"][0]["decodes"])
  ranged = lambda x: (
      f"{x['median_ms']:,.0f} ({x['min_ms']:,.0f}-{x['max_ms']:,.0f})"
  )
  lines = [
      f"Edit latency, {r['size']} architecture ({r['grid']}x{r['grid']} "
      f"tokens), random weights, batch 1, {r['num_steps']} steps, "
      f"window ring {r['ring']}"
      + (
          f", reuse: a full pass every {r['full_pass_every']} steps"
          if r["full_pass_every"] > 1
          else ""
      )
      + f"; median (range) of {r['reps']} "
      "interleaved calls, ms. Full decode: " + ranged(r["full"]) + ".",
      "",
      "| edit area | edited tokens | window tokens | "
      + "".join(
          f"{DECODE_LABELS[name]} | speed-up over full | " for name in names
      )
      + "",
      "|---|---|---|" + "---|---|" * len(names),
  ]
  for row in r["rows"]:
    cells = [
        f"{row['area']:.0%}",
        str(row["edited_tokens"]),
        str(row["window_tokens"]),
    ]
    for name in names:
      cells += [ranged(row["decodes"][name]), f"{row['speedups'][name]:.2f}x"]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


# --- report -------------------------------------------------------------------
def machine_info() -> dict:
  return {
      "platform": platform.platform(),
      "cores": timing.num_cores(),
      "jax_version": jax.__version__,
      "backend": jax.default_backend(),
      "devices": [str(d) for d in jax.devices()],
      "default_prng_impl": jax.config.jax_default_prng_impl,
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "load_average": os.getloadavg(),
  }


def _load(triple) -> str:
  return "/".join(f"{x:.1f}" for x in triple)


def markdown(results: dict) -> str:
  """Markdown tables of the headline numbers."""
  mm = results["matmul"]
  lines = [
      f"Matmul {mm['size']}^2 f32: peak {mm['peak_gflop_per_s']:.1f} GFLOP/s "
      f"({mm['cores']} x {mm['per_core_gflop_per_s']:.1f} per core); best "
      f"wall-clock {mm['best_wall_gflop_per_s']:.1f} GFLOP/s. Load average "
      f"(1/5/15 min) before {_load(results['machine']['load_average'])}, "
      f"after {_load(results['load_average_after'])}.",
      "",
      "| workload | batch | ms/call | timing.throughput | GFLOP/call | MFU | "
      "threads | core eff. |",
      "|---|---|---|---|---|---|---|---|",
  ]
  tok, tr = results["tokenizer"], results["transformer"]
  rows = [
      ("tokenizer train step", tok["batch_size"], tok["train"], "images"),
      (
          "tokenizer encode+decode",
          tok["batch_size"],
          tok["inference"],
          "images",
      ),
  ]
  rows += [
      (
          f"transformer train step (rng {impl})",
          tr["batch_size"],
          record,
          "tokens",
      )
      for impl, record in tr["train_by_prng_impl"].items()
  ]
  rows.append(
      ("transformer forward", tr["batch_size"], tr["forward"], "tokens")
  )
  for name, batch, r, unit in rows:
    lines.append(
        f"| {name} | {batch} | {r['ms']:.2f} | "
        f"{r[f'{unit}_per_s']:,.0f} {unit}/s | {r['gflop']:.3f} | "
        f"{r['mfu']:.1%} | {r['threads']:.2f} | {r['core_efficiency']:.1%} |"
    )
  dec = results["decoding"]
  lines += [
      "",
      f"Decoding: {dec['num_steps']} steps, {dec['unknown_fraction']:.0%} "
      "of the tokens unknown; overhead = decode / (steps x one forward) - 1, "
      "from wall (CPU) time.",
      "",
      "| batch | decode ms | per step ms | per edit ms | images/s | "
      "forward ms | loop overhead | forward MFU | program MiB | "
      f"compiles for {NUM_MASKS} new masks |",
      "|---|---|---|---|---|---|---|---|---|---|",
  ]
  for r in dec["per_batch"]:
    lines.append(
        f"| {r['batch_size']} | {r['decode_ms']:.2f} | {r['per_step_ms']:.3f} "
        f"| {r['per_edit_ms']:.3f} | {r['images_per_s']:.1f} | "
        f"{r['forward_ms']:.3f} | {r['loop_overhead']:+.0%} "
        f"({r['loop_overhead_cpu']:+.0%}) | {r['forward_mfu']:.1%} | "
        f"{r['decode_program_mb']:.1f} | {r['compiles_for_new_masks']} |"
    )
  guided = dec["guidance"]
  lines += [
      "",
      f"Guided decoding at batch {guided['batch_size']}: "
      + ", ".join(
          f"{v} {r['decode_ms']:.1f} ms" for v, r in guided["variants"].items()
      )
      + f"; compiles across the variants: {guided['compiles']}.",
      f"Peak RSS: {results['peak_rss_mb']:.0f} MiB.",
  ]
  return "\n".join(lines)


def parse_args(argv):
  parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
      "--out",
      default="benchmark.json",
      help="Where to write the results as JSON.",
  )
  parser.add_argument(
      "--quick",
      action="store_true",
      help="Tiny `runlocal` sizes and 2 reps (smoke test).",
  )
  parser.add_argument(
      "--reps",
      type=int,
      default=None,
      help="Timed calls per measurement (default 11, quick 2).",
  )
  parser.add_argument(
      "--batch_sizes",
      default=None,
      help="Decode batch sizes, comma-separated (default 1,8,32; quick 1).",
  )
  parser.add_argument(
      "--prng_impls",
      default=None,
      help="PRNG implementations to time the transformer "
      "train step with, besides jax's default, comma-"
      "separated (default rbg,unsafe_rbg; quick none).",
  )
  parser.add_argument(
      "--edit_latency",
      default=None,
      choices=("256", "512", "runlocal"),
      help="Only time edits against their area at this "
      "released architecture (or the runlocal sizes): full "
      "vs windowed decoding.",
  )
  parser.add_argument(
      "--areas",
      default=None,
      help="Edit areas for --edit_latency, comma-separated "
      "fractions of the grid (default 0.05,0.1,0.25,0.5,1).",
  )
  parser.add_argument(
      "--window_ring",
      type=int,
      default=2,
      help="Context ring of the windowed decode.",
  )
  parser.add_argument(
      "--full_pass_every",
      type=int,
      default=1,
      help="With --edit_latency: > 1 also times windowed "
      "decoding with key/value reuse, a full pass every this "
      "many steps.",
  )
  parser.add_argument(
      "--matmul_size",
      type=int,
      default=None,
      help="Side of the peak matmul (default 2048, quick 256).",
  )
  args = parser.parse_args(argv)
  args.reps = args.reps or (2 if args.quick else 11)
  batch_sizes = args.batch_sizes or ("1" if args.quick else "1,8,32")
  args.batch_sizes = [int(b) for b in batch_sizes.split(",")]
  impls = args.prng_impls
  if impls is None:
    impls = "" if args.quick else "rbg,unsafe_rbg"
  args.prng_impls = [impl for impl in impls.split(",") if impl]
  args.matmul_size = args.matmul_size or (256 if args.quick else 2048)
  args.areas = (
      EDIT_AREAS
      if args.areas is None
      else tuple(float(a) for a in args.areas.split(","))
  )
  if args.reps < 1 or min(args.batch_sizes) < 1:
    parser.error(
        f"--reps ({args.reps}) and every batch size "
        f"({args.batch_sizes}) must be >= 1."
    )
  return args


def load_config(path: str, quick: bool):
  return config_files.load(
      os.path.join(REPO_ROOT, path) + (":runlocal" if quick else "")
  )


def main(argv=None) -> dict:
  """Runs every section, writes the JSON and prints the tables."""
  args = parse_args(argv)
  results = {"machine": machine_info(), "reps": args.reps, "quick": args.quick}
  if args.edit_latency:
    size = None if args.edit_latency == "runlocal" else int(args.edit_latency)
    results["edit_latency"] = edit_latency_benchmark(
        size, args.window_ring, args.reps, args.areas, args.full_pass_every
    )
    results["load_average_after"] = os.getloadavg()
    with open(args.out, "w") as f:
      json.dump(results, f, indent=2)
    print(edit_latency_markdown(results["edit_latency"]), flush=True)
    _log(f"wrote {args.out}")
    return results
  _log(
      f"matmul peak at {args.matmul_size}^2, load average "
      f"{_load(os.getloadavg())}"
  )
  results["matmul"] = matmul_peak(args.matmul_size, max(args.reps, 5))
  peak = timing.Peak(
      per_core=results["matmul"]["per_core_gflop_per_s"] * 1e9,
      machine=results["matmul"]["peak_gflop_per_s"] * 1e9,
  )

  tokenizer_config = load_config(TOKENIZER_CONFIG, args.quick)
  results["tokenizer"] = tokenizer_benchmark(tokenizer_config, args.reps, peak)

  transformer_config = load_config(TRANSFORMER_CONFIG, args.quick)
  task = random_token_task(tokenizer_config, transformer_config)
  results["transformer"] = transformer_benchmark(
      task, args.reps, peak, args.prng_impls
  )
  results["decoding"] = decoding_benchmark(
      transformer_config.model, task.layout, args.batch_sizes, args.reps, peak
  )

  results["peak_rss_mb"] = timing.peak_rss_mb()
  results["load_average_after"] = os.getloadavg()
  with open(args.out, "w") as f:
    json.dump(results, f, indent=2)
  print(markdown(results), flush=True)
  _log(f"wrote {args.out}")
  return results


if __name__ == "__main__":
  cli.run(main)
