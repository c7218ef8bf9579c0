"""scripts/generate.py and scripts/sweep_schedules.py, run in-process."""

import csv

import numpy as np
import pytest
from PIL import Image

from maskgit_edit import artefacts
from maskgit_edit import data as data_lib
from maskgit_edit import generation
from maskgit_edit import images as images_lib
from maskgit_edit import regions
from maskgit_edit.study import schedule_sweep
from maskgit_edit.study import scoring

from conftest import load_script

pytestmark = pytest.mark.xdist_group("tiny_runs")

PAD = 2  # images_lib.grid's default gutter.


generate = load_script("scripts/generate.py")
sweep = load_script("scripts/sweep_schedules.py")


def _cells(path, size, scale):
  """uint8 [rows, cols, size, size, 3] images of a grid PNG."""
  grid = np.asarray(Image.open(path).convert("RGB"))[::scale, ::scale]
  rows, cols = ((n - PAD) // (size + PAD) for n in grid.shape[:2])
  assert grid.shape[:2] == (
      rows * (size + PAD) + PAD,
      cols * (size + PAD) + PAD,
  )
  return np.stack(
      [
          np.stack(
              [
                  grid[PAD + r * (size + PAD) :][
                      :size, PAD + c * (size + PAD) :
                  ][:, :size]
                  for c in range(cols)
              ]
          )
          for r in range(rows)
      ]
  )


def _read_csv(path):
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    return reader.fieldnames, list(reader)


def _workdir_flags(tiny_runs):
  return [
      "--tokenizer_workdir",
      tiny_runs["tokenizer"],
      "--transformer_workdir",
      tiny_runs["maskgit"],
  ]


def test_edit_tasks_masks_and_labels():
  labels_N = np.array([0, 3, 1])
  tasks = generation.edit_tasks(16, 0.5, labels_N, 4, None)
  inpaint_HxW, inpaint_labels = tasks["inpaint"]
  outpaint_HxW, _ = tasks["outpaint"]
  np.testing.assert_array_equal(inpaint_HxW[4:12, 4:12], True)
  assert inpaint_HxW.sum() == 64
  np.testing.assert_array_equal(outpaint_HxW, ~inpaint_HxW)
  np.testing.assert_array_equal(inpaint_labels, labels_N)
  np.testing.assert_array_equal(tasks["relabel"][1], [1, 0, 2])
  np.testing.assert_array_equal(
      generation.edit_tasks(16, 0.5, labels_N, 4, 2)["relabel"][1], [2, 2, 2]
  )
  assert "relabel" not in generation.edit_tasks(16, 0.5, labels_N, 0, None)
  with pytest.raises(ValueError, match="new_label 4"):
    generation.edit_tasks(16, 0.5, labels_N, 4, 4)


def test_sweep_settings_map_fractions_to_stop_iters():
  grid = schedule_sweep.sweep_settings(
      ["cosine", "pow3"],
      [4, 12],
      [0.25, 0.3, 1.0],
      choice_temperature=1.0,
      start_iter=0,
  )
  stops = [(s.schedule, s.num_steps, s.stop_iter) for s in grid]
  assert stops == [
      (schedule, t, k)
      for schedule in ("cosine", "pow3")
      for t, ks in ((4, (1, 2, 4)), (12, (3, 4, 12)))
      for k in ks
  ]
  assert {s.choice_temperature for s in grid} == {1.0}
  # 0.2 and 0.25 of T = 4 are both k = 1: one setting.
  assert (
      len(
          schedule_sweep.sweep_settings(
              ["linear"], [4], [0.2, 0.25], choice_temperature=1.0, start_iter=0
          )
      )
      == 1
  )
  with pytest.raises(ValueError, match="fraction"):
    schedule_sweep.sweep_settings(
        ["linear"], [4], [0.0], choice_temperature=1.0, start_iter=0
    )
  with pytest.raises(ValueError, match="start_iter = 1"):
    schedule_sweep.sweep_settings(
        ["linear"], [4], [0.25], choice_temperature=1.0, start_iter=1
    )
  with pytest.raises(ValueError, match="schedule"):
    schedule_sweep.sweep_settings(
        ["cosin"], [4], [1.0], choice_temperature=1.0, start_iter=0
    )


def test_swd_settings_for_small_images():
  fit = scoring.SwdSettings.for_image_size
  assert (fit(16).min_resolution, fit(16).num_descriptors) == (8, 32)
  assert (fit(256).min_resolution, fit(256).num_descriptors) == (16, 128)
  assert fit(8).min_resolution == 7
  given = fit(32, min_resolution=32, num_descriptors=5, seed=3)
  assert (given.min_resolution, given.num_descriptors, given.seed) == (32, 5, 3)
  with pytest.raises(ValueError, match="4 px"):
    fit(4)


def test_generate_writes_grids(tiny_runs, tmp_path):
  num_images, num_seeds, per_row, scale = 2, 2, 3, 2
  paths = generate.main(
      _workdir_flags(tiny_runs)
      + [
          "--out",
          str(tmp_path),
          "--num_images",
          str(num_images),
          "--num_seeds",
          str(num_seeds),
          "--per_row",
          str(per_row),
          "--num_steps",
          "4",
          "--start_iter",
          "1",
          "--dilation",
          "0",
          "--composite",
          "hard",
          "--scale",
          str(scale),
      ]
  )
  assert set(paths) == {"samples", "inpaint", "outpaint", "relabel"}
  config = artefacts.load_run_config(tiny_runs["tokenizer"])
  size = config.data.image_size
  sources, _ = data_lib.load_images(config.data, "test", num_images)
  samples = _cells(paths["samples"], size, scale)
  assert samples.shape[:2] == (4, per_row)  # One row per shape class.
  box_HxW = regions.box_mask(size, regions.centre_box(size, 0.5))
  for name, edited_HxW in (
      ("inpaint", box_HxW),
      ("relabel", box_HxW),
      ("outpaint", ~box_HxW),
  ):
    cells = _cells(paths[name], size, scale)
    assert cells.shape[:2] == (num_images, 2 + num_seeds), name
    np.testing.assert_array_equal(cells[:, 0], sources)
    np.testing.assert_array_equal(
        cells[:, 1][:, edited_HxW], images_lib.to_uint8(generation.MASK_GREY)
    )
    np.testing.assert_array_equal(
        cells[:, 1][:, ~edited_HxW], sources[:, ~edited_HxW]
    )
    results = cells[:, 2:]
    # Hard compositing with a token-aligned box: only the box changes.
    np.testing.assert_array_equal(
        results[:, :, ~edited_HxW],
        np.broadcast_to(sources[:, None], results.shape)[:, :, ~edited_HxW],
    )
    assert np.any(
        results[:, :, edited_HxW] != sources[:, None][:, :, edited_HxW]
    )


def test_sweep_csv_plots_and_reproducibility(tiny_runs, tmp_path):
  flags = _workdir_flags(tiny_runs) + [
      "--num_images",
      "4",
      "--steps",
      "4",
      "--seed",
      "3",
  ]
  rows = sweep.main(
      flags
      + [
          "--out",
          str(tmp_path / "a"),
          "--schedules",
          "cosine,linear",
          "--fractions",
          "0.5,1",
      ]
  )
  columns, written = _read_csv(tmp_path / "a" / "sweep.csv")
  assert (
      tuple(columns)
      == schedule_sweep.SETTING_COLUMNS + schedule_sweep.METRIC_COLUMNS
  )
  settings = [(r["schedule"], r["stop_iter"], r["sweet_spot"]) for r in written]
  assert settings == [
      ("cosine", "2", "0.5"),
      ("cosine", "4", "1.0"),
      ("linear", "2", "0.5"),
      ("linear", "4", "1.0"),
  ]
  assert len(rows) == 4
  values = np.array(
      [[float(r[c]) for c in schedule_sweep.METRIC_COLUMNS] for r in written]
  )
  assert np.isfinite(values).all() and (values[:, 0] > 0).all()
  accuracy = values[:, schedule_sweep.METRIC_COLUMNS.index("token_accuracy")]
  assert ((0 <= accuracy) & (accuracy <= 1)).all()
  _, baselines = _read_csv(tmp_path / "a" / "baseline.csv")
  assert [b["fill"] for b in baselines] == ["true_tokens", "real_images"]
  assert float(baselines[0]["token_accuracy"]) == 1.0
  for metric in schedule_sweep.METRIC_LABELS:
    with Image.open(tmp_path / "a" / f"{metric}.png") as plot:
      assert min(plot.size) > 100
  # Same seed, another set of combinations: the shared one is identical.
  sweep.main(
      flags
      + [
          "--out",
          str(tmp_path / "b"),
          "--schedules",
          "linear",
          "--fractions",
          "1",
      ]
  )
  _, again = _read_csv(tmp_path / "b" / "sweep.csv")
  assert again == [written[3]]
