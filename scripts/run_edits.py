r"""Runs every guidance variant at every knob setting on a stroke set; scores it.

  python scripts/run_edits.py --manifest runs/shapes/strokes/manifest.json \
      --tokenizer_workdir runs/shapes/tokenizer \
      --transformer_workdir runs/shapes/maskgit \
      --reweight_workdir runs/shapes/reweight \
      --iterate_workdir runs/shapes/iterate \
      --judge_workdir runs/shapes/judge \
      --out_dir runs/shapes/eval

then `python scripts/render_comparison_table.py --results
runs/shapes/eval/results.json`. Without --reweight_workdir (--iterate_workdir)
the self_learned (iterative) variant is skipped with a message, and asking
for it with --variants is an error; with
--iterate_workdir, `none` and `sdedit` are decoded by the tuned transformer
too ("none@tuned", "sdedit@tuned"), iterative's own baselines. Without
--judge_workdir the judge metrics are left out. Knob grids
default to each variant's `study_knobs` (`decoding.guidance.REGISTRY`);
override them with e.g.
`--knobs context=0,0.5 self_fixed=0,2`, and pick variants with `--variants`.

Outputs, metrics and the results schema: see `maskgit_edit.evaluation`.
The run is resumable: a (variant, knob) whose .npz exists is not re-run, so a
killed run loses at most the setting in progress. Use >= 100 strokes for the
reported intervals. For 16 px images pass --swd_min_resolution 8 (and fewer
--swd_descriptors).
"""

# The imports follow the sys.path set-up below.
# pylint: disable=g-import-not-at-top,wrong-import-position
import dataclasses
import functools
import os
import sys
import time

# Runnable as `python scripts/run_edits.py` from a checkout without install.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
from jax.experimental import multihost_utils
import numpy as np

from maskgit_edit import artefacts
from maskgit_edit import batching
from maskgit_edit import cli
from maskgit_edit import edit as edit_lib
from maskgit_edit import edit_workers
from maskgit_edit import evaluation
from maskgit_edit import judging
from maskgit_edit import progress as progress_lib
from maskgit_edit.decoding import guidance as guidance_lib
from maskgit_edit.decoding import sampling
from maskgit_edit.trainers import loop

RECOMMENDED_MIN_STROKES = 100
SCORING_WAIT_S = 24 * 3600
# Repeated in-process runs (resuming, notebooks, tests) reuse the loaded
# models and their compiled decode; the key is the workdir paths, so a run
# retrained in place needs a new process.
_load_editor = functools.cache(edit_lib.Editor.from_workdirs)


def parse_knobs(specs: list[str]) -> dict[str, tuple[float, ...]]:
  """["context=0,0.5", ...] -> {"context": (0.0, 0.5), ...}."""
  knobs = {}
  for spec in specs:
    variant, sep, values = spec.partition("=")
    if not sep or variant not in guidance_lib.REGISTRY:
      raise ValueError(
          f"--knobs entry {spec!r} is not VARIANT=K1,K2,... with "
          f"VARIANT in {guidance_lib.names()}."
      )
    try:
      knobs[variant] = tuple(float(v) for v in values.split(","))
    except ValueError as e:
      raise ValueError(f"--knobs entry {spec!r} has a non-numeric knob.") from e
  return knobs


def parse_args(argv):
  p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--manifest", required=True, help="Stroke-set manifest.")
  p.add_argument("--tokenizer_workdir", required=True)
  p.add_argument("--transformer_workdir", required=True)
  p.add_argument("--reweight_workdir", help="`reweight` run (self_learned).")
  p.add_argument("--iterate_workdir", help="`iterate` run (iterative).")
  p.add_argument(
      "--judge_workdir", help="Judge run of the data (judge realism metrics)."
  )
  p.add_argument("--out_dir", required=True)
  p.add_argument(
      "--variants",
      nargs="+",
      default=None,
      choices=guidance_lib.names(),
      help="Default: every variant whose runs are given.",
  )
  p.add_argument(
      "--knobs",
      nargs="*",
      default=[],
      help="Knob grid overrides: VARIANT=K1,K2,...",
  )
  p.add_argument(
      "--window",
      type=int,
      default=None,
      help="Windowed decoding: the context ring in tokens around "
      "the edited ones (default: the whole grid).",
  )
  sampling.add_decode_flags(p, ("full_pass_every",))
  p.add_argument("--seed", type=int, default=0)
  p.add_argument(
      "--distributed",
      action="store_true",
      help="One of several JAX processes sharing the edits (see "
      "the README); process 0 writes every file.",
  )
  p.add_argument(
      "--coordinator_address",
      help="With --distributed: "
      "host:port of process 0 (default: from JAX's environment).",
  )
  p.add_argument("--num_processes", type=int)
  p.add_argument("--process_id", type=int)
  p.add_argument("--batch_size", type=int, default=32)
  p.add_argument(
      "--real_split",
      default="test",
      help="Split of the data source holding the real images.",
  )
  p.add_argument(
      "--num_real",
      type=int,
      default=None,
      help="Real images for SWD (default: as many as strokes).",
  )
  p.add_argument("--swd_descriptors", type=int, default=128)
  p.add_argument("--swd_min_resolution", type=int, default=16)
  p.add_argument("--swd_projections", type=int, default=512)
  p.add_argument("--swd_folds", type=int, default=5)
  return p.parse_args(argv)


def pending_settings(
    settings, stroke_set, identity, args
) -> list[tuple[str, float]]:
  """The settings without outputs, as process 0 finds them.

  Raises ValueError on every process when process 0 finds outputs of
  another run in out_dir (`identity`: `evaluation.claim_out_dir`), rather
  than leave the others waiting for it.
  """
  # Per setting: 1 done, 0 to run; -1 everywhere: process 0 refused out_dir.
  status = np.zeros(len(settings), np.int32)
  error = None
  if artefacts.is_writer():
    try:
      evaluation.claim_out_dir(args.out_dir, identity)
      for i, (variant, knob) in enumerate(settings):
        path = evaluation.output_path(args.out_dir, variant, knob)
        if os.path.exists(path):
          evaluation.check_outputs(
              path, stroke_set, seed=args.seed, batch_size=args.batch_size
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
        f"Process 0 refused the outputs in {args.out_dir} (see its error)."
    )
  return [s for s, done in zip(settings, status) if not done]


def run_pending(
    workers, stroke_set, labels_N, settings, identity, args
) -> float:
  """Runs the settings without outputs; returns the seconds spent."""
  pending = pending_settings(settings, stroke_set, identity, args)
  print(
      f"{len(settings) - len(pending)} of {len(settings)} settings already "
      f"done; running {len(pending)} on {workers.num_workers} device(s).",
      flush=True,
  )
  owned = workers.owned_batches(
      len(batching.padded_batches(len(stroke_set), args.batch_size))
  )
  progress = progress_lib.Progress(len(pending) * sum(map(len, owned)))
  start = time.monotonic()
  for name, knob in pending:
    label = f"{name} {evaluation.knob_name(name)}={knob:g}"
    variant, tuned = evaluation.decode_of(name)
    outputs = workers.run_setting(
        stroke_set,
        labels_N,
        variant,
        knob,
        seed=args.seed,
        batch_size=args.batch_size,
        tuned=tuned,
        on_batch=lambda l=label: progress.step(l),
    )
    if artefacts.is_writer():
      evaluation.save_outputs(
          evaluation.output_path(args.out_dir, name, knob),
          outputs,
          stroke_set,
          seed=args.seed,
          batch_size=args.batch_size,
      )
  return time.monotonic() - start


def main(argv=None) -> str | None:
  """Runs the harness; returns the path of results.json (None on processes
  other than 0, which only edit)."""
  args = parse_args(argv)
  # The other processes finish with the edits and wait at the shutdown
  # barrier while process 0 scores.
  loop.maybe_initialize_distributed(
      {**vars(args), "shutdown_timeout_s": SCORING_WAIT_S}
  )
  runs = {
      trainer
      for trainer in ("reweight", "iterate")
      if getattr(args, f"{trainer}_workdir")
  }
  overrides = parse_knobs(args.knobs)
  # By default, every variant whose runs are given, and those --knobs names.
  variants = args.variants or [
      v
      for v in guidance_lib.names()
      if v in overrides or not guidance_lib.missing_run(v, runs)
  ]
  skipped = {
      v: f"needs --{guidance_lib.variant(v).needs}_workdir (not given)"
      for v in guidance_lib.names()
      if not args.variants and v not in variants
  }
  for variant, reason in skipped.items():
    print(f"Skipping variant {variant!r}: {reason}.", flush=True)
  unknown = sorted(set(overrides) - set(variants))
  if unknown:
    raise ValueError(
        f"--knobs given for {unknown}, which --variants leaves out."
    )
  kept = evaluation.select_variants(
      {
          v: overrides.get(v, guidance_lib.variant(v).study_knobs)
          for v in variants
      },
      runs,
  )

  stroke_set = evaluation.load_stroke_set(args.manifest)
  tok_config = artefacts.load_run_config(args.tokenizer_workdir)
  if stroke_set.image_size != tok_config.data.image_size:
    raise ValueError(
        f"The strokes are {stroke_set.image_size} px but the tokenizer in "
        f"{args.tokenizer_workdir} works on {tok_config.data.image_size} px."
    )
  # Loaded before the edits, so that a judge that does not fit fails fast.
  judge = (
      judging.Judge.from_workdir(args.judge_workdir, tok_config.data)
      if args.judge_workdir
      else None
  )
  if len(stroke_set) < RECOMMENDED_MIN_STROKES:
    print(
        f"Note: {len(stroke_set)} strokes; use >= {RECOMMENDED_MIN_STROKES} "
        "for the reported intervals.",
        flush=True,
    )

  decode = dataclasses.replace(
      edit_lib.EditSettings().decode, **sampling.decode_overrides(args)
  )
  editor = _load_editor(
      args.tokenizer_workdir,
      args.transformer_workdir,
      edit_lib.EditSettings(decode=decode, window=args.window),
      iterate_workdir=args.iterate_workdir,
      reweight_workdir=args.reweight_workdir,
  )
  labels_N = (
      evaluation.stroke_labels(stroke_set)
      if editor.layout.class_conditional
      else np.zeros(len(stroke_set), np.int32)
  )
  settings = [(v, k) for v, knobs in kept.items() for k in knobs]
  models = {
      name: getattr(args, name) and os.path.abspath(getattr(args, name))
      for name in (
          "tokenizer_workdir",
          "transformer_workdir",
          "reweight_workdir",
          "iterate_workdir",
      )
  }
  identity = {
      "manifest": stroke_set.manifest_path,
      "models": models,
      "edit_settings": dataclasses.asdict(editor.settings),
  }
  edit_seconds = run_pending(
      edit_workers.EditWorkers(editor),
      stroke_set,
      labels_N,
      settings,
      identity,
      args,
  )
  if not artefacts.is_writer():
    return None

  start = time.monotonic()
  swd = evaluation.SwdSettings(
      num_descriptors=args.swd_descriptors,
      min_resolution=args.swd_min_resolution,
      num_projections=args.swd_projections,
      folds=args.swd_folds,
      seed=args.seed,
  )
  num_real = args.num_real or len(stroke_set)
  entries, references = evaluation.score_settings(
      stroke_set,
      settings,
      out_dir=args.out_dir,
      seed=args.seed,
      batch_size=args.batch_size,
      swd=swd,
      real_NxHxWx3=evaluation.real_images(
          stroke_set, tok_config.data, args.real_split, num_real
      ),
      judge=judge,
  )
  results = evaluation.results_dict(
      stroke_set,
      labels_N,
      seed=args.seed,
      batch_size=args.batch_size,
      models={
          name: getattr(args, name)
          for name in (
              "tokenizer_workdir",
              "transformer_workdir",
              "reweight_workdir",
              "iterate_workdir",
              "judge_workdir",
          )
      },
      edit_settings=dataclasses.asdict(editor.settings),
      swd=dict(
          dataclasses.asdict(swd), num_real=num_real, real_split=args.real_split
      ),
      skipped=skipped,
      references=references,
      entries=entries,
  )
  json_path, csv_path = evaluation.write_results(args.out_dir, results)
  print(
      f"Edits: {edit_seconds:.1f}s; metrics: {time.monotonic() - start:.1f}s."
      f"\nWrote {json_path} and {csv_path}.",
      flush=True,
  )
  return json_path


if __name__ == "__main__":
  cli.run(main)
