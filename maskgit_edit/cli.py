"""Command-line entry points: a user error is one line, not a traceback.

Bad input (a missing file, an unreadable image, sizes that differ, a knob out
of range, a folder that is not a run) raises ValueError or OSError with a
message that names the problem. `run` prints that message as
`error: <message>` on stderr and exits with status 2. Set
MASKGIT_EDIT_TRACEBACK=1 to see the traceback instead.
"""

import argparse
import logging
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from absl import flags

# JAX reports at INFO that there is no TPU on every start of a CLI (absl
# logs INFO): not news on a CPU or GPU machine.
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)

USER_ERRORS = (ValueError, OSError)
EXIT_USER_ERROR = 2


def run(main: Callable, *args):
  """Returns main(*args); exits with one line on a user error."""
  try:
    return main(*args)
  except USER_ERRORS as e:
    if os.environ.get("MASKGIT_EDIT_TRACEBACK"):
      raise
    fail(e)


def fail(message) -> NoReturn:
  """Exits with `error: <message>` on one line of stderr, status 2."""
  print(f"error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
  sys.exit(EXIT_USER_ERROR)


class ArgumentParser(argparse.ArgumentParser):
  """argparse whose errors are the project's one line (no usage dump)."""

  def error(self, message: str) -> NoReturn:
    fail(f"{message} (see --help)")


def parse_absl_flags(argv: list[str]) -> list[str]:
  """absl `app.run` flags_parser whose errors are one line."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail(e)
