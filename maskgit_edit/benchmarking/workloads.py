"""The project's workloads timed on this machine, with MFU (`timing`).

Randomly initialised models of the default configs:
  1. the machine's f32 matmul peak, the denominator of every MFU;
  2. tokenizer (configs/tokenizer_<data>.py): images/s of the real jitted
     `TokenizerTask.train_step` and of encode+decode inference;
  3. transformer (configs/maskgit_<data>.py): tokens/s of the real jitted
     `MaskGitTask.train_step` (MVTM: forward + backward + AdamW), also with
     its rng from other PRNG implementations, and of a forward pass;
  4. decoding with `sampling.Sampler` (`decode_speed`; 12 steps, 30% of the
     tokens unknown):
     latency, images/s and the loop overhead against one jitted forward per
     step at each batch size, compilations when the mask or the guidance
     variant changes, and memory.
FLOPs come from XLA's cost analysis of the compiled programs.
"""

import os
import platform
import statistics

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_edit import config_files
from maskgit_edit import files
from maskgit_edit import data as data_lib
from maskgit_edit import models
from maskgit_edit.benchmarking import decode_speed
from maskgit_edit.benchmarking import machine
from maskgit_edit.benchmarking import timing
from maskgit_edit.trainers import maskgit as maskgit_trainer
from maskgit_edit.trainers import tokenizer as tokenizer_trainer


def load_config(trainer: str, configs: str):
  """The config of `trainer` ("tokenizer", "maskgit") for `configs`, a data
  set and an optional config argument: "shapes", "fashion_mnist:reference",
  "shapes:runlocal" -> configs/<trainer>_<data>.py[:arg]."""
  data, _, arg = configs.partition(":")
  path = os.path.join(files.CHECKOUT, "configs", f"{trainer}_{data}.py")
  if not os.path.exists(path):
    raise ValueError(f"No config {path} for --configs {configs!r}.")
  return config_files.load(path + (f":{arg}" if arg else ""))


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
      "cores": machine.num_cores(),
      "per_core_gflop_per_s": per_core / 1e9,
      "peak_gflop_per_s": per_core * machine.num_cores() / 1e9,
      "best_wall_gflop_per_s": flops / min(t.wall_s for t in timings) / 1e9,
      "median_wall_gflop_per_s": flops
      / statistics.median(t.wall_s for t in timings)
      / 1e9,
  }


def tokenizer_benchmark(config, reps: int, peak: timing.Peak) -> dict:
  """Train step and encode+decode throughput of the tokenizer."""
  task = tokenizer_trainer.TokenizerTask(config)
  batch, size = config.batch_size, config.data.image_size
  images_BxSxSx3 = jax.random.uniform(jax.random.key(1), (batch, size, size, 3))
  state = jax.jit(task.init_state)(timing.init_key())
  # Inference first: the train step donates (consumes) the state's params.
  params = state["params"]
  reconstruct = jax.jit(task.reconstruct)
  infer_flops = timing.compiled_flops(reconstruct, params, images_BxSxSx3)
  timing.log(f"tokenizer encode+decode: batch {batch}, {size} px")
  infer = timing.time_calls(lambda: reconstruct(params, images_BxSxSx3), reps)

  step = jax.jit(task.train_step, donate_argnums=0)
  batch_dict, rng = {"images": images_BxSxSx3}, jax.random.key(2)
  train_flops = timing.compiled_flops(step, state, batch_dict, rng)
  timing.log(f"tokenizer train step: batch {batch}, {size} px")
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
    state, rng = init(timing.init_key()), jax.random.key(1, impl=impl)
    flops.append(timing.compiled_flops(step, state, example, rng))
    steps.append(timing.threaded(step, state, example, rng))
  timing.log(f"transformer train step: batch {batch}, rng {', '.join(impls)}")
  train = {
      impl: timing.throughput(t, tokens, impl_flops, peak, "tokens")
      for impl, t, impl_flops in zip(
          impls, timing.time_interleaved(steps, reps), flops
      )
  }

  params = init(timing.init_key())["params"]
  mask_BxN = maskgit_trainer.random_mask(
      jax.random.key(3),
      batch,
      layout.grid_side**2,
      jnp.full((batch,), decode_speed.UNKNOWN_FRACTION),
  )
  inputs_BxL = layout.inputs(example["tokens"], example["labels"], mask_BxN)
  forward = jax.jit(task.logits)
  forward_flops = timing.compiled_flops(forward, params, inputs_BxL)
  timing.log(f"transformer forward: batch {batch}")
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


def machine_info() -> dict:
  return {
      "platform": platform.platform(),
      "cores": machine.num_cores(),
      "cpu": machine.cpu_name(),
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
      f"Machine: {mm['cores']} cores of {results['machine']['cpu']}. "
      f"Matmul {mm['size']}^2 f32: peak {mm['peak_gflop_per_s']:.1f} GFLOP/s "
      f"({mm['cores']} x {mm['per_core_gflop_per_s']:.1f} per core); best "
      f"wall-clock {mm['best_wall_gflop_per_s']:.1f} GFLOP/s. Load average "
      f"(1/5/15 min) before {_load(results['machine']['load_average'])}, "
      f"after {_load(results['load_average_after'])}.",
      "",
      "| workload | batch | ms/call | throughput | GFLOP/call | MFU | "
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
      f"compiles for {decode_speed.NUM_MASKS} new masks |",
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


def run(
    *,
    reps: int,
    configs: str,
    batch_sizes,
    prng_impls,
    matmul_size: int,
) -> dict:
  """Times every workload (see the module doc); returns the records."""
  # Loaded first, so that a config that does not load fails before any work.
  tokenizer_config = load_config("tokenizer", configs)
  transformer_config = load_config("maskgit", configs)
  results = {"machine": machine_info(), "reps": reps, "configs": configs}
  timing.log(
      f"matmul peak at {matmul_size}^2, load average {_load(os.getloadavg())}"
  )
  results["matmul"] = matmul_peak(matmul_size, max(reps, 5))
  peak = timing.Peak(
      per_core=results["matmul"]["per_core_gflop_per_s"] * 1e9,
      machine=results["matmul"]["peak_gflop_per_s"] * 1e9,
  )
  results["tokenizer"] = tokenizer_benchmark(tokenizer_config, reps, peak)
  task = random_token_task(tokenizer_config, transformer_config)
  results["transformer"] = transformer_benchmark(task, reps, peak, prng_impls)
  results["decoding"] = decode_speed.decoding_benchmark(
      transformer_config.model, task.layout, batch_sizes, reps, peak
  )
  results["peak_rss_mb"] = timing.peak_rss_mb()
  return results
