"""XLA compiler options chosen by what a program does.

Large transformer programs: on CPU, XLA (jax 0.10.2) hands dense layers to
YNNPACK library fusions. From 4,096 rows per dense layer (batch x tokens) on,
it fuses differently (larger fusions around the products), and those programs
ran 9-20% slower than XLA's own kernels at every released size measured
(docs/performance.md); below it, YNNPACK's were level or faster. `SizedJit`
compiles large calls without them.

One-off programs (a trainer's initialiser): XLA:CPU's LLVM optimisation of
threefry's random-bit kernels took most of a trainer's start (the runlocal
shapes tokenizer's initialiser: 30 s to compile, against 5 s unoptimised),
for a program that runs once. `one_off_jit` compiles them unoptimised.
"""

import jax

# Rows (batch x tokens) from which XLA:CPU's YNNPACK fusions are turned off.
# XLA itself switches to its larger fusions there: a reference-size forward
# at 4,095 rows compiles to the small-shape fusions, at 4,160 to the large.
LIBRARY_FUSION_MAX_ROWS = 4096
LARGE_CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}
# Unoptimised code draws the same numbers up to their last bits (1e-7
# relative: the normal's inverse CDF rounds differently), so a run trained
# from the same seed before this option starts from a slightly other point.
ONE_OFF_CPU_OPTIONS = {"xla_backend_optimization_level": 0}


def is_large(rows: int, backend: str) -> bool:
  """Whether a program whose dense layers see `rows` rows on `backend`
  compiles with `LARGE_CPU_OPTIONS`."""
  return backend == "cpu" and rows >= LIBRARY_FUSION_MAX_ROWS


class SizedJit:
  """`jax.jit(fn, **jit_kwargs)`, with `LARGE_CPU_OPTIONS` for calls whose
  `rows(*args, **kwargs)` `is_large`.

  One jit per choice, so small and large calls each keep their own compile
  cache; `lower` picks the same way (for cost and memory analyses).
  """

  def __init__(self, fn, rows, **jit_kwargs):
    self._rows = rows
    self._jits = {
        large: jax.jit(
            fn,
            compiler_options=LARGE_CPU_OPTIONS if large else None,
            **jit_kwargs,
        )
        for large in (False, True)
    }

  def _pick(self, args, kwargs):
    rows = self._rows(*args, **kwargs)
    return self._jits[is_large(rows, jax.default_backend())]

  def __call__(self, *args, **kwargs):
    return self._pick(args, kwargs)(*args, **kwargs)

  def lower(self, *args, **kwargs):
    return self._pick(args, kwargs).lower(*args, **kwargs)


def one_off_jit(fn, **jit_kwargs):
  """`jax.jit(fn, **jit_kwargs)` for a program that runs once (an
  initialiser): compiled with `ONE_OFF_CPU_OPTIONS` on CPU."""
  cpu = jax.default_backend() == "cpu"
  return jax.jit(
      fn, compiler_options=ONE_OFF_CPU_OPTIONS if cpu else None, **jit_kwargs
  )
