"""Tests of the auto-stroke library (`maskgit_edit.strokes`) and its CLI."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from maskgit_edit import data
from maskgit_edit import strokes
from conftest import ROOT, load_script


def make_strokes_cli():
  return load_script("make_strokes.py")


@pytest.fixture(scope="module")
def images():
  c = data.default_data_config()
  c.update(image_size=32, num_test=6)
  return data.get_source(c, "test").get(np.arange(6))[0]


def records(images, seed, segmentation="kmeans"):
  return strokes.make_strokes(
      images, strokes_per_image=2, seed=seed, segmentation=segmentation
  )


def two_colour_image(size=48):
  canvas = np.zeros((size, size, 3), np.uint8)
  canvas[:, size // 2 :] = (200, 40, 40)
  canvas[size // 5 : size * 3 // 5, size // 10 : size * 2 // 5] = (20, 200, 90)
  return canvas


def test_median_kernel_scales_with_size_and_is_odd():
  assert [strokes.median_kernel_size(s) for s in (16, 32, 64, 128, 256)] == [
      3,
      3,
      7,
      13,
      23,
  ]


def test_deterministic_per_seed(images):
  a, b, c = records(images, 1), records(images, 1), records(images, 2)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x.stroke.stroke_image, y.stroke.stroke_image)
    np.testing.assert_array_equal(x.stroke.mask, y.stroke.mask)
  assert any(
      not np.array_equal(x.stroke.stroke_image, z.stroke.stroke_image)
      for x, z in zip(a, c)
  )


def test_strokes_do_not_depend_on_batching(images):
  whole = records(images, 3)
  chunks = strokes.make_strokes(
      images[:2], strokes_per_image=2, seed=3
  ) + strokes.make_strokes(
      images[2:], strokes_per_image=2, seed=3, first_index=2
  )
  assert [r.id for r in whole] == [r.id for r in chunks]
  for x, y in zip(whole, chunks):
    np.testing.assert_array_equal(x.stroke.stroke_image, y.stroke.stroke_image)


@pytest.mark.parametrize("segmentation", strokes.SEGMENTATIONS)
def test_mask_is_exactly_the_filled_region(images, segmentation):
  for r in records(images, 0, segmentation):
    source = images[r.image_index]
    mask = r.stroke.mask
    assert mask.any() and not mask.all()
    np.testing.assert_array_equal(r.stroke.stroke_image[~mask], source[~mask])
    assert (r.stroke.stroke_image[mask] == np.array(r.stroke.color)).all()


@pytest.mark.parametrize("segmentation", strokes.SEGMENTATIONS)
def test_fill_colours(images, segmentation):
  recs = records(images, 0, segmentation)
  assert {r.stroke.mode for r in recs} == set(strokes.MODES)
  for r in recs:
    mean = strokes.region_mean_color(images[r.image_index], r.stroke.mask)
    color = np.array(r.stroke.color, float)
    if r.stroke.mode == "inversion":
      np.testing.assert_array_equal(color, np.rint(mean))
    else:
      distance = np.linalg.norm((color - mean) / 255)
      assert distance >= strokes.COUNTERFACTUAL_MIN_DISTANCE


def test_counterfactual_strokes_on_grey_images_are_grey(images):
  grey = np.repeat(images.mean(-1, keepdims=True).astype(np.uint8), 3, -1)
  recs = strokes.make_strokes(grey, strokes_per_image=2, seed=0)
  counterfactual = [r for r in recs if r.stroke.mode == "counterfactual"]
  assert counterfactual
  for r in counterfactual:
    assert len(set(r.stroke.color)) == 1
    mean = strokes.region_mean_color(grey[r.image_index], r.stroke.mask)
    distance = np.linalg.norm((np.array(r.stroke.color) - mean) / 255)
    assert distance >= strokes.COUNTERFACTUAL_MIN_DISTANCE


def test_stroke_is_a_flat_region_of_admissible_area():
  image = two_colour_image()
  (record,) = strokes.make_strokes(
      image[None],
      strokes_per_image=1,
      modes=("inversion",),
      seed=0,
      min_area_frac=0.1,
      max_area_frac=0.4,
  )
  stroke = record.stroke
  assert 0.1 <= stroke.area_frac <= 0.4
  # The stroke is one of the flat input regions, up to the corners that the
  # median filter rounds off.
  colours = np.unique(image.reshape(-1, 3), axis=0)
  purity = [np.mean((image == c).all(-1)[stroke.mask]) for c in colours]
  assert max(purity) > 0.95


def test_pick_region_prefers_admissible_then_closest_area():
  regions = np.ones((10, 10), int)
  regions[:, :3] = 2  # 30% of the image.
  regions[:, :1] = 3  # 10% of the image.
  pick = lambda lo, hi: strokes.pick_region(
      regions, np.random.default_rng(0), min_area_frac=lo, max_area_frac=hi
  )
  np.testing.assert_array_equal(pick(0.15, 0.25), regions == 2)
  np.testing.assert_array_equal(pick(0.7, 0.9), regions == 1)
  np.testing.assert_array_equal(pick(0.0, 0.05), regions == 3)


def test_bad_arguments_raise(images):
  make = lambda image, **kwargs: strokes.make_strokes(
      image[None], strokes_per_image=1, seed=0, **kwargs
  )
  with pytest.raises(ValueError, match="stroke mode 'paint'"):
    make(images[0], modes=("paint",))
  with pytest.raises(ValueError, match="segmentation 'grid'"):
    make(images[0], segmentation="grid")
  with pytest.raises(ValueError, match="uint8"):
    make(images[0] / 255.0)
  with pytest.raises(ValueError, match="odd"):
    make(images[0], median_kernel=4)


def test_manifest_round_trip(images, tmp_path):
  recs = records(images[:2], 0)
  path = strokes.write_stroke_set(
      tmp_path / "set", images[:2], recs, metadata={"split": "test"}
  )
  manifest = json.loads(path.read_text())
  assert manifest["image_size"] == [32, 32] and manifest["seed"] == 0
  assert manifest["split"] == "test"
  loaded = strokes.read_manifest(path)
  assert [e.entry["id"] for e in loaded] == [r.id for r in recs]
  for example, record in zip(loaded, recs):
    np.testing.assert_array_equal(example.source, images[record.image_index])
    np.testing.assert_array_equal(
        example.stroke_image, record.stroke.stroke_image
    )
    np.testing.assert_array_equal(example.mask, record.stroke.mask)
    assert example.entry["mode"] == record.stroke.mode
    assert tuple(example.entry["color"]) == record.stroke.color


@pytest.fixture
def stroke_set(images, tmp_path):
  """(manifest path, its entries) of a freshly written two-image set."""
  path = strokes.write_stroke_set(
      tmp_path / "set", images[:2], records(images[:2], 0)
  )
  return path, json.loads(path.read_text())["entries"]


def test_manifest_with_missing_file_raises(stroke_set):
  path, entries = stroke_set
  os.remove(path.parent / entries[1]["stroke"])
  with pytest.raises(
      FileNotFoundError, match=rf"{entries[1]['stroke']}.*{path.name}"
  ):
    strokes.read_manifest(path)


def test_manifest_without_strokes_raises(stroke_set):
  path, _ = stroke_set
  manifest = json.loads(path.read_text())
  path.write_text(json.dumps({**manifest, "entries": []}))
  with pytest.raises(ValueError, match=rf"{path.name} has no strokes"):
    strokes.read_manifest(path)


def test_manifest_with_mixed_sizes_raises(stroke_set):
  path, entries = stroke_set
  Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(
      path.parent / entries[0]["source"]
  )
  with pytest.raises(ValueError, match=r"mixed sizes.*\(32, 32\).*\(40, 40\)"):
    strokes.read_manifest(path)


def test_manifest_with_bad_masks_raises(stroke_set):
  path, entries = stroke_set
  mask_path = path.parent / entries[0]["mask"]
  Image.fromarray(np.full((16, 16), 255, np.uint8)).save(mask_path)
  with pytest.raises(ValueError, match="has size"):
    strokes.read_manifest(path)
  Image.fromarray(np.zeros((32, 32), np.uint8)).save(mask_path)
  with pytest.raises(ValueError, match="is empty"):
    strokes.read_manifest(path)


def test_cli_from_data_source(tmp_path):
  path = make_strokes_cli().main(
      [
          "--out",
          str(tmp_path / "o"),
          "--data",
          "shapes",
          "--image_size",
          "32",
          "--num_images",
          "3",
          "--strokes_per_image",
          "1",
          "--modes",
          "counterfactual",
          "--seed",
          "4",
      ]
  )
  manifest = json.loads(open(path).read())
  assert manifest["data"]["name"] == "shapes" and manifest["split"] == "test"
  examples = strokes.read_manifest(path)
  assert [e.entry["mode"] for e in examples] == ["counterfactual"] * 3
  # Evaluation re-reads each source from the data source by image_index.
  config = data.default_data_config()
  config.update(manifest["data"])
  sources, _ = data.get_source(config, "test").get(
      np.array([e.entry["image_index"] for e in examples])
  )
  np.testing.assert_array_equal(sources, np.stack([e.source for e in examples]))


def test_cli_from_folder_and_empty_folder(tmp_path):
  cli = make_strokes_cli()
  folder = tmp_path / "imgs"
  folder.mkdir()
  out = str(tmp_path / "o")
  with pytest.raises(ValueError, match="No images"):
    cli.main(["--out", out, "--folder", str(folder), "--image_size", "32"])
  with pytest.raises(FileNotFoundError, match="does not exist"):
    cli.main(
        ["--out", out, "--folder", str(tmp_path / "nope"), "--image_size", "32"]
    )
  canvas = two_colour_image()
  Image.fromarray(canvas).save(folder / "a.png")
  Image.fromarray(canvas[::-1]).save(folder / "b.png")
  path = cli.main(
      [
          "--out",
          out,
          "--folder",
          str(folder),
          "--image_size",
          "32",
          "--strokes_per_image",
          "2",
      ]
  )
  examples = strokes.read_manifest(path)
  assert len(examples) == 4
  assert {e.entry["mode"] for e in examples} == set(strokes.MODES)
  assert examples[0].source.shape == (32, 32, 3)
  assert "data" not in json.loads(open(path).read())


def test_cli_killed_three_times_then_rerun_writes_the_same_files(tmp_path):
  """SIGKILL at random points, then a full run: every file equals an
  uninterrupted run's byte for byte, and a manifest (the mark of a complete
  set) is never left half-written."""
  argv = lambda out: [
      sys.executable,
      os.path.join(ROOT, "make_strokes.py"),
      f"--out={out}",
      "--data=shapes",
      "--image_size=32",
      "--num_images=96",
      "--seed=1",
  ]
  subprocess.run(argv(tmp_path / "whole"), check=True, capture_output=True)
  rng = np.random.default_rng(0)
  killed = tmp_path / "killed"
  for _ in range(3):
    process = subprocess.Popen(argv(killed), stdout=subprocess.DEVNULL)
    time.sleep(rng.uniform(1.0, 4.0))
    process.send_signal(signal.SIGKILL)
    process.wait()
    if (killed / strokes.MANIFEST_NAME).exists():  # Killed after the end.
      assert len(strokes.read_manifest(killed / strokes.MANIFEST_NAME)) == 192
  subprocess.run(argv(killed), check=True, capture_output=True)
  names = sorted(os.listdir(tmp_path / "whole"))
  assert sorted(os.listdir(killed)) == names
  for name in names:
    assert (killed / name).read_bytes() == (
        tmp_path / "whole" / name
    ).read_bytes(), name
