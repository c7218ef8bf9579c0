"""Mask schedules: the share of tokens still masked after a fraction of decoding.

A schedule maps `ratio` in [0, 1] (steps done / total steps) to the mask ratio
gamma(ratio) in (0, 1], decreasing from 1 at ratio 0 towards 0 at ratio 1. The
same functions drive MVTM training (a uniform ratio gives the per-example mask
ratio) and parallel decoding (tokens kept masked after each step).

Names: "cosine", "linear", "square", "pow<k>" (e.g. "pow3", "pow0.5"), "log",
"exp". "log" and "exp" depend on the number of unknown tokens, as in the
released MaskGIT code.
"""

import math

import jax.numpy as jnp

NAMES = ("cosine", "linear", "square", "pow<k>", "log", "exp")


def _power(name: str) -> float | None:
  """Exponent of a power-law schedule name, or None if it is not one."""
  if name == "linear":
    return 1.0
  if name == "square":
    return 2.0
  if name.startswith("pow"):
    try:
      exponent = float(name[3:])
    except ValueError:
      return None
    return exponent if exponent > 0 else None
  return None


def validate(name: str) -> str:
  """Returns `name` if it is a known schedule, else raises ValueError."""
  if name in ("cosine", "log", "exp") or _power(name) is not None:
    return name
  raise ValueError(
      f"Unknown mask schedule {name!r}; expected one of {', '.join(NAMES)} "
      "(pow<k> with k > 0, e.g. pow3)."
  )


def mask_ratio(ratio, name: str, num_unknown=None):
  """Share of tokens kept masked after `ratio` of the decoding.

  Args:
    ratio: float or array in [0, 1].
    name: schedule name (see module docstring).
    num_unknown: number of tokens to decode (array broadcastable with ratio);
      needed by "log" and "exp".

  Returns:
    gamma(ratio), clipped to [1e-6, 1], with the broadcast shape of the inputs.
  """
  validate(name)
  ratio = jnp.asarray(ratio, jnp.float32)
  if name == "cosine":
    gamma = jnp.cos(math.pi / 2.0 * ratio)
  elif name in ("log", "exp"):
    if num_unknown is None:
      raise ValueError(f"Schedule {name!r} needs num_unknown.")
    log_n = jnp.log2(jnp.maximum(jnp.asarray(num_unknown, jnp.float32), 2.0))
    if name == "log":
      gamma = -jnp.log2(jnp.maximum(ratio, 1e-6)) / log_n
    else:
      gamma = 1.0 - jnp.exp2(-log_n * (1.0 - ratio))
  else:
    gamma = 1.0 - ratio ** _power(name)
  return jnp.clip(gamma, 1e-6, 1.0)
