"""Metric logging: JSON lines in the workdir always, wandb when asked."""

import json
import os
import time

import jax
import numpy as np

from maskgit_edit import artefacts
from maskgit_edit import files


def _jsonable(value):
  if isinstance(value, (np.ndarray, jax.Array)):
    value = np.asarray(value)
    return value.item() if value.ndim == 0 else value.tolist()
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  return value


class MetricWriter:
  """Appends `{"step": s, ...}` records to `<workdir>/metrics.jsonl`.

  Only process 0 writes. wandb is used when `wandb_config.mode` is "offline"
  or "online" (default "disabled"); it is imported lazily so that runs without
  it never touch it.
  """

  def __init__(self, workdir: str, config, wandb_config=None):
    self._active = artefacts.is_writer()
    self._path = os.path.join(workdir, "metrics.jsonl")
    self._wandb = None
    if not self._active:
      return
    os.makedirs(workdir, exist_ok=True)
    text = config.to_json_best_effort(indent=2)
    config_path = os.path.join(workdir, "config.json")
    started = os.path.join(workdir, artefacts.STARTED)
    if not os.path.exists(started):
      with files.atomic_path(started) as tmp, open(tmp, "w") as f:
        f.write(f"{time.time()}\n")
    if not os.path.exists(config_path) or open(config_path).read() != text:
      with open(config_path, "w") as f:
        f.write(text)
    mode = (wandb_config or {}).get("mode", "disabled")
    if mode not in ("disabled", "offline", "online"):
      raise ValueError(
          f"wandb.mode must be disabled/offline/online, got {mode!r}."
      )
    if mode != "disabled":
      import wandb  # pylint: disable=g-import-not-at-top

      self._wandb = wandb.init(
          project=wandb_config.get("project", "maskgit-edit"),
          mode=mode,
          dir=workdir,
          config=config.to_dict(),
          resume="allow",
          name=os.path.basename(os.path.abspath(workdir)),
      )

  def write(self, step: int, metrics: dict):
    if not self._active:
      return
    record = {"step": int(step), "time": time.time()}
    record.update({k: _jsonable(v) for k, v in metrics.items()})
    with open(self._path, "a") as f:
      f.write(json.dumps(record) + "\n")
    if self._wandb is not None:
      self._wandb.log(
          {k: v for k, v in record.items() if k != "step"}, step=int(step)
      )

  def close(self):
    if self._wandb is not None:
      self._wandb.finish()
