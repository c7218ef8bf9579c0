"""Timing primitives of the benchmarks: wall and CPU seconds, FLOPs, MFU.

Every timing is of calls blocked on their outputs, after a warm-up call.
The machine is often shared, so the peak is taken from CPU time: the best
matmul FLOPs per CPU-second of this process is one core's peak, times the
cores is the machine's. It does not shrink when other processes take cores,
unlike the best wall-clock rate. Each workload reports
  mfu              FLOPs / wall second / machine peak (what a user sees now),
  threads          CPU seconds / wall second (cores it kept busy),
  core_efficiency  FLOPs / CPU second / one core's peak (load-independent).
"""

import dataclasses
import resource
import statistics
import sys
import time
from typing import Any, Callable

import jax

# Parameters are random either way; with the default threefry keys XLA:CPU
# spends tens of seconds compiling the initialisers of the tokenizer alone.
INIT_PRNG_IMPL = "unsafe_rbg"
# jax.monitoring event recorded once per XLA backend compilation.
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@dataclasses.dataclass(frozen=True)
class Timing:
  """Seconds of one call: wall clock and CPU time of this process."""

  wall_s: float
  cpu_s: float


@dataclasses.dataclass(frozen=True)
class Peak:
  """Matmul FLOP/s of one core and of the whole machine."""

  per_core: float
  machine: float


def measure(fns: list[Callable[[], Any]], reps: int) -> list[list[Timing]]:
  """Timings of `reps` rounds of calls, one call of each of `fns` per round.

  Every fn is called once to warm up. Each call is blocked on its outputs, so
  asynchronous dispatch cannot hide work in the next call. Interleaving the
  fns exposes them to the same load from other processes, so their ratios
  stay meaningful on a shared machine.

  Returns:
    timings[i][r]: the call of fns[i] in round r.
  """
  if reps < 1:
    raise ValueError(f"reps must be >= 1, got {reps}.")
  for fn in fns:
    jax.block_until_ready(fn())
  timings = [[] for _ in fns]
  for _ in range(reps):
    for fn, fn_timings in zip(fns, timings):
      wall, cpu = time.perf_counter(), time.process_time()
      jax.block_until_ready(fn())
      fn_timings.append(
          Timing(time.perf_counter() - wall, time.process_time() - cpu)
      )
  return timings


def _median(timings: list[Timing]) -> Timing:
  return Timing(
      statistics.median(t.wall_s for t in timings),
      statistics.median(t.cpu_s for t in timings),
  )


def time_calls(fn: Callable[[], Any], reps: int) -> Timing:
  """Median wall and CPU seconds of `fn()` (see `measure`)."""
  return _median(measure([fn], reps)[0])


def time_interleaved(fns: list[Callable[[], Any]], reps: int) -> list[Timing]:
  """Median timings of each of `fns`, called in interleaved rounds."""
  return [_median(timings) for timings in measure(fns, reps)]


def compiled_flops(jitted, *args, **kwargs) -> float:
  """FLOPs of one call of `jitted(*args)` from XLA's compiled cost analysis."""
  cost = jitted.lower(*args, **kwargs).compile().cost_analysis()
  if isinstance(cost, (list, tuple)):  # One entry per device in older jax.
    cost = cost[0]
  return float(cost["flops"])


def compiled_bytes(jitted, *args, **kwargs) -> int:
  """Arguments + outputs + temporaries of the compiled program, in bytes."""
  stats = jitted.lower(*args, **kwargs).compile().memory_analysis()
  return int(
      stats.argument_size_in_bytes
      + stats.output_size_in_bytes
      + stats.temp_size_in_bytes
  )


class CompileCounter:
  """Counts XLA backend compilations inside a `with` block."""

  def __init__(self):
    self.count = 0

  def _listener(self, event: str, duration_secs: float, **kwargs) -> None:
    del duration_secs, kwargs
    if event == _COMPILE_EVENT:
      self.count += 1

  def __enter__(self) -> "CompileCounter":
    jax.monitoring.register_event_duration_secs_listener(self._listener)
    return self

  def __exit__(self, *exc_info) -> None:
    jax.monitoring.unregister_event_duration_listener(self._listener)


def threaded(step_fn, state, *args) -> Callable[[], Any]:
  """fn() running `state, aux = step_fn(state, *args)` on a carried state.

  Lets a donating train step be timed like any other call.
  """
  carried = [state]

  def run():
    carried[0], aux = step_fn(carried[0], *args)
    return carried[0], aux

  return run


def throughput(
    timing: Timing, items: int, flops: float, peak: Peak, unit: str
) -> dict:
  """Record of one workload: ms, items/s, GFLOP, MFU (see module doc)."""
  return {
      "ms": 1e3 * timing.wall_s,
      "cpu_ms": 1e3 * timing.cpu_s,
      f"{unit}_per_s": items / timing.wall_s,
      "gflop": flops / 1e9,
      "gflop_per_s": flops / timing.wall_s / 1e9,
      "mfu": flops / timing.wall_s / peak.machine,
      "threads": timing.cpu_s / timing.wall_s,
      "core_efficiency": flops / timing.cpu_s / peak.per_core,
  }


def peak_rss_mb() -> float:
  """Peak resident memory of this process so far (ru_maxrss is KiB on Linux)."""
  scale = 2**20 if sys.platform == "darwin" else 2**10
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def log(message: str) -> None:
  print(f"[benchmark {time.strftime('%H:%M:%S')}] {message}", flush=True)


def init_key() -> jax.Array:
  return jax.random.key(0, impl=INIT_PRNG_IMPL)
