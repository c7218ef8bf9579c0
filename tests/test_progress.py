"""Progress lines: counts, rate and ETA."""

import io

from maskgit_edit import progress as progress_lib


def test_lines_count_units_and_leave_out_an_unknown_eta():
  stream = io.StringIO()
  progress = progress_lib.Progress(10, done=4, unit="steps", stream=stream)
  assert progress.line("train").startswith("[4/10] train | ")
  assert progress.line("train").endswith("ETA ?")  # Nothing done yet.
  progress.step("train", count=2)
  line = stream.getvalue().strip()
  assert line.startswith("[6/10] train | ") and " steps/s, ETA " in line
  assert "steps/s" not in progress_lib.Progress(3).line("edits")
  unknown = progress_lib.Progress(None, done=7).line("download")
  assert unknown.startswith("[7] download | ") and "ETA" not in unknown
