"""scripts/main.py (maskgit_edit.pipeline) runs the whole pipeline on a user's folder of images,
and resumes after a kill."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from maskgit_edit import pipeline
from maskgit_edit.data import fashion_mnist
from maskgit_edit.data import shapes

from conftest import ROOT


def test_quick_pipeline_on_a_folder_of_images_resumes_after_a_kill(tmp_path):
  images = shapes.ShapesSource(24, 150, 5, "train").get(np.arange(150))[0]
  (tmp_path / "pics" / "nested").mkdir(parents=True)
  for i, image in enumerate(images):
    folder = tmp_path / "pics" / ("nested" if i % 3 == 0 else "")
    Image.fromarray(image).save(folder / f"image{i}.png")
  workdir = tmp_path / "run"
  command = [
      sys.executable,
      "scripts/main.py",
      f"--data=folder:{tmp_path}/pics",
      "--quick",
      f"--workdir={workdir}",
  ]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  # Killed (with its stage) while the transformer trains, then rerun.
  killed = subprocess.Popen(
      command,
      cwd=ROOT,
      text=True,
      stdout=subprocess.PIPE,
      stderr=subprocess.DEVNULL,
      env=env,
      start_new_session=True,
  )
  for line in killed.stdout:
    if line.startswith("[maskgit] $"):
      break
  time.sleep(3)
  os.killpg(killed.pid, signal.SIGKILL)
  killed.wait()
  killed.stdout.close()
  assert not (workdir / "maskgit" / "final_metrics.json").exists()
  result = subprocess.run(
      command,
      cwd=ROOT,
      text=True,
      capture_output=True,
      timeout=900,
      env=env,
  )
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert "[tokenizer] done already" in result.stdout
  # Unlabelled images: an unconditional transformer, and no judge stages.
  config = json.loads((workdir / "maskgit" / "config.json").read_text())
  assert config["model"]["class_conditional"] is False
  assert not (workdir / "judge").exists()
  results = json.loads((workdir / "edits" / "results.json").read_text())
  assert results["num_strokes"] == 8
  assert (workdir / "imgs" / "folder_pics_quick_comparison_grid.png").exists()


@pytest.mark.skipif(
    not os.path.exists(fashion_mnist.DEBIAN_DIR),
    reason="dataset-fashion-mnist is not installed",
)
def test_quick_pipeline_on_fashion_mnist_and_its_results_page(tmp_path):
  runs = tmp_path / "runs"
  result = subprocess.run(
      [
          sys.executable,
          "scripts/main.py",
          "--quick",
          f"--workdir={runs / 'fashion_mnist'}",
      ],
      cwd=ROOT,
      text=True,
      capture_output=True,
      timeout=900,
      env=dict(os.environ, JAX_PLATFORMS="cpu"),
  )
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  config = json.loads((runs / "fashion_mnist/maskgit/config.json").read_text())
  assert config["model"]["class_conditional"] is True
  assert config["model"]["class_dropout"] > 0
  assert (runs / "fashion_mnist/quality/quality.md").exists()
  write = subprocess.run(
      [
          sys.executable,
          "scripts/write_results.py",
          f"--runs_dir={runs}",
          f"--out={tmp_path / 'results.md'}",
      ],
      cwd=ROOT,
      text=True,
      capture_output=True,
      env=dict(os.environ, JAX_PLATFORMS="cpu"),
  )
  assert write.returncode == 0, write.stderr[-3000:]
  text = (tmp_path / "results.md").read_text()
  assert "| Quickstart |" in text and "judge-FID" in text


def test_window_study_stages_pair_every_run_with_the_full_decode():
  stages = {
      name: command
      for name, command, _ in pipeline.stages(
          "/w",
          "shapes",
          "pretrained",
          8,
          pretrained=True,
          window_rings=(2,),
          full_pass_every=3,
      )
  }
  runs = ["edits_window_full_reuse3", "edits_window_2", "edits_window_2_reuse3"]
  assert [n for n in stages if n.startswith("edits_window")] == [
      "edits_window_full",
      *runs,
  ]
  assert "--full_pass_every=3" in stages["edits_window_2_reuse3"]
  assert "--window=2" in stages["edits_window_2_reuse3"]
  assert not any(
      a.startswith(("--window", "--full_pass"))
      for a in stages["edits_window_full"]
  )
  compared = stages["windows"]
  assert compared[compared.index("--runs") + 1 : -1] == [
      f"/w/{name}/results.json" for name in runs
  ]
