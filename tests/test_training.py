"""End-to-end runs of the trainers and the loop's guarantees (tiny configs)."""

import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_edit import artefacts
from maskgit_edit import compiling
from maskgit_edit import data as data_lib
from maskgit_edit import images as images_lib
from maskgit_edit import train
from maskgit_edit.trainers import loop
from maskgit_edit.trainers import maskgit

from conftest import ROOT, tiny_config as config

pytestmark = pytest.mark.xdist_group("tiny_runs")


@pytest.fixture(scope="module")
def tokenizer_run(tiny_runs):
  return tiny_runs["tokenizer"], tiny_runs["tokenizer_metrics"]


def maskgit_config(tokenizer_workdir, **overrides):
  return config(
      "maskgit_shapes.py", tokenizer_workdir=tokenizer_workdir, **overrides
  )


def test_tokenizer_run_writes_its_artefacts(tokenizer_run, tmp_path):
  workdir, metrics = tokenizer_run
  for name in (
      "config.json",
      "metrics.jsonl",
      artefacts.STARTED,
      "tokenizer_params.msgpack",
      "tokens_train.npz",
      "tokens_test.npz",
      "reconstructions.png",
  ):
    assert os.path.exists(os.path.join(workdir, name)), name
  # From the run's first start, which a later rewrite of config.json keeps.
  seconds = artefacts.wall_seconds(workdir)
  os.utime(os.path.join(workdir, "config.json"))
  assert 0 < artefacts.wall_seconds(workdir) == seconds
  # A run from before started.txt whose config.json was rewritten later.
  old_run = tmp_path / "old_run"
  shutil.copytree(workdir, old_run)
  os.remove(old_run / artefacts.STARTED)
  os.utime(old_run / "config.json", (2e9, 2e9))
  assert 0 < artefacts.wall_seconds(str(old_run)) <= seconds
  tokens, labels = artefacts.load_token_cache(workdir, "train")
  assert tokens.shape == (64, 8, 8) and labels.shape == (64,)
  assert 0 <= tokens.min() and tokens.max() < 16
  assert {
      "test_psnr",
      "test_psnr_edges",
      "test_psnr_flat",
      "test_codes_used",
      "test_perplexity",
  } <= set(metrics)
  model, params, run_config = artefacts.load_tokenizer(workdir)
  images = jnp.zeros((1, 16, 16, 3))
  assert model.apply(
      {"params": params}, images, method=model.tokenize
  ).shape == (1, 8, 8)
  # The cache (train split: encoded without decoding) holds the model's codes.
  source = data_lib.get_source(run_config.data, "train")
  images, cached_labels = source.get(np.arange(8))
  codes = model.apply(
      {"params": params}, images_lib.to_float(images), method=model.tokenize
  )
  np.testing.assert_array_equal(codes, tokens[:8])
  np.testing.assert_array_equal(cached_labels, labels[:8])


def test_tokenizer_trains_with_the_adversarial_loss(tmp_path):
  cfg = config("tokenizer_shapes.py")
  cfg.log_every = 1
  cfg.tokenizer.adversarial.update(weight=0.1, start_step=2)
  train.train_and_evaluate(cfg, str(tmp_path))
  with open(tmp_path / "metrics.jsonl") as f:
    rows = [r for r in map(json.loads, f) if "disc_loss" in r]
  assert [r["step"] for r in rows] == [1, 2, 3, 4]
  for row in rows:
    assert np.isfinite(row["disc_loss"]) and row["disc_loss"] > 0
    # The generator pays the discriminator's loss from start_step on.
    gap = row["loss"] - row["mse"] - row["quantizer_loss"]
    assert (gap > 1e-3) == (row["step"] > 2), row


def test_maskgit_run_evaluates_and_samples(tiny_runs):
  workdir, metrics = tiny_runs["maskgit"], tiny_runs["maskgit_metrics"]
  assert os.path.exists(os.path.join(workdir, "samples.png"))
  assert {"test_masked_accuracy", "unigram_accuracy"} <= set(metrics)
  lines = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [l["step"] for l in lines if "loss" in l] == [2, 4]
  assert all(np.isfinite(l["loss"]) for l in lines if "loss" in l)


def test_resume_gives_the_uninterrupted_result(tokenizer_run, tmp_path):
  cfg = maskgit_config(tokenizer_run[0], checkpoint_every=2)
  straight, _ = train.train_and_evaluate(cfg, str(tmp_path / "a"))
  train.train_and_evaluate(cfg, str(tmp_path / "b"), stop_after=2)
  assert artefacts.load_run_config(str(tmp_path / "b"))  # written at start
  resumed, _ = train.train_and_evaluate(cfg, str(tmp_path / "b"))
  jax.tree.map(
      np.testing.assert_array_equal, straight["params"], resumed["params"]
  )
  jax.tree.map(
      np.testing.assert_array_equal, straight["opt_state"], resumed["opt_state"]
  )


def test_checkpoint_that_does_not_fit_the_config(tokenizer_run, tmp_path):
  train.train_and_evaluate(
      maskgit_config(tokenizer_run[0]), str(tmp_path), stop_after=2
  )
  bigger = maskgit_config(tokenizer_run[0])
  bigger.model.hidden_size = 48
  with pytest.raises(ValueError, match="does not fit"):
    train.train_and_evaluate(bigger, str(tmp_path))
  assert loop.checkpoint_manager(str(tmp_path), bigger).latest_step() == 2


def _initial_params(tokenizer_workdir, **mvtm):
  cfg = maskgit_config(tokenizer_workdir)
  cfg.mvtm.update(mvtm)
  task = maskgit.MaskGitTask.from_runs(cfg)
  return task, task.init_state(jax.random.key(0))["params"]["Embed_0"]


def _pairwise_distances(x_NxD):
  return np.linalg.norm(x_NxD[:, None] - x_NxD[None], axis=-1)


def test_informed_init_keeps_codebook_geometry_and_grid_locality(tokenizer_run):
  workdir = tokenizer_run[0]
  _, random = _initial_params(
      workdir, init_words="random", init_positions="random"
  )
  task, informed = _initial_params(
      workdir, init_words="codebook", init_positions="sincos2d"
  )
  codes = task.layout.codebook_size
  words = np.asarray(informed["word_embeddings"]["embedding"])
  codebook = artefacts.load_tokenizer(workdir)[1]["quantizer"]["codebook"]
  # Code distances are the codebook's, up to one scale; other rows untouched.
  ratio = _pairwise_distances(words[:codes]) / np.maximum(
      _pairwise_distances(np.asarray(codebook)), 1e-9
  )
  off_diagonal = ~np.eye(codes, dtype=bool)
  np.testing.assert_allclose(ratio[off_diagonal], ratio[0, 1], rtol=1e-3)
  np.testing.assert_allclose(words[:codes].std(), 0.02, rtol=1e-3)
  np.testing.assert_array_equal(
      words[codes:], random["word_embeddings"]["embedding"][codes:]
  )
  # Grid positions: the nearer along a row or a column, the more similar.
  positions = np.asarray(informed["position_embeddings"]["embedding"])
  offset, side = task.layout.offset, task.layout.grid_side
  grid = positions[offset:].reshape(side, side, -1)
  along_row = grid[0] @ grid[0, 0]
  along_column = grid[:, 0] @ grid[0, 0]
  for similarity in (along_row, along_column):
    assert similarity[0] > similarity[1] > similarity[2] > similarity[3:].max()
  np.testing.assert_array_equal(
      positions[:offset], random["position_embeddings"]["embedding"][:offset]
  )


def test_flat_patch_codes_counts_the_codes_of_the_commonest_flat_patch():
  from maskgit_edit.trainers import tokenizer  # pylint: disable=g-import-not-at-top

  images = np.zeros((2, 4, 4, 3), np.uint8)  # 2x2 tokens of 2x2 pixels.
  images[0, :2, 2:] = 9  # A flat grey patch; the commonest stays black.
  images[1, 2:, 2:, 0] = [[1, 2], [3, 4]]  # Not flat.
  indices = np.array([[[0, 5], [0, 1]], [[0, 0], [2, 7]]])
  # The six black patches get codes 0, 0, 1 and 0, 0, 2.
  figures = tokenizer.flat_patch_codes(images, indices)
  assert figures["flat_patch_codes"] == 3
  np.testing.assert_allclose(figures["flat_patch_top_share"], 4 / 6)


def test_class_dropout_trains_on_the_null_class(tokenizer_run):
  def step_of(class_dropout):
    """loss and grad norm of one train step, given the batch's labels."""
    cfg = maskgit_config(tokenizer_run[0])
    cfg.model.class_dropout = class_dropout
    task = maskgit.MaskGitTask.from_runs(cfg)
    assert task.layout.null_class and task.layout.null_label == 4
    state = compiling.one_off_jit(task.init_state)(jax.random.key(0))
    train_step = jax.jit(task.train_step)

    def step(labels_B):
      batch = {**task.examples(np.arange(8)), "labels": labels_B}
      metrics = train_step(state, batch, jax.random.key(1))[1]
      return float(metrics["loss"]), float(metrics["grad_norm"])

    return step

  labels_B = np.arange(8) % 4
  nulls_B = np.full(8, 4)
  dropped = step_of(1.0)(labels_B)
  kept = step_of(1e-9)
  # Dropout 1 replaces every class by the null class; a tiny dropout keeps them.
  assert dropped == kept(nulls_B)
  assert dropped != kept(labels_B)


@pytest.mark.parametrize("field", ["init_words", "init_positions"])
def test_unknown_embedding_init(tokenizer_run, field):
  with pytest.raises(ValueError, match=f"Unknown mvtm.{field} 'sparse'"):
    _initial_params(tokenizer_run[0], **{field: "sparse"})


def test_unknown_trainer(tmp_path):
  c = config("tokenizer_shapes.py", trainer="gan")
  with pytest.raises(ValueError, match="Unknown trainer 'gan'"):
    train.train_and_evaluate(c, str(tmp_path))


class _QuadraticTask:
  """Fits w to targets; turns NaN at step `nan_at` to test the guard."""

  def __init__(self, nan_at):
    self.nan_at = nan_at

  def initial_params(self):
    return None

  def init_state(self, rng, params):
    del rng, params
    return {"w": jnp.zeros((4,)), "step": jnp.zeros((), jnp.int32)}

  def batch(self, step):
    return {"x": np.full((2, 4), step, np.float32)}

  def train_step(self, state, batch, rng):
    del rng
    loss = jnp.mean((state["w"] - batch["x"]) ** 2)
    poison = jnp.where(state["step"] + 1 >= self.nan_at, jnp.nan, 1.0)
    return (
        {"w": (state["w"] + 0.1) * poison, "step": state["step"] + 1},
        {"loss": loss},
    )

  def evaluate(self, state):
    return {}

  def finish(self, state, workdir):
    return {}


def test_non_finite_state_stops_and_keeps_last_good_checkpoint(tmp_path):
  c = config(
      "tokenizer_shapes.py", total_steps=6, checkpoint_every=1, log_every=1
  )
  with pytest.raises(
      loop.NonFiniteLossError, match=r"last good checkpoint \(step 2\)"
  ):
    loop.train(c, str(tmp_path), _QuadraticTask(nan_at=3))
  manager = loop.checkpoint_manager(str(tmp_path), c)
  assert manager.latest_step() == 2


_MULTI_DEVICE_SCRIPT = """
import json, sys
from maskgit_edit import config_files, train
c = config_files.load(sys.argv[1])
c.tokenizer_workdir = sys.argv[2]
c.shard_params, c.shard_min_size = sys.argv[4] == "shard", 64
_, m = train.train_and_evaluate(c, sys.argv[3])
import jax
from maskgit_edit.trainers import loop
mesh = loop.make_mesh()
whole = jax.device_put(jax.numpy.ones(8), jax.NamedSharding(mesh, jax.P()))
split = jax.device_put(jax.numpy.ones(8), jax.NamedSharding(mesh, jax.P("data")))
copies = [len(loop.single_copy(t)[0].devices()) for t in ([whole], [whole, split])]
print(json.dumps({"devices": jax.device_count(), "copy_devices": copies,
                  "loss": [json.loads(l)["loss"] for l in open(sys.argv[3] + "/metrics.jsonl") if '"loss"' in l]}))
"""


def _run_with_devices(n, tokenizer_workdir, workdir, shard=False):
  env = dict(
      os.environ,
      XLA_FLAGS=f"--xla_force_host_platform_device_count={n}",
      JAX_PLATFORMS="cpu",
      WANDB_MODE="disabled",
  )
  out = subprocess.run(
      [
          sys.executable,
          "-c",
          _MULTI_DEVICE_SCRIPT,
          os.path.join(ROOT, "configs", "maskgit_shapes.py") + ":runlocal",
          tokenizer_workdir,
          workdir,
          "shard" if shard else "replicate",
      ],
      env=env,
      cwd=ROOT,
      capture_output=True,
      text=True,
      check=True,
  )
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_four_devices_match_one_device(tokenizer_run, tmp_path):
  one = _run_with_devices(1, tokenizer_run[0], str(tmp_path / "one"))
  four = _run_with_devices(4, tokenizer_run[0], str(tmp_path / "four"))
  sharded = _run_with_devices(
      4, tokenizer_run[0], str(tmp_path / "fsdp"), shard=True
  )
  assert (one["devices"], four["devices"]) == (1, 4)
  # Evaluation sees a replicated state once, a sharded one as it is.
  assert (one["copy_devices"], four["copy_devices"]) == ([1, 1], [1, 4])
  np.testing.assert_allclose(one["loss"], four["loss"], rtol=1e-5)
  np.testing.assert_allclose(one["loss"], sharded["loss"], rtol=1e-5)


def _process_batches(task, step, monkeypatch, count=2):
  """task.batch(step) as each of `count` processes reads it."""
  monkeypatch.setattr(jax, "process_count", lambda: count)
  parts = []
  for index in range(count):
    monkeypatch.setattr(jax, "process_index", lambda i=index: i)
    parts.append(task.batch(step))
  monkeypatch.undo()
  return parts


@pytest.mark.parametrize("source", ["shapes", "folder", "token cache", "judge"])
def test_each_process_reads_its_own_slice_of_every_batch(
    source, tokenizer_run, tmp_path, monkeypatch
):
  from maskgit_edit.trainers import judge  # pylint: disable=g-import-not-at-top
  from maskgit_edit.trainers import tokenizer  # pylint: disable=g-import-not-at-top

  if source == "token cache":
    task = maskgit.MaskGitTask.from_runs(maskgit_config(tokenizer_run[0]))
  elif source == "judge":
    task = judge.JudgeTask(config("judge_shapes.py"))
  else:
    c = config("tokenizer_shapes.py")
    if source == "folder":
      images = np.random.default_rng(0).integers(0, 255, (12, 16, 16, 3))
      for i, image in enumerate(images.astype(np.uint8)):
        images_lib.save_png(image / 255.0, str(tmp_path / f"{i}.png"))
      c.data.update(name=f"folder:{tmp_path}", folder_test_fraction=0.25)
    task = tokenizer.TokenizerTask(c)
  for step in (0, 7):
    whole = task.batch(step)
    parts = _process_batches(task, step, monkeypatch)
    for name, array in whole.items():
      halves = [np.asarray(part[name]) for part in parts]
      assert halves[0].shape[0] == halves[1].shape[0] == len(array) // 2
      np.testing.assert_array_equal(np.concatenate(halves), array)
