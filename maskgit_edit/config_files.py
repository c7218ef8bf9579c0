"""Config files by path: `path/to/config.py[:arg]`, loaded the way
`--config` loads them (config files and scripts are not in a package)."""

import importlib.util
import os

import ml_collections


def load_module(path: str):
  """Imports a Python file (a config file or a script) by path."""
  module_spec = importlib.util.spec_from_file_location(
      os.path.splitext(os.path.basename(path))[0], path
  )
  if module_spec is None or not os.path.isfile(path):
    raise FileNotFoundError(f"No config file {path!r}.")
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def load(spec: str) -> ml_collections.ConfigDict:
  """Loads `path/to/config.py[:arg]` the way `--config` does."""
  path, _, arg = spec.partition(":")
  module = load_module(path)
  return module.get_config(arg) if arg else module.get_config()
