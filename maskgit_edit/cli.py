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

from maskgit_edit import models
from maskgit_edit.decoding import sampling

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


def command_line(script: str, argv=None) -> str:
  """How a document names its making: `python <script> <args>`, the args
  being `argv` or, when None, this process's."""
  return " ".join(["python", script, *(sys.argv[1:] if argv is None else argv)])


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


def add_decode_flags(parser, names=tuple(sampling.DECODE_FLAGS)) -> None:
  """Adds --<name> for the `DecodeSettings` fields `names`
  (`sampling.DECODE_FLAGS`) to an argparse parser or an absl `FlagValues`:
  one spelling in every tool. Unset flags (None) keep the settings they
  override (`decode_overrides`)."""
  for name in names:
    kind, help_text = sampling.DECODE_FLAGS[name]
    help_text += " (default: the run's, the config's or the tool's setting)"
    if isinstance(parser, flags.FlagValues):
      define = {
          int: flags.DEFINE_integer,
          float: flags.DEFINE_float,
          str: flags.DEFINE_string,
      }[kind]
      define(name, None, help_text, flag_values=parser)
    else:
      parser.add_argument(f"--{name}", type=kind, default=None, help=help_text)


def add_matmul_dtype_flag(parser) -> None:
  """Adds --matmul_dtype (`models.transformer.MATMUL_DTYPES`, default
  float32) to an argparse parser or an absl `FlagValues`."""
  choices = models.transformer.MATMUL_DTYPES
  help_text = (
      "Operand dtype of the transformer's dense products (bfloat16: "
      "accumulated in float32, faster on CPUs with AVX-512 BF16)."
  )
  if isinstance(parser, flags.FlagValues):
    flags.DEFINE_enum(
        "matmul_dtype", "float32", choices, help_text, flag_values=parser
    )
  else:
    parser.add_argument(
        "--matmul_dtype", default="float32", choices=choices, help=help_text
    )


def decode_overrides(args) -> dict:
  """{field: value} of the decode flags given on the command line, from
  argparse's namespace or absl's `FlagValues`."""
  if isinstance(args, flags.FlagValues):
    values = {n: args[n].value for n in sampling.DECODE_FLAGS if n in args}
  else:
    values = {n: getattr(args, n, None) for n in sampling.DECODE_FLAGS}
  return {name: value for name, value in values.items() if value is not None}
