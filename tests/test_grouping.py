"""The README's test command (`pytest -n 2 --dist loadgroup`) runs each
`xdist_group` on one worker, so its session fixtures (the tiny runs, the
multi-host runs) are built once. pytest 9.2 broke this with xdist 3.8 (its
`nodeid` no longer reads the group suffix xdist adds), which split every
group and trained the tiny runs on both workers."""

import re
import subprocess
import sys


def test_each_group_runs_on_one_worker(tmp_path):
  (tmp_path / "test_grouped.py").write_text(
      "import pytest\n"
      "pytestmark = pytest.mark.xdist_group('g')\n"
      "@pytest.mark.parametrize('i', range(8))\n"
      "def test_grouped(i): pass\n"
  )
  (tmp_path / "test_free.py").write_text(
      "import pytest\n"
      "@pytest.mark.parametrize('i', range(8))\n"
      "def test_free(i): pass\n"
  )
  result = subprocess.run(
      [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup"]
      + ["-v", "-p", "no:cacheprovider", str(tmp_path)],
      cwd=tmp_path,
      capture_output=True,
      text=True,
  )
  assert result.returncode == 0, result.stdout[-3000:]
  workers = re.findall(r"\[(gw\d)\].*PASSED .*::(test_\w+)", result.stdout)
  grouped = {worker for worker, name in workers if name == "test_grouped"}
  assert len(workers) == 16, result.stdout[-3000:]
  assert len(grouped) == 1, f"the group ran on {sorted(grouped)}"
