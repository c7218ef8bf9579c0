"""Fixed-shape batches over N inputs for jitted inference (tokenizing,
judging, editing): every batch has the same shape, so one program compiles.
"""

import numpy as np


def padded_batches(num: int, batch_size: int) -> list[np.ndarray]:
  """Consecutive batches of range(num), the last padded with its last index.

  Padding keeps every batch the same shape (one compiled program); callers
  drop the padded rows (`map_in_batches` does).
  """
  if num < 1 or batch_size < 1:
    raise ValueError(
        f"Need num >= 1 and batch_size >= 1, got {num} and {batch_size}."
    )
  return [
      np.minimum(np.arange(start, start + batch_size), num - 1)
      for start in range(0, num, batch_size)
  ]


def map_in_batches(fn, inputs_N, batch_size: int) -> np.ndarray:
  """fn over `inputs_N` in `padded_batches`, the outputs' valid rows joined."""
  num = len(inputs_N)
  return np.concatenate(
      [
          np.asarray(fn(inputs_N[indices]))[: num - start]
          for start, indices in zip(
              range(0, num, batch_size), padded_batches(num, batch_size)
          )
      ]
  )
