"""Decoding speed: latency, images/s and the decode loop's overhead over one
forward per step, per batch size; compilations on new masks and guidance."""

import jax
import jax.numpy as jnp

from maskgit_edit import compiling
from maskgit_edit import models
from maskgit_edit.benchmarking import timing
from maskgit_edit.decoding import guidance as guidance_lib
from maskgit_edit.decoding import sampling
from maskgit_edit.trainers import maskgit as maskgit_trainer

UNKNOWN_FRACTION = 0.3
NUM_DECODE_STEPS = 12
NUM_MASKS = 3
GUIDANCE_VARIANTS = (("context", 0.5), ("self_fixed", 2.0), ("iterative", 1.0))


def decode_inputs(layout, batch: int, seed: int):
  """Random token grids, masks with 30% unknown per row, and labels."""
  tokens_rng, mask_rng = jax.random.split(jax.random.key(seed))
  side = layout.grid_side
  tokens_Bxhxw = jax.random.randint(
      tokens_rng, (batch, side, side), 0, layout.codebook_size
  )
  unknown_BxN = maskgit_trainer.random_mask(
      mask_rng,
      batch,
      side * side,
      jnp.full((batch,), UNKNOWN_FRACTION),
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

  forward = compiling.SizedJit(
      forward_impl, lambda params, input_ids_BxL, *args: input_ids_BxL.size
  )
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
  timing.log(f"decode with {', '.join(guidances)} guidance: batch {batch}")
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
          "decode_ms": 1e3 * t.wall_s,
          "decode_cpu_ms": 1e3 * t.cpu_s,
          "images_per_s": batch / t.wall_s,
      }
      for variant, t in zip(guidances, timings)
  }
  # The first guided call compiles once; the other variants reuse it.
  return {"batch_size": batch, "variants": results, "compiles": counter.count}


def decoding_benchmark(
    model_config, layout, batch_sizes, reps: int, peak: timing.Peak
) -> dict:
  model = models.build_transformer(model_config, layout)
  params = jax.jit(model.init)(
      timing.init_key(), jnp.zeros((1, layout.seq_len), jnp.int32)
  )["params"]
  sampler = sampling.Sampler(
      model,
      layout,
      sampling.DecodeSettings(num_steps=NUM_DECODE_STEPS),
  )
  per_batch = []
  for batch in batch_sizes:
    timing.log(f"decode: batch {batch}")
    per_batch.append(decode_batch(sampler, params, batch, reps, peak))
  guided_batch = batch_sizes[min(1, len(batch_sizes) - 1)]
  return {
      "num_steps": NUM_DECODE_STEPS,
      "unknown_fraction": UNKNOWN_FRACTION,
      "per_batch": per_batch,
      "guidance": guidance_benchmark(sampler, params, guided_batch, reps),
  }
