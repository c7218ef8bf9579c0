"""Command-line tools answer bad input with one line and status 2."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT


def _run(args, **env):
  return subprocess.run(
      [sys.executable, *args],
      cwd=ROOT,
      text=True,
      capture_output=True,
      timeout=300,
      env=dict(os.environ, JAX_PLATFORMS="cpu", **env),
  )


def _assert_one_line_error(result, *words):
  assert result.returncode == 2, result.stderr[-2000:]
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
  for word in words:
    assert word in lines[0]
  assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
  root = tmp_path_factory.mktemp("pngs")
  image = np.zeros((32, 32, 3), np.uint8)
  Image.fromarray(image).save(root / "source.png")
  Image.fromarray(image[:16, :16, 0]).save(root / "small_mask.png")
  (root / "not_an_image.png").write_text("hello")
  return root


@pytest.mark.parametrize(
    "name,flags,words",
    [
        (
            "missing source",
            ["--source=nope.png", "--mask=nope.png"],
            ["nope.png"],
        ),
        (
            "not an image",
            ["--source={root}/not_an_image.png", "--mask={root}/source.png"],
            ["not_an_image.png"],
        ),
        (
            "sizes differ",
            ["--source={root}/source.png", "--mask={root}/small_mask.png"],
            ["mask"],
        ),
        (
            "no full pass",
            [
                "--source={root}/source.png",
                "--mask={root}/source.png",
                "--full_pass_every=0",
            ],
            ["full_pass_every must be >= 1"],
        ),
    ],
)
def test_edit_cli(pngs, name, flags, words):
  del name
  result = _run(
      [
          "-m",
          "maskgit_edit.edit",
          *[f.format(root=pngs) for f in flags],
          f"--out={pngs}/out.png",
      ]
  )
  _assert_one_line_error(result, *words)


def test_edit_cli_names_swapped_runs_and_a_missing_label(pngs):
  pretrained = os.path.join(ROOT, "pretrained", "fashion_mnist")
  common = [
      f"--source={pngs}/source.png",
      f"--mask={pngs}/source.png",
      f"--out={pngs}/out.png",
  ]
  result = _run(
      [
          "-m",
          "maskgit_edit.edit",
          *common,
          f"--tokenizer_workdir={pretrained}/maskgit",
          f"--transformer_workdir={pretrained}/tokenizer",
      ]
  )
  _assert_one_line_error(result, "not a tokenizer run", "swapped")
  # Without JAX_PLATFORMS, JAX looks for a TPU: no INFO line about it.
  env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
  result = subprocess.run(
      [sys.executable, "-m", "maskgit_edit.edit", *common],
      cwd=ROOT,
      text=True,
      capture_output=True,
      timeout=300,
      env=env,
  )
  _assert_one_line_error(result, "class-conditional", "--label")


def test_scripts_name_a_folder_that_is_not_a_run(tmp_path):
  result = _run(
      [
          "make_strokes.py",
          f"--run={tmp_path}",
          "--num_images=2",
          f"--out={tmp_path}/strokes",
      ]
  )
  _assert_one_line_error(result, "config.json")
  result = _run(
      [
          "scripts/run_edits.py",
          f"--manifest={tmp_path}/m.json",
          f"--tokenizer_workdir={tmp_path}",
          f"--transformer_workdir={tmp_path}",
          f"--out_dir={tmp_path}/out",
      ]
  )
  _assert_one_line_error(result, "m.json")


def test_traceback_on_request(tmp_path):
  result = _run(
      [
          "make_strokes.py",
          f"--run={tmp_path}",
          "--num_images=2",
          f"--out={tmp_path}/strokes",
      ],
      MASKGIT_EDIT_TRACEBACK="1",
  )
  assert result.returncode != 0 and "Traceback" in result.stderr
