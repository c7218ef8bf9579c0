"""Progress lines for long work: done / total, rate, elapsed time and ETA."""

import sys
import time


class Progress:
  """Counts units of work done out of a total and reports on them."""

  def __init__(
      self, total: int | None, *, done: int = 0, unit: str = "", stream=None
  ):
    """Args:
    total: units in the whole job (None: unknown, no ETA).
    done: units already done (a resumed job); the rate counts only those
      done from now on.
    unit: name of a unit in the rate ("steps": "2.1 steps/s"); "" leaves
      the rate out.
    stream: where `report` prints (None: the current sys.stdout).
    """
    self.total, self.done, self.unit, self.stream = total, done, unit, stream
    self._first, self._start = done, time.monotonic()

  def line(self, label: str) -> str:
    """`[done/total] label | 12s elapsed, 2.1 steps/s, ETA 40s`."""
    elapsed = time.monotonic() - self._start
    rate = (self.done - self._first) / elapsed if elapsed > 0 else 0.0
    figures = [f"{elapsed:.0f}s elapsed"]
    if self.unit:
      figures.append(f"{rate:.2f} {self.unit}/s")
    if self.total is None:
      return f"[{self.done}] {label} | {', '.join(figures)}"
    figures.append(
        f"ETA {(self.total - self.done) / rate:.0f}s" if rate > 0 else "ETA ?"
    )
    return f"[{self.done}/{self.total}] {label} | {', '.join(figures)}"

  def step(self, label: str, count: int = 1) -> None:
    """Counts `count` more units done and prints the line."""
    self.done += count
    self.report(label)

  def report(self, label: str) -> None:
    print(self.line(label), file=self.stream or sys.stdout, flush=True)
