"""Edit latency against edit area: windowed decoding (and key/value reuse)
against the full decode, in one process (both are this project's). The
PyTorch peer is timed in its own processes: `peer`."""

import dataclasses
import math
import statistics

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_edit import models
from maskgit_edit import released
from maskgit_edit.benchmarking import machine
from maskgit_edit.benchmarking import timing
from maskgit_edit.benchmarking import workloads
from maskgit_edit.decoding import sampling
from maskgit_edit.decoding import windows

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
    settings: sampling.DecodeSettings = sampling.EDIT_DECODE,
    matmul_dtype: str = "float32",
) -> dict:
  """Batch-1 edit decode time against edit area: windowed decoding (context
  ring `ring`) against the full decode, interleaved. (The PyTorch peer is
  timed in its own process: `benchmarking.peer`.)

  size: 256 or 512 for the released ImageNet architecture with random
  weights; None for the shapes `runlocal` sizes (smoke test).
  settings: the decode (steps start_iter..num_steps, as an edit runs them);
    `full_pass_every` > 1 also times it with key/value reuse.
  matmul_dtype: of the dense layers' products (`models.transformer.kernels_in`).
  """
  if size is None:
    config = workloads.load_config("maskgit", "shapes:runlocal").model
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
      timing.init_key(), jnp.zeros((1, layout.seq_len), jnp.int32)
  )["params"]
  model = model.clone(matmul_dtype=matmul_dtype)
  params = models.transformer.kernels_in(params, matmul_dtype)
  full_pass_every = settings.full_pass_every
  samplers = [
      sampling.Sampler(
          model,
          layout,
          dataclasses.replace(settings, full_pass_every=every),
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
    timing.log(
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
      "num_steps": settings.num_steps,
      "start_iter": settings.start_iter,
      "matmul_dtype": matmul_dtype,
      "machine": f"{machine.num_cores()} cores of {machine.cpu_name()}",
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
      f"tokens), random weights, {r['matmul_dtype']} products, batch 1, "
      f"{r['num_steps'] - r['start_iter']} steps (from step {r['start_iter']}"
      f" of {r['num_steps']}), "
      f"window ring {r['ring']}"
      + (
          f", reuse: a full pass every {r['full_pass_every']} steps"
          if r["full_pass_every"] > 1
          else ""
      )
      + f"; median (range) of {r['reps']} "
      "interleaved calls, ms, on "
      + r["machine"]
      + ". Full decode: "
      + ranged(r["full"])
      + ".",
      "",
      "| edit area | edited tokens | window tokens | "
      + " | ".join(
          f"{DECODE_LABELS[name]} | speed-up over full" for name in names
      )
      + " |",
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
