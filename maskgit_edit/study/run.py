"""Runs a study: decodes every pending setting, scores them all, writes
results.json.

Resumable: a (variant, knob) whose outputs exist is not decoded again, so a
killed study loses at most the setting in progress. On several JAX
processes the edits are shared (`edit_workers.EditWorkers`) and process 0
writes every file and scores.
"""

from collections.abc import Mapping, Sequence
import dataclasses
import functools
import os
import time
from typing import Any

import jax
from jax.experimental import multihost_utils
import numpy as np

from maskgit_edit import artefacts
from maskgit_edit import batching
from maskgit_edit import edit as edit_lib
from maskgit_edit import edit_workers
from maskgit_edit import judging
from maskgit_edit import progress as progress_lib
from maskgit_edit.study import outputs as outputs_lib
from maskgit_edit.study import schema
from maskgit_edit.study import scoring
from maskgit_edit.study import settings as settings_lib
from maskgit_edit.study import stroke_sets as stroke_sets_lib

RECOMMENDED_MIN_STROKES = 100
# Repeated in-process studies (resuming, notebooks, tests) reuse the loaded
# models and their compiled decode; the key is the workdir paths, so a run
# retrained in place needs a new process.
_load_editor = functools.cache(edit_lib.Editor.from_workdirs)


# A study folder's record lacks the edit settings added after it was
# written; they stand for their defaults, which kept the earlier decode.
IDENTITY_DEFAULTS = {
    "edit_settings": dataclasses.asdict(edit_lib.EditSettings())
}


def pending_settings(
    settings: Sequence[tuple[str, float]],
    stroke_set: stroke_sets_lib.StrokeSet,
    identity: Mapping[str, Any],
    out_dir: str,
    *,
    seed: int,
    batch_size: int,
) -> list[tuple[str, float]]:
  """The settings without outputs, as process 0 finds them.

  Raises ValueError on every process when process 0 finds outputs of
  another run in out_dir (`identity`: `outputs.claim_out_dir`), rather
  than leave the others waiting for it.
  """
  # Per setting: 1 done, 0 to run; -1 everywhere: process 0 refused out_dir.
  status = np.zeros(len(settings), np.int32)
  error = None
  if artefacts.is_writer():
    try:
      outputs_lib.claim_out_dir(out_dir, identity, IDENTITY_DEFAULTS)
      for i, (variant, knob) in enumerate(settings):
        path = outputs_lib.output_path(out_dir, variant, knob)
        if os.path.exists(path):
          outputs_lib.check_outputs(
              path, stroke_set, seed=seed, batch_size=batch_size
          )
          status[i] = 1
    except ValueError as e:
      error, status[:] = e, -1
  if jax.process_count() > 1:
    status = multihost_utils.broadcast_one_to_all(status)
  if error is not None:
    raise error
  if np.any(status < 0):
    raise ValueError(
        f"Process 0 refused the outputs in {out_dir} (see its error)."
    )
  return [s for s, done in zip(settings, status) if not done]


def decode_pending(
    workers: edit_workers.EditWorkers,
    stroke_set: stroke_sets_lib.StrokeSet,
    labels_N: np.ndarray,
    settings: Sequence[tuple[str, float]],
    identity: Mapping[str, Any],
    out_dir: str,
    *,
    seed: int,
    batch_size: int,
) -> float:
  """Decodes the settings without outputs; returns the seconds spent."""
  pending = pending_settings(
      settings, stroke_set, identity, out_dir, seed=seed, batch_size=batch_size
  )
  print(
      f"{len(settings) - len(pending)} of {len(settings)} settings already "
      f"done; running {len(pending)} on {workers.num_workers} device(s).",
      flush=True,
  )
  owned = workers.owned_batches(
      len(batching.padded_batches(len(stroke_set), batch_size))
  )
  progress = progress_lib.Progress(len(pending) * sum(map(len, owned)))
  start = time.monotonic()
  for name, knob in pending:
    label = f"{name} {settings_lib.knob_name(name)}={knob:g}"
    variant, tuned = settings_lib.decode_of(name)
    outputs = workers.run_setting(
        stroke_set,
        labels_N,
        variant,
        knob,
        seed=seed,
        batch_size=batch_size,
        tuned=tuned,
        on_batch=lambda l=label: progress.step(l),
    )
    if artefacts.is_writer():
      outputs_lib.save_outputs(
          outputs_lib.output_path(out_dir, name, knob),
          outputs,
          stroke_set,
          seed=seed,
          batch_size=batch_size,
      )
  return time.monotonic() - start


def run_study(
    manifest: str,
    out_dir: str,
    *,
    tokenizer_workdir: str,
    transformer_workdir: str,
    reweight_workdir: str | None = None,
    iterate_workdir: str | None = None,
    judge_workdir: str | None = None,
    variants: Sequence[str] | None = None,
    knobs: Mapping[str, Sequence[float]] | None = None,
    edit_settings: edit_lib.EditSettings = edit_lib.EditSettings(),
    seed: int = 0,
    batch_size: int = 32,
    real_split: str = "test",
    num_real: int | None = None,
    swd: scoring.SwdSettings = scoring.SwdSettings(),
) -> str | None:
  """Runs a study into `out_dir`.

  Args:
    manifest: the stroke set's manifest.
    out_dir: the study folder (resumed when it holds this study's outputs).
    tokenizer_workdir, transformer_workdir: the runs that edit.
    reweight_workdir, iterate_workdir: the runs of self_learned and
      iterative (`settings.plan` for what runs without them).
    judge_workdir: the data's judge run; without it the judge metrics are
      missing.
    variants, knobs: which variants and knob grids (`settings.plan`).
    edit_settings: the editor's settings (decode, window).
    seed, batch_size: the paired draws (see `maskgit_edit.study`).
    real_split, num_real: the real images of the set metrics (default: as
      many as strokes).
    swd: SWD settings; its seed is replaced by `seed`.

  Returns:
    The path of results.json; None on processes other than 0, which only
    edit.
  """
  models = {
      "tokenizer_workdir": tokenizer_workdir,
      "transformer_workdir": transformer_workdir,
      "reweight_workdir": reweight_workdir,
      "iterate_workdir": iterate_workdir,
  }
  runs = {t for t in ("reweight", "iterate") if models[f"{t}_workdir"]}
  kept, skipped = settings_lib.plan(variants, knobs or {}, runs)
  for variant, reason in skipped.items():
    print(f"Skipping variant {variant!r}: {reason}.", flush=True)

  stroke_set = stroke_sets_lib.load_stroke_set(manifest)
  tok_config = artefacts.load_run_config(tokenizer_workdir)
  if stroke_set.image_size != tok_config.data.image_size:
    raise ValueError(
        f"The strokes are {stroke_set.image_size} px but the tokenizer in "
        f"{tokenizer_workdir} works on {tok_config.data.image_size} px."
    )
  # Loaded before the edits, so that a judge that does not fit fails fast.
  judge = (
      judging.Judge.from_workdir(judge_workdir, tok_config.data)
      if judge_workdir
      else None
  )
  if len(stroke_set) < RECOMMENDED_MIN_STROKES:
    print(
        f"Note: {len(stroke_set)} strokes; use >= {RECOMMENDED_MIN_STROKES} "
        "for the reported intervals.",
        flush=True,
    )
  editor = _load_editor(
      tokenizer_workdir,
      transformer_workdir,
      edit_settings,
      iterate_workdir=iterate_workdir,
      reweight_workdir=reweight_workdir,
  )
  labels_N = (
      stroke_sets_lib.stroke_labels(stroke_set)
      if editor.layout.class_conditional
      else np.zeros(len(stroke_set), np.int32)
  )
  settings = [(v, k) for v, values in kept.items() for k in values]
  identity = {
      "manifest": stroke_set.manifest_path,
      "models": {
          name: path and os.path.abspath(path) for name, path in models.items()
      },
      "edit_settings": dataclasses.asdict(editor.settings),
  }
  edit_seconds = decode_pending(
      edit_workers.EditWorkers(editor),
      stroke_set,
      labels_N,
      settings,
      identity,
      out_dir,
      seed=seed,
      batch_size=batch_size,
  )
  if not artefacts.is_writer():
    return None

  start = time.monotonic()
  swd = dataclasses.replace(swd, seed=seed)
  num_real = num_real or len(stroke_set)
  entries, references = scoring.score_settings(
      stroke_set,
      settings,
      out_dir=out_dir,
      seed=seed,
      batch_size=batch_size,
      swd=swd,
      real_NxHxWx3=stroke_sets_lib.real_images(
          stroke_set, tok_config.data, real_split, num_real
      ),
      judge=judge,
  )
  results = schema.results_dict(
      stroke_set,
      labels_N,
      seed=seed,
      batch_size=batch_size,
      models={**models, "judge_workdir": judge_workdir},
      edit_settings=dataclasses.asdict(editor.settings),
      swd=dict(
          dataclasses.asdict(swd), num_real=num_real, real_split=real_split
      ),
      skipped=skipped,
      references=references,
      entries=entries,
  )
  json_path, csv_path = schema.write_results(out_dir, results)
  print(
      f"Edits: {edit_seconds:.1f}s; metrics: {time.monotonic() - start:.1f}s."
      f"\nWrote {json_path} and {csv_path}.",
      flush=True,
  )
  return json_path
