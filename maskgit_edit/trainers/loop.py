"""The one training loop every trainer runs through.

A trainer is a `Task`: it builds the initial state, a pure train step, and
the global batch of any step. The loop owns everything else: the device mesh
and shardings (batch split over the `data` axis, state replicated), the
per-step rng (`fold_in(root, step)`), orbax checkpoints with automatic resume,
NaN/Inf detection, metrics and progress output.

Because the batch and the rng of a step are pure functions of the step
number, a run resumed from a checkpoint continues exactly the stream of the
uninterrupted run.
"""

import json
import math
import os
from typing import Any, Protocol

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from maskgit_edit import artefacts
from maskgit_edit import compiling
from maskgit_edit import files
from maskgit_edit import metric_writer
from maskgit_edit import progress as progress_lib

PyTree = Any


class Task(Protocol):
  """What a trainer provides to `train`."""

  def initial_params(self) -> PyTree | None:
    """Parameters to start from (fine-tuning), or None for a fresh init."""

  def init_state(self, rng: jax.Array, params: PyTree | None) -> PyTree:
    """Initial train state (a pytree of arrays; no python scalars)."""

  def train_step(
      self, state: PyTree, batch: dict, rng: jax.Array
  ) -> tuple[PyTree, dict]:
    """Pure step: new state and scalar metrics (must include "loss")."""

  def batch(self, step: int) -> dict:
    """This process's slice of the global batch of `step` (numpy arrays)."""

  def evaluate(self, state: PyTree) -> dict:
    """Host-side evaluation metrics (may be empty)."""

  def finish(self, state: PyTree, workdir: str) -> dict:
    """Writes the run's artefacts (exports, caches, grids); returns metrics."""


class NonFiniteLossError(FloatingPointError):
  pass


def make_optimizer(optim, total_steps: int) -> optax.GradientTransformation:
  """AdamW with linear warmup + cosine decay and global-norm clipping."""
  lr = optax.warmup_cosine_decay_schedule(
      init_value=0.0,
      peak_value=optim.lr,
      warmup_steps=min(optim.warmup_steps, max(total_steps - 1, 0)),
      decay_steps=max(total_steps, 1),
      end_value=optim.lr * optim.end_lr_factor,
  )
  return optax.chain(
      optax.clip_by_global_norm(optim.grad_clip),
      optax.adamw(
          lr, b1=optim.b1, b2=optim.b2, weight_decay=optim.weight_decay
      ),
  )


def ema_update(ema_params, params, decay: float):
  """EMA of parameters; decay 0 keeps a plain copy."""
  return optax.incremental_update(params, ema_params, step_size=1.0 - decay)


def make_mesh():
  """1-D device mesh over every device of every process.

  Auto axes: XLA propagates shardings through the models, so model code never
  has to name output shardings (Explicit mode would require it for gathers).
  """
  return jax.make_mesh(
      (jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,)
  )


def maybe_initialize_distributed(config):
  """Joins the multi-process runtime when `config.distributed` is set.

  Coordinator address, number of processes and process id come from the
  config where given, else from JAX (JAX_COORDINATOR_ADDRESS, or cluster
  auto-detection). CPU processes exchange collectives over gloo. A process
  that finishes waits up to `shutdown_timeout_s` for the others at JAX's
  shutdown barrier (past it, every process aborts). Must run before
  anything else touches a JAX device.
  """
  if not config.get("distributed", False) or jax.distributed.is_initialized():
    return
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
      coordinator_address=config.get("coordinator_address"),
      num_processes=config.get("num_processes"),
      process_id=config.get("process_id"),
      heartbeat_timeout_seconds=config.get("heartbeat_timeout_s", 100),
      shutdown_timeout_seconds=config.get("shutdown_timeout_s", 300),
  )


def state_shardings(
    abstract_state: PyTree, mesh, shard_params: bool, min_size: int = 2**18
):
  """Replicated state, or (FSDP-style) each large leaf split on `data`.

  With `shard_params`, a leaf of at least `min_size` elements is split along
  its largest axis divisible by the device count; XLA gathers it where used.
  This is what lets a 172M-parameter transformer and its Adam moments fit
  devices that cannot hold a full replica next to a large batch.
  """
  num = mesh.shape["data"]

  def spec(x):
    if not shard_params or num == 1 or x.size < min_size:
      return jax.NamedSharding(mesh, jax.P())
    axes = [a for a in np.argsort(x.shape)[::-1] if x.shape[a] % num == 0]
    if not axes:
      return jax.NamedSharding(mesh, jax.P())
    names = [None] * x.ndim
    names[axes[0]] = "data"
    return jax.NamedSharding(mesh, jax.P(*names))

  return jax.tree.map(spec, abstract_state)


def _mean_metrics(history: list[dict]) -> dict:
  fetched = jax.device_get(history)
  return {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}


@jax.jit
def _all_finite(tree) -> jax.Array:
  leaves = [
      jnp.all(jnp.isfinite(x))
      for x in jax.tree.leaves(tree)
      if jnp.issubdtype(x.dtype, jnp.inexact)
  ]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def single_copy(state: PyTree) -> PyTree:
  """A replicated state as one copy on one local device, else unchanged.

  Host-side evaluation with replicated parameters would otherwise compute
  the same result once per device: on simulated host devices, that
  multiplies its time by their number.
  """
  if all(x.sharding.is_fully_replicated for x in jax.tree.leaves(state)):
    return jax.tree.map(lambda x: x.addressable_data(0), state)
  return state


def checkpoint_manager(workdir: str, config) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, "checkpoints")),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=config.keep_checkpoints, create=True
      ),
  )


def check_workdir(workdir: str, config) -> None:
  """Refuses a workdir whose saved work this run would overwrite: another
  trainer's run, or finished weights without checkpoints (an exported run,
  e.g. pretrained/), which a new run would replace from step 0."""
  config_path = os.path.join(workdir, "config.json")
  if not os.path.exists(config_path):
    return
  with open(config_path) as f:
    trainer = json.load(f).get("trainer")
  if trainer != config.trainer:
    raise ValueError(
        f"{workdir!r} holds a {trainer!r} run and this config trains a "
        f"{config.trainer!r} one: give another --workdir."
    )
  if os.path.exists(os.path.join(workdir, FINAL_METRICS)) and not (
      os.path.isdir(os.path.join(workdir, "checkpoints"))
  ):
    raise ValueError(
        f"{workdir!r} holds finished weights without checkpoints (an exported"
        " run): training there would replace them; give another --workdir."
    )


def restore_latest(manager: ocp.CheckpointManager, abstract_state: PyTree):
  """(state, step) of the latest checkpoint, or (None, 0)."""
  step = manager.latest_step()
  if step is None:
    return None, 0
  try:
    state = manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(
        f"Checkpoint at step {step} in {manager.directory} does not fit this "
        f"config (change the workdir or the config): {e}"
    ) from e
  return state, step


FINAL_METRICS = "final_metrics.json"


def write_final_metrics(workdir: str, metrics: dict):
  """Marks the run finished (artefacts written) with its final metrics."""
  if not artefacts.is_writer():
    return
  path = os.path.join(workdir, FINAL_METRICS)
  with files.atomic_path(path) as tmp, open(tmp, "w") as f:
    json.dump(metrics, f, indent=2)


def train(
    config, workdir: str, task: Task, *, stop_after: int | None = None
) -> tuple[PyTree, dict]:
  """Runs (or resumes) `task` for `config.total_steps` steps.

  Args:
    config: ConfigDict with seed, total_steps, log_every, checkpoint_every,
      keep_checkpoints, optional eval_every and wandb.
    workdir: run folder: checkpoints/, metrics.jsonl, config.json, artefacts.
    task: the trainer.
    stop_after: stop (with a checkpoint) after this many steps in total,
      as a preemption would; a later call resumes.

  Returns:
    (final state, final metrics dict).
  """
  check_workdir(workdir, config)
  mesh = make_mesh()
  replicated = jax.NamedSharding(mesh, jax.P())
  batch_sharded = jax.NamedSharding(mesh, jax.P("data"))
  root = jax.random.key(config.seed)
  total = config.total_steps
  last = total if stop_after is None else min(stop_after, total)

  # Loaded parameters enter as jit arguments (never as baked-in constants).
  initial = task.initial_params()
  abstract = jax.eval_shape(task.init_state, root, initial)
  state_sharding = state_shardings(
      abstract,
      mesh,
      config.get("shard_params", False),
      config.get("shard_min_size", 2**18),
  )
  abstract = jax.tree.map(
      lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
      abstract,
      state_sharding,
  )
  manager = checkpoint_manager(workdir, config)
  state, start = restore_latest(manager, abstract)
  if state is None:
    init = compiling.one_off_jit(task.init_state, out_shardings=state_sharding)
    state = init(root, initial)
  else:
    logging.info("Resumed from step %d in %s", start, workdir)
    print(f"Resuming from checkpoint at step {start}", flush=True)
  writer = metric_writer.MetricWriter(workdir, config, config.get("wandb"))

  step_fn = jax.jit(
      task.train_step,
      in_shardings=(state_sharding, batch_sharded, replicated),
      out_shardings=(state_sharding, replicated),
      donate_argnums=0,
  )

  def global_batch(step):
    return {
        k: jax.make_array_from_process_local_data(batch_sharded, v)
        for k, v in task.batch(step).items()
    }

  progress = progress_lib.Progress(total, done=start, unit="steps")
  pending: list[dict] = []
  metrics: dict = {}
  eval_every = config.get("eval_every", 0)
  for step in range(start, last):
    rng = jax.random.fold_in(root, step)
    state, step_metrics = step_fn(state, global_batch(step), rng)
    pending.append(step_metrics)
    done = step + 1
    must_save = done % config.checkpoint_every == 0 or done == last
    if done % config.log_every == 0 or must_save:
      metrics = _mean_metrics(pending)
      pending = []
      # A finite loss does not prove the updated state is finite: check both
      # so that no checkpoint ever holds NaN/Inf.
      finite = all(math.isfinite(v) for v in metrics.values())
      if not finite or (must_save and not bool(_all_finite(state))):
        manager.wait_until_finished()
        raise NonFiniteLossError(
            f"Non-finite loss or parameters by step {done} ({metrics}). "
            f"Stopped; the last good checkpoint (step {manager.latest_step()})"
            f" in {workdir} is kept."
        )
      if eval_every and (done % eval_every == 0 or done == total):
        metrics.update(task.evaluate(single_copy(state)))
      writer.write(done, metrics)
      progress.done = done
      if artefacts.is_writer():
        progress.report(
            " ".join(
                f"{k}={v:.4g}"
                for k, v in metrics.items()
                if isinstance(v, float)
            )
        )
    if must_save:
      manager.save(done, args=ocp.args.StandardSave(state))
  manager.wait_until_finished()
  if last == total:
    final = task.finish(single_copy(state), workdir)
    if final:
      writer.write(total, final)
      metrics = {**metrics, **final}
    write_final_metrics(workdir, metrics)
  writer.close()
  return state, metrics
