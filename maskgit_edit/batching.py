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


def map_in_batches(fn, inputs_N, batch_size: int, *, indexed: bool = False):
  """fn over `inputs_N` in `padded_batches`, the outputs' valid rows joined.

  Args:
    fn: batch -> outputs with a leading batch axis.
    inputs_N: an array, or a tuple of arrays passed as separate arguments,
      with N rows.
    batch_size: rows per call.
    indexed: pass the batch number first (e.g. to fold it into a key).

  Returns:
    The outputs of the N real rows, joined along axis 0.
  """
  arrays = inputs_N if isinstance(inputs_N, tuple) else (inputs_N,)
  num = len(arrays[0])
  outputs = []
  for b, indices in enumerate(padded_batches(num, batch_size)):
    args = (b,) * indexed + tuple(a[indices] for a in arrays)
    outputs.append(np.asarray(fn(*args))[: num - b * batch_size])
  return np.concatenate(outputs)
