"""The tree keeps the one format set in pyproject.toml (`pyink .` fixes it)."""

import subprocess
import sys

from conftest import ROOT


def test_the_tree_is_formatted_by_pyink():
  result = subprocess.run(
      [sys.executable, "-m", "pyink", "--check", "."],
      cwd=ROOT,
      capture_output=True,
      text=True,
  )
  assert result.returncode == 0, result.stderr[-3000:]
