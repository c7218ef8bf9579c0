"""scripts/main.py runs the whole pipeline on a user's folder of images."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from maskgit_edit.data import shapes

from conftest import ROOT


def test_quick_pipeline_on_a_folder_of_images(tmp_path):
  images = shapes.ShapesSource(24, 150, 5, "train").get(np.arange(150))[0]
  (tmp_path / "pics" / "nested").mkdir(parents=True)
  for i, image in enumerate(images):
    folder = tmp_path / "pics" / ("nested" if i % 3 == 0 else "")
    Image.fromarray(image).save(folder / f"image{i}.png")
  workdir = tmp_path / "run"
  result = subprocess.run(
      [sys.executable, "scripts/main.py", f"--data=folder:{tmp_path}/pics",
       "--quick", f"--workdir={workdir}"],
      cwd=ROOT, text=True, capture_output=True, timeout=900,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  # Unlabelled images: an unconditional transformer, and no judge stages.
  config = json.loads((workdir / "maskgit" / "config.json").read_text())
  assert config["model"]["class_conditional"] is False
  assert not (workdir / "judge").exists()
  results = json.loads((workdir / "edits" / "results.json").read_text())
  assert results["num_strokes"] == 8
  assert (workdir / "imgs" / "folder_pics_quick_comparison_grid.png").exists()
