"""Two JAX processes on localhost train exactly as one process with two devices.

Each process of the pair has one CPU device and reads its half of every
global batch; the single process has two devices and reads whole batches.
Same global batch, same mesh size: losses and parameters must agree (up to
the summation order of the cross-process all-reduce), and a checkpoint
written by either resumes in the other.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import flax.serialization
import jax
import numpy as np
import pytest

from conftest import ROOT

pytestmark = pytest.mark.xdist_group("multihost")

TIMEOUT_S = 300


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _command(config: str, workdir: str, overrides=()):
  return [
      sys.executable,
      "-m",
      "maskgit_edit.train",
      f"--config={os.path.join(ROOT, 'configs', config)}:runlocal",
      f"--workdir={workdir}",
      *overrides,
  ]


def _env(num_devices: int):
  env = dict(
      os.environ,
      JAX_PLATFORMS="cpu",
      WANDB_MODE="disabled",
      XLA_FLAGS=f"--xla_force_host_platform_device_count={num_devices}",
  )
  return env


def _check(procs):
  for proc in procs:
    out, _ = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, out[-3000:]


def _start(command, num_devices):
  return subprocess.Popen(
      command,
      env=_env(num_devices),
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
      cwd=ROOT,
  )


def _start_pair(command_of, num_devices=1):
  """Two processes of one JAX runtime on localhost; `command_of(flags)` is
  the command line of a process given its --distributed settings."""
  port = _free_port()
  return [
      _start(
          command_of(
              [
                  f"--coordinator_address=127.0.0.1:{port}",
                  "--num_processes=2",
                  f"--process_id={i}",
              ]
          ),
          num_devices,
      )
      for i in range(2)
  ]


def _trainer_pair(config, workdir, overrides=()):
  return _start_pair(
      lambda flags: _command(
          config,
          workdir,
          [*overrides, "--config.distributed=True"]
          + [f"--config.{f.removeprefix('--')}" for f in flags],
      )
  )


def train_single(config, workdir, overrides=()):
  _check([_start(_command(config, workdir, overrides), 2)])


def train_pair(config, workdir, overrides=()):
  _check(_trainer_pair(config, workdir, overrides))


def _params(workdir, name):
  with open(os.path.join(workdir, f"{name}_params.msgpack"), "rb") as f:
    return flax.serialization.msgpack_restore(f.read())


def _losses(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [row["loss"] for row in map(json.loads, f) if "loss" in row]


def assert_same_run(a, b, name):
  np.testing.assert_allclose(_losses(a), _losses(b), rtol=1e-5)
  jax.tree.map(
      lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6),
      _params(a, name),
      _params(b, name),
  )


def _rewind(workdir, to_step):
  """Leaves only the checkpoints up to `to_step`, as after a kill."""
  checkpoints = os.path.join(workdir, "checkpoints")
  for step in os.listdir(checkpoints):
    if step.isdigit() and int(step) > to_step:
      shutil.rmtree(os.path.join(checkpoints, step))
  for name in os.listdir(workdir):
    if name.endswith((".msgpack", ".json")) and name != "config.json":
      os.remove(os.path.join(workdir, name))
  # The log of the lost steps is written again on resume.
  log = os.path.join(workdir, "metrics.jsonl")
  with open(log) as f:
    kept = [line for line in f if json.loads(line)["step"] <= to_step]
  with open(log, "w") as f:
    f.writelines(kept)


@pytest.fixture(scope="module")
def tokenizer_runs(tmp_path_factory):
  root = tmp_path_factory.mktemp("multihost")
  single, pair = str(root / "single"), str(root / "pair")
  train_single("tokenizer_shapes.py", single)
  train_pair("tokenizer_shapes.py", pair)
  return root, single, pair


def test_two_processes_train_the_tokenizer_as_one(tokenizer_runs):
  _, single, pair = tokenizer_runs
  assert_same_run(single, pair, "tokenizer")
  # Process 0 alone writes the token cache; it matches the single run's.
  for name in ("tokens_train.npz", "tokens_test.npz"):
    with (
        np.load(os.path.join(single, name)) as a,
        np.load(os.path.join(pair, name)) as b,
    ):
      assert sorted(a.files) == sorted(b.files)
      for member in a.files:
        np.testing.assert_array_equal(a[member], b[member])


def test_checkpoints_resume_across_process_counts(tokenizer_runs):
  root, single, pair = tokenizer_runs
  pair_to_single, single_to_pair = (
      str(root / "pair_to_single"),
      str(root / "single_to_pair"),
  )
  shutil.copytree(pair, pair_to_single)
  shutil.copytree(single, single_to_pair)
  _rewind(pair_to_single, 2)
  _rewind(single_to_pair, 2)
  train_single("tokenizer_shapes.py", pair_to_single)
  train_pair("tokenizer_shapes.py", single_to_pair)
  assert_same_run(single, pair_to_single, "tokenizer")
  assert_same_run(single, single_to_pair, "tokenizer")


def test_two_processes_train_the_transformer_as_one(tokenizer_runs):
  root, single_tokenizer, _ = tokenizer_runs
  link = [f"--config.tokenizer_workdir={single_tokenizer}"]
  single, pair = str(root / "maskgit_single"), str(root / "maskgit_pair")
  train_single("maskgit_shapes.py", single, link)
  train_pair("maskgit_shapes.py", pair, link)
  assert_same_run(single, pair, "transformer")


def _checkpoint_steps(workdir):
  checkpoints = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(checkpoints):
    return []
  return sorted(int(s) for s in os.listdir(checkpoints) if s.isdigit())


def test_a_killed_process_stops_its_peer_and_both_resume(tmp_path):
  workdir = str(tmp_path / "pair")
  endless = [
      "--config.total_steps=1000000",
      "--config.checkpoint_every=20",
      "--config.heartbeat_timeout_s=10",
  ]
  procs = _trainer_pair("tokenizer_shapes.py", workdir, endless)
  deadline = time.monotonic() + TIMEOUT_S
  while not _checkpoint_steps(workdir) and time.monotonic() < deadline:
    assert all(p.poll() is None for p in procs), procs[0].communicate()[0]
    time.sleep(0.5)
  assert _checkpoint_steps(workdir), "no checkpoint within the timeout"
  procs[1].kill()
  killed_at = time.monotonic()
  out, _ = procs[0].communicate(timeout=TIMEOUT_S)
  # The survivor stops with an error, well within a few heartbeat timeouts.
  assert procs[0].returncode != 0, out[-2000:]
  assert time.monotonic() - killed_at < 120
  procs[1].communicate()
  # Only complete checkpoints are left: a restart of both resumes from the
  # last one and finishes.
  last = _checkpoint_steps(workdir)[-1]
  train_pair(
      "tokenizer_shapes.py",
      workdir,
      [f"--config.total_steps={last + 10}", "--config.checkpoint_every=20"],
  )
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    steps = [row["step"] for row in map(json.loads, f)]
  assert steps[-1] == last + 10
  assert os.path.exists(os.path.join(workdir, "tokenizer_params.msgpack"))


def test_edits_split_over_processes_and_devices_equal_one_device(tmp_path):
  """run_edits.py on two processes of two devices each (four workers, five
  batches: process 0 edits three, process 1 two) writes the files of a
  one-device run, bit for bit."""
  from maskgit_edit import artefacts  # pylint: disable=g-import-not-at-top
  from maskgit_edit import data as data_lib  # pylint: disable=g-import-not-at-top
  from maskgit_edit import strokes  # pylint: disable=g-import-not-at-top
  from maskgit_edit.study import outputs as outputs_lib  # pylint: disable=g-import-not-at-top
  from maskgit_edit.study import schema  # pylint: disable=g-import-not-at-top
  from conftest import load_script  # pylint: disable=g-import-not-at-top

  runs = artefacts.pretrained_runs()
  data_config = artefacts.load_run_config(runs["tokenizer"]).data
  sources, _ = data_lib.get_source(data_config, "test").get(np.arange(7))
  records = strokes.make_strokes(sources, strokes_per_image=2, seed=0)[:13]
  manifest = str(
      strokes.write_stroke_set(
          tmp_path / "strokes",
          sources,
          records,
          metadata={"data": data_config.to_dict(), "split": "test"},
      )
  )

  def argv(out_dir):
    return [
        "--manifest",
        manifest,
        "--tokenizer_workdir",
        runs["tokenizer"],
        "--transformer_workdir",
        runs["maskgit"],
        "--out_dir",
        out_dir,
        "--variants",
        "none",
        "context",
        "--knobs",
        "none=0",
        "context=0.5",
        "--batch_size",
        "3",
        "--swd_descriptors",
        "16",
        "--swd_min_resolution",
        "8",
        "--swd_projections",
        "32",
        "--swd_folds",
        "2",
    ]

  single = str(tmp_path / "single")
  load_script("scripts/run_edits.py").main(argv(single))
  pair = str(tmp_path / "pair")
  start = lambda extra=(): _start_pair(
      lambda flags: [
          sys.executable,
          "scripts/run_edits.py",
          *argv(pair),
          *extra,
          "--distributed",
          *flags,
      ],
      num_devices=2,
  )
  _check(start())
  # Outputs of another run in out_dir stop both processes at once.
  procs = start(["--seed=1"])
  outs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
  assert all(p.returncode != 0 for p in procs)
  assert "outputs of another run" in outs[0]
  assert "Process 0 refused the outputs" in outs[1]
  for variant, knob in (("none", 0.0), ("context", 0.5)):
    with (
        np.load(outputs_lib.output_path(single, variant, knob)) as a,
        np.load(outputs_lib.output_path(pair, variant, knob)) as b,
    ):
      assert sorted(a.files) == sorted(b.files)
      for name in a.files:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
  results = [
      schema.load_results(os.path.join(out, "results.json"))
      for out in (single, pair)
  ]
  assert results[0]["results"] == results[1]["results"]
