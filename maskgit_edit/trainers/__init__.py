"""Trainers by name: each module has `make_task(config, workdir) -> loop.Task`."""

import importlib

NAMES = ("tokenizer", "maskgit", "reweight", "iterate", "judge")


def make_task(config, workdir):
  if config.trainer not in NAMES:
    raise ValueError(
        f"Unknown trainer {config.trainer!r}; expected one of "
        f"{', '.join(NAMES)}."
    )
  module = importlib.import_module(f"maskgit_edit.trainers.{config.trainer}")
  return module.make_task(config, workdir)
