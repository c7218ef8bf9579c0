"""A stroke set's edits split over JAX processes and their local devices.

Batch b of a setting is edited whole, with key fold_in(key(seed), b), by
worker b mod W, where the W = processes x local devices workers are numbered
process by process. Every edit is thus the same program on the same inputs
as in a one-device run, so the joined outputs equal that run's bit for bit.
Devices of a process work in threads (XLA runs outside the GIL); processes
exchange their outputs with an all-gather (a copy of every output on every
device: fine for image sets that fit in memory), so no shared file system
is needed, and every process ends with all outputs.
"""

import concurrent.futures
import threading
from typing import Callable

import jax
from jax.experimental import multihost_utils
import numpy as np

from maskgit_edit import batching
from maskgit_edit import images as images_lib

# Outputs of a setting: uint8 images [N, H, W, 3], int32 tokens [N, h, w],
# bool edited-token masks [N, h, w].
OUTPUT_NAMES = ("images", "decoded", "tokens", "edited")


class EditWorkers:
  """One `edit.Editor` per local device of this process."""

  def __init__(self, editor):
    """Args:
    editor: an `edit.Editor`.
    """
    devices = jax.local_devices()
    if jax.device_count() != jax.process_count() * len(devices):
      raise ValueError(
          "Every process must have as many devices to split edits over "
          f"(this one has {len(devices)} of {jax.device_count()} in "
          f"{jax.process_count()} processes)."
      )
    self.editors = (
        [editor]
        if len(devices) == 1
        else [editor.on_device(d) for d in devices]
    )
    self.num_workers = jax.process_count() * len(devices)
    self._lock = threading.Lock()

  def worker_of(self, num_batches: int) -> np.ndarray:
    """Global worker index of each batch, [num_batches]; worker w is local
    device w % D of process w // D."""
    return np.arange(num_batches) % self.num_workers

  def owned_batches(self, num_batches: int) -> list[np.ndarray]:
    """Batch indices of each local worker."""
    first = jax.process_index() * len(self.editors)
    return [
        np.flatnonzero(self.worker_of(num_batches) == first + i)
        for i in range(len(self.editors))
    ]

  def run_setting(
      self,
      stroke_set,
      labels_N: np.ndarray,
      variant: str,
      knob: float,
      *,
      seed: int,
      batch_size: int,
      tuned: bool | None = None,
      on_batch: Callable[[], None] = lambda: None,
  ) -> dict[str, np.ndarray]:
    """Edits every stroke with one (variant, knob); every process calls it.

    Args:
      stroke_set: an `stroke_sets.StrokeSet`.
      labels_N: class labels (ignored by unconditional models).
      variant, knob: the setting.
      seed: base seed shared by every setting (paired samples).
      batch_size: strokes per decode call.
      tuned: the transformer (`edit.Editor.edit`).
      on_batch: called after each batch this process edits (progress).

    Returns:
      {name: array [N, ...]} for `OUTPUT_NAMES`.
    """
    batches = batching.padded_batches(len(stroke_set), batch_size)
    key = jax.random.key(seed)

    def edit_batches(editor, owned):
      outputs = {}
      for b in owned:
        idx = batches[b]
        out = editor.edit(
            stroke_set.sources_NxHxWx3[idx],
            stroke_set.masks_NxHxW[idx],
            jax.random.fold_in(key, b),
            strokes_BxHxWx3=stroke_set.strokes_NxHxWx3[idx],
            labels_B=labels_N[idx],
            variant=variant,
            knob=knob,
            tuned=tuned,
        )
        outputs[b] = {
            name: (
                images_lib.to_uint8(out[name])
                if name in ("images", "decoded")
                else out[name]
            )
            for name in OUTPUT_NAMES
        }
        with self._lock:
          on_batch()
      return outputs

    owned = self.owned_batches(len(batches))
    with concurrent.futures.ThreadPoolExecutor(len(self.editors)) as pool:
      by_batch = {}
      for outputs in pool.map(edit_batches, self.editors, owned):
        by_batch.update(outputs)
    if jax.process_count() > 1:
      size, side = stroke_set.image_size, self.editors[0].layout.grid_side
      by_batch = self._gather(
          by_batch,
          len(batches),
          {
              "images": np.zeros((batch_size, size, size, 3), np.uint8),
              "decoded": np.zeros((batch_size, size, size, 3), np.uint8),
              "tokens": np.zeros((batch_size, side, side), np.int32),
              "edited": np.zeros((batch_size, side, side), bool),
          },
      )
    n = len(stroke_set)
    return {
        name: np.concatenate([by_batch[b][name] for b in range(len(batches))])[
            :n
        ]
        for name in OUTPUT_NAMES
    }

  def _gather(self, by_batch, num_batches: int, empty_batch):
    """Every process's batches, on every process.

    `empty_batch` stands in for the slots a process has no batch for, since
    every process sends as many.
    """
    owners = self.worker_of(num_batches) // len(self.editors)
    per_process = [
        np.flatnonzero(owners == p) for p in range(jax.process_count())
    ]
    mine = [by_batch[b] for b in per_process[jax.process_index()]]
    mine += [empty_batch] * (max(map(len, per_process)) - len(mine))
    # Collectives carry numbers; the boolean masks travel as uint8.
    stacked = {
        name: np.stack([m[name] for m in mine]).astype(
            np.uint8 if name == "edited" else mine[0][name].dtype
        )
        for name in OUTPUT_NAMES
    }
    gathered = jax.tree.map(
        np.asarray, multihost_utils.process_allgather(stacked)
    )
    gathered["edited"] = gathered["edited"].astype(bool)
    return {
        b: {name: gathered[name][p, i] for name in OUTPUT_NAMES}
        for p, batches in enumerate(per_process)
        for i, b in enumerate(batches)
    }
