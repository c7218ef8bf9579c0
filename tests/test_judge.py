"""The judge: its dense targets, trainer, loading checks and metrics."""

import json
import os

import numpy as np
import pytest

from maskgit_edit import artefacts
from maskgit_edit import judging
from maskgit_edit.data import shapes

from conftest import load_script

sample_quality = load_script("scripts/sample_quality.py")


def test_kind_maps_name_the_front_object_at_its_centre():
  source = shapes.ShapesSource(32, 50, seed=0, split="test")
  # Fine enough that the cell holding the smallest object's centre lies
  # inside it.
  side = 32
  maps = source.kind_maps(np.arange(50), side)
  assert maps.shape == (50, side, side) and maps.dtype == np.int32
  for index in range(50):
    scene = shapes.describe_scene(0, "test", index)
    front = scene.objects[-1]  # Drawn last: nothing covers it.
    x, y = (int(c * side) for c in front.center_xy)
    assert maps[index, y, x] == 1 + front.kind
    # Corners are background in most scenes, never an object id out of range.
    assert 0 <= maps[index].min() and maps[index].max() <= len(
        shapes.SHAPE_NAMES
    )
  assert np.mean(maps[:, 0, 0] == 0) > 0.5


@pytest.fixture(scope="module")
def judge_run(tiny_judge):
  return tiny_judge


def test_judge_run_exports_a_loadable_judge(judge_run):
  workdir, metrics = judge_run
  assert 0.0 <= metrics["test_accuracy"] <= 1.0
  assert {"loss", "accuracy", "map_loss"} <= set(metrics)
  config = artefacts.load_run_config(workdir)
  judge = judging.Judge.from_workdir(workdir, config.data)
  images = np.random.default_rng(0).uniform(size=(5, 16, 16, 3))
  assert judge.features(images).shape == (5, config.judge.feature_size)
  labels = judge.labels((images * 255).astype(np.uint8))
  assert labels.shape == (5,) and set(labels) <= set(range(4))
  entropy = judge.map_entropy(images)
  assert entropy.shape == (5,)
  assert np.all((0 <= entropy) & (entropy <= np.log(config.judge.map_classes)))


def test_judge_refuses_other_data_and_sizes(judge_run):
  workdir, _ = judge_run
  config = artefacts.load_run_config(workdir)
  with pytest.raises(ValueError, match="image_size"):
    judging.Judge.from_workdir(
        workdir, {**config.data.to_dict(), "image_size": 32}
    )
  with pytest.raises(ValueError, match="name"):
    judging.Judge.from_workdir(
        workdir, {**config.data.to_dict(), "name": "photos"}
    )
  judge = judging.Judge.from_workdir(workdir)
  with pytest.raises(ValueError, match=r"\[N, 16, 16, 3\]"):
    judge.features(np.zeros((2, 32, 32, 3)))


def test_a_judge_trained_on_mirrors_labels_an_image_with_its_mirror(
    tmp_path,
):
  import jax  # pylint: disable=g-import-not-at-top
  from conftest import tiny_config  # pylint: disable=g-import-not-at-top
  from maskgit_edit import train  # pylint: disable=g-import-not-at-top

  config = tiny_config("judge_fashion_mnist.py", total_steps=2)
  config.data.fashion_mnist_dir = str(tmp_path / "fm")
  _fashion_files(tmp_path / "fm")
  train.train_and_evaluate(config, str(tmp_path / "judge"))
  judge = judging.Judge.from_workdir(str(tmp_path / "judge"))
  images = np.random.default_rng(0).uniform(size=(6, 16, 16, 3))
  logits = lambda x: judge.model.apply({"params": judge.params}, x)
  expected = np.argmax(logits(images) + logits(images[:, :, ::-1]), -1)
  np.testing.assert_array_equal(judge.labels(images), expected)
  assert not np.array_equal(
      jax.nn.softmax(logits(images)), jax.nn.softmax(logits(images[:, :, ::-1]))
  )


def _fashion_files(folder):
  from maskgit_edit.data import fashion_mnist  # pylint: disable=g-import-not-at-top

  folder.mkdir()
  rng = np.random.default_rng(0)
  for split in ("train", "test"):
    images_name, labels_name = fashion_mnist.FILES[split]
    fashion_mnist.write_idx(
        str(folder / images_name), rng.integers(0, 256, (20, 28, 28))
    )
    fashion_mnist.write_idx(str(folder / labels_name), np.arange(20) % 10)


def test_realism_score_is_high_inside_the_real_set_and_low_far_from_it():
  rng = np.random.default_rng(0)
  reference = rng.normal(size=(400, 4))
  scores = judging.realism_scores(
      np.stack([np.zeros(4), np.full(4, 10.0)]), reference, k=3
  )
  assert scores[0] > 1.0 > scores[1]
  # k-th neighbour radii on a line: neighbours at distance 1, 2, ...
  line = np.arange(10.0)[:, None]
  np.testing.assert_allclose(judging.knn_radii(line, 1), 1.0)
  np.testing.assert_allclose(
      judging.knn_radii(line, 2)[[0, 5, 9]], [2.0, 1.0, 2.0]
  )


def test_set_difference_intervals_hold_the_estimate_and_order_sets():
  """The outside audit's simulation: 64 dimensions, 1,000 points against
  5,000 from one distribution. A bootstrap of one FID lay wholly above the
  estimate; the difference of two sets' FIDs holds it, and 0."""
  rng = np.random.default_rng(0)
  reference = rng.normal(size=(5000, 64))
  a, b = rng.normal(size=(2, 1000, 64))
  realism_a = rng.normal(size=1000)
  realism_b = realism_a[::-1]  # The same values, unpaired.
  same = judging.set_difference(
      a, b, realism_a, realism_b, reference, num_bootstrap=100
  )
  for name in ("fid", "realism"):
    assert same[f"{name}_low"] < 0 < same[f"{name}_high"]
    assert same[f"{name}_low"] <= same[name] <= same[f"{name}_high"]
  # A shifted set, or an item-wise perturbation of a (paired), is apart.
  shifted = judging.set_difference(
      a, b + 0.2, realism_a, realism_b - 0.2, reference, num_bootstrap=100
  )
  assert shifted["fid_low"] > 0 and shifted["realism_high"] < 0
  np.testing.assert_allclose(shifted["fid"], 64 * 0.04, rtol=0.3)
  noisy = judging.set_difference(
      a,
      a + 0.3 * rng.normal(size=a.shape),
      realism_a,
      realism_a - 0.05,
      reference,
      paired=True,
      num_bootstrap=100,
  )
  assert noisy["fid_low"] > 0 and noisy["realism_high"] < 0
  with pytest.raises(ValueError, match="one size"):
    judging.set_difference(
        a, b[:10], realism_a, realism_b[:10], reference, paired=True
    )


@pytest.mark.xdist_group("tiny_runs")
def test_sample_quality_writes_every_row(tiny_runs, judge_run, tmp_path):
  report = sample_quality.main(
      [
          f"--judge_workdir={judge_run[0]}",
          f"--tokenizer_workdir={tiny_runs['tokenizer']}",
          f"--transformer_workdir={tiny_runs['maskgit']}",
          f"--weak_transformer_workdir={tiny_runs['maskgit']}",
          "--num_images=12",
          f"--out_dir={tmp_path}",
      ]
  )
  names = [row["name"] for row in report["rows"]]
  assert names == [
      "real test images (floor)",
      "tokenizer reconstructions",
      "samples, weak model",
      "samples",
  ]
  for row in report["rows"]:
    assert len(row["realism_scores"]) == 12
    assert len(row["map_entropies"]) == 12
  # The same model and seed as "weak" and as "samples": the same images.
  assert report["rows"][2]["fid"] == report["rows"][3]["fid"]
  assert {"accuracy_ratio", "fid_ratio"} <= set(report)
  for name in ("quality.json", "quality.md", "samples.png"):
    assert os.path.exists(tmp_path / name)
  assert json.loads((tmp_path / "quality.json").read_text())["num_images"] == 12
