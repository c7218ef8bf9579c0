"""The editing study: every guidance variant at every knob on a stroke set.

`scripts/run_edits.py` runs it (`run.run_study`) and
`scripts/render_comparison_table.py` renders its results. Modules, in the
order a study uses them:

  stroke_sets  the strokes of a manifest, their class labels, real images.
  settings     which (variant, knob) settings run, and the grid's columns.
  outputs      a setting's saved outputs, resume and the run's identity.
  scoring      per-stroke and per-set metrics of a setting's outputs.
  pairing      paired differences to the unguided decode and to token
               SDEdit at the same faithfulness, with bootstrap intervals.
  schema       the results file (typed, versioned), its writing and reading.
  run          decode every pending setting, score them all, write results.
  grid, plot, report
               the comparison grid, the faithfulness-realism plot and the
               markdown page of a study's results (`report.render`).

`schedule_sweep` is the other study: inpainting quality over mask schedule,
steps and sweet spot (`scripts/sweep_schedules.py`).

Paired seeds: batch b of the strokes (in manifest order, `batch_size` per
batch, the last one padded by repeating its last stroke) is decoded with
`fold_in(key(seed), b)` for every variant and knob, so a stroke sees the same
random draws in every setting (knob 0 of a guided variant reproduces "none"
exactly; for sdedit, strength 1 does; iterative at scale 0 decodes with its
tuned transformer). Pairing therefore needs the same `seed` and
`batch_size`, which every output file records and resuming checks.
"""
