"""Test-wide settings (CPU only, no wandb) and the tiny trained runs.

Tests that need trained runs use the `tiny_runs` fixture and the
`xdist_group("tiny_runs")` mark, so that under `pytest -n 2 --dist loadgroup`
one worker trains them once.
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["WANDB_MODE"] = "disabled"
# The tests build the same programs many times, here and in the scripts they
# run as subprocesses (which inherit this): XLA's persistent cache compiles
# each once. Its keys hash the program, the jax version and the flags. A
# size bound turns on its file lock (parallel workers never read a
# half-written entry) and evicts the least recently used entries; delete
# the folder to start afresh.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    os.path.join(ROOT, ".pytest_cache", "jax_compilation_cache"),
)
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 << 30))
# Programs from 0.2 s of compiling, not only from the default 1 s: the quick
# pipeline from a cold cache took 136 s against 146 s. Not every program:
# each write lists the whole folder (the size bound), and the op-by-op
# programs of eager tests made thousands of entries (the suite took 21 min).
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

# Under `pytest -n 2 --dist loadgroup` a worker takes a group whole. The
# longest groups start first, so that neither is the tail of the run.
LONGEST_GROUPS_FIRST = ("multihost", "tiny_runs")


def _group_rank(item):
  groups = {mark.args[0] for mark in item.iter_markers("xdist_group")}
  ranks = [
      LONGEST_GROUPS_FIRST.index(g) for g in groups if g in LONGEST_GROUPS_FIRST
  ]
  return min(ranks, default=len(LONGEST_GROUPS_FIRST))


def pytest_collection_modifyitems(items):
  items.sort(key=_group_rank)  # stable: modules keep their order


def load_script(relative_path):
  """Imports a script of the repo (e.g. "scripts/run_edits.py") as a module."""
  from maskgit_edit import config_files  # pylint: disable=g-import-not-at-top

  return config_files.load_module(os.path.join(ROOT, relative_path))


def tiny_config(name, **overrides):
  from maskgit_edit import config_files  # pylint: disable=g-import-not-at-top

  c = config_files.load(os.path.join(ROOT, "configs", name) + ":runlocal")
  c.update(overrides)
  return c


def pretrained_test_images(num: int):
  """The first `num` held-out images of the committed reference models'
  data, float [num, 32, 32, 3] in [0, 1], and their labels [num]."""
  # pylint: disable=g-import-not-at-top
  import numpy as np
  from maskgit_edit import artefacts
  from maskgit_edit import data
  from maskgit_edit import images as images_lib

  config = artefacts.load_run_config(artefacts.pretrained_runs()["tokenizer"])
  images, labels = data.get_source(config.data, "test").get(np.arange(num))
  return images_lib.to_float(images), labels


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
  """Workdirs of a runlocal tokenizer and transformer (and their metrics)."""
  from maskgit_edit import train  # pylint: disable=g-import-not-at-top

  root = tmp_path_factory.mktemp("tiny_runs")
  runs = {
      "tokenizer": str(root / "tokenizer"),
      "maskgit": str(root / "maskgit"),
  }
  _, runs["tokenizer_metrics"] = train.train_and_evaluate(
      tiny_config("tokenizer_shapes.py"), runs["tokenizer"]
  )
  _, runs["maskgit_metrics"] = train.train_and_evaluate(
      tiny_config("maskgit_shapes.py", tokenizer_workdir=runs["tokenizer"]),
      runs["maskgit"],
  )
  return runs


@pytest.fixture(scope="session")
def tiny_judge(tmp_path_factory):
  """Workdir of a runlocal judge (16 px shapes) and its final metrics."""
  from maskgit_edit import train  # pylint: disable=g-import-not-at-top

  workdir = str(tmp_path_factory.mktemp("judge"))
  _, metrics = train.train_and_evaluate(tiny_config("judge_shapes.py"), workdir)
  return workdir, metrics
