import importlib.util
import os

import numpy as np
import pytest
from PIL import Image

from maskgit_edit import data
from maskgit_edit import strokes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_strokes_cli():
  spec = importlib.util.spec_from_file_location(
      "make_strokes", os.path.join(ROOT, "make_strokes.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def images():
  c = data.default_data_config()
  c.update(image_size=32, num_test=6)
  return data.get_source(c, "test").get(np.arange(6))[0]


def records(images, seed):
  return strokes.make_strokes(images, strokes_per_image=2, seed=seed)


def test_deterministic_per_seed(images):
  a, b, c = records(images, 1), records(images, 1), records(images, 2)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x.stroke.stroke_image, y.stroke.stroke_image)
    np.testing.assert_array_equal(x.stroke.mask, y.stroke.mask)
  assert any(not np.array_equal(x.stroke.stroke_image, z.stroke.stroke_image)
             for x, z in zip(a, c))


def test_mask_is_exactly_the_filled_region(images):
  for r in records(images, 0):
    source = images[r.image_index]
    mask = r.stroke.mask
    assert mask.any() and not mask.all()
    np.testing.assert_array_equal(r.stroke.stroke_image[~mask], source[~mask])
    assert (r.stroke.stroke_image[mask] == np.array(r.stroke.color)).all()


def test_fill_colours(images):
  for r in records(images, 0):
    mean = strokes.region_mean_color(images[r.image_index], r.stroke.mask)
    color = np.array(r.stroke.color, float)
    if r.stroke.mode == "inversion":
      np.testing.assert_array_equal(color, np.rint(mean))
    else:
      distance = np.linalg.norm((color - mean) / 255)
      assert distance >= strokes.COUNTERFACTUAL_MIN_DISTANCE


def test_manifest_round_trip_and_bad_manifests(images, tmp_path):
  recs = records(images[:2], 0)
  path = strokes.write_stroke_set(tmp_path / "set", images[:2], recs,
                                  metadata={"split": "test"})
  loaded = strokes.read_manifest(path)
  assert len(loaded) == len(recs)
  np.testing.assert_array_equal(loaded[0].mask, recs[0].stroke.mask)
  os.remove(tmp_path / "set" / loaded[1].entry["stroke"])
  with pytest.raises(FileNotFoundError, match="stroke_"):
    strokes.read_manifest(path)
  path = strokes.write_stroke_set(tmp_path / "mixed", images[:2], recs)
  big = Image.fromarray(np.zeros((40, 40, 3), np.uint8))
  big.save(tmp_path / "mixed" / loaded[0].entry["source"])
  with pytest.raises(ValueError, match="mixed sizes"):
    strokes.read_manifest(path)


def test_cli_from_folder_and_empty_folder(tmp_path):
  cli = make_strokes_cli()
  folder = tmp_path / "imgs"
  folder.mkdir()
  with pytest.raises(ValueError, match="No images"):
    cli.main(["--out", str(tmp_path / "o"), "--folder", str(folder)])
  canvas = np.zeros((48, 48, 3), np.uint8)
  canvas[:, 24:] = (200, 40, 40)
  canvas[10:30, 5:20] = (20, 200, 90)
  Image.fromarray(canvas).save(folder / "a.png")
  Image.fromarray(canvas[::-1]).save(folder / "b.png")
  path = cli.main(["--out", str(tmp_path / "o"), "--folder", str(folder),
                   "--image_size", "32", "--strokes_per_image", "2"])
  examples = strokes.read_manifest(path)
  assert len(examples) == 4
  assert {e.entry["mode"] for e in examples} == {"inversion", "counterfactual"}
