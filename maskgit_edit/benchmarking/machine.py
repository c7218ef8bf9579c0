"""The machine a benchmark ran on, named beside its timings: timings of
different CPUs are not comparable. Free of JAX, so that the PyTorch peer's
worker can import it too."""

import os
import platform

# The CPU flags named with timings: float32 and bfloat16 matmul speed
# depend on them.
CPU_EXTENSIONS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_name() -> str:
  """The CPU's model name and its vector extensions that decide matmul
  speed (timings of different machines are not comparable)."""
  model, extensions = platform.processor() or platform.machine(), set()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
          model = value.strip()
        elif key.strip() == "flags":
          extensions = set(value.split())
          break
  except OSError:
    pass
  shown = [e for e in CPU_EXTENSIONS if e in extensions]
  return (
      f"{model} ({', '.join(shown) or 'none of ' + ', '.join(CPU_EXTENSIONS)})"
  )


def num_cores() -> int:
  if hasattr(os, "sched_getaffinity"):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1
