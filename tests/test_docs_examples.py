"""The usage examples of the docs run: docstring doctests and the README's
edit commands, on the committed models."""

import doctest
import os
import re
import shlex
import subprocess
import sys

import numpy as np
from PIL import Image

from maskgit_edit import edit
from maskgit_edit import images as images_lib

from conftest import ROOT, pretrained_test_images


def test_docstring_examples():
  failures, tried = doctest.testmod(edit, optionflags=doctest.ELLIPSIS)
  assert tried > 0 and failures == 0


def _readme_commands(prefix: str) -> list[list[str]]:
  """The README's shell commands that start with `prefix`, continuation
  lines joined and comments dropped."""
  text = open(os.path.join(ROOT, "README.md")).read()
  commands = []
  for block in re.findall(r"```bash\n(.*?)```", text, re.S):
    for command in block.replace("\\\n", " ").splitlines():
      command = command.split(" #")[0].strip()
      if command.startswith(prefix):
        commands.append(shlex.split(command))
  return commands


def test_the_readme_edit_command_on_the_committed_models(tmp_path):
  (command,) = [
      c
      for c in _readme_commands("python -m maskgit_edit.edit")
      if "--source" in c
      and "--tokenizer_workdir" not in c
      and "--config" not in c
  ]
  sources, _ = pretrained_test_images(1)
  mask = np.zeros((32, 32), bool)
  mask[8:20, 8:20] = True
  stroke = np.where(mask[..., None], [1.0, 0.0, 0.0], sources[0])
  named = {
      "s.png": sources[0],
      "k.png": stroke,
      "m.png": mask[..., None] * np.ones(3),
  }
  for name, image in named.items():
    images_lib.save_png(image.astype(np.float32), str(tmp_path / name))
  subprocess.run(
      [sys.executable, *command[1:]],
      cwd=tmp_path,
      check=True,
      env=dict(os.environ, JAX_PLATFORMS="cpu"),
  )
  out = tmp_path / command[command.index("--out") + 1]
  edited = images_lib.to_float(np.asarray(Image.open(out).convert("RGB")))
  assert edited.shape == (32, 32, 3)
  # Rows far from the mask are the source's; the edit changed the masked box.
  np.testing.assert_allclose(edited[:4], sources[0][:4], atol=1 / 255)
  assert np.abs(edited[mask] - sources[0][mask]).max() > 0.1
