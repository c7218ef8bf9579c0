"""What a finished run leaves in its workdir, and how later stages read it.

- `config.json`: the run's config (written by the metric writer).
- `<name>_params.msgpack`: final (EMA if used) parameters, in the same Flax
  msgpack format as the released MaskGIT checkpoints (`{"params": tree}`).
- `tokens_<split>.npz` (tokenizer runs): `tokens` int32 [N, h, w], `labels`.
"""

import json
import os

import flax.serialization
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from maskgit_edit import released
from maskgit_edit import data as data_lib
from maskgit_edit import files
from maskgit_edit import models


def params_path(workdir: str, name: str) -> str:
  return os.path.join(workdir, f"{name}_params.msgpack")


def is_writer() -> bool:
  """Whether this process writes a run's files (process 0 of a multi-process
  run; every process computes the same values)."""
  return jax.process_index() == 0


def export_params(workdir: str, name: str, params) -> str:
  """Writes params atomically, so a kill loses nothing."""
  path = params_path(workdir, name)
  if not is_writer():
    return path
  with files.atomic_path(path) as tmp, open(tmp, "wb") as f:
    f.write(
        flax.serialization.msgpack_serialize({"params": jax.device_get(params)})
    )
  return path


def load_final_metrics(workdir: str) -> dict:
  """The final metrics of a finished run."""
  path = os.path.join(workdir, "final_metrics.json")
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"No final_metrics.json in {workdir!r}: the run has not finished."
    )
  with open(path) as f:
    return json.load(f)


# The time a run first started, written once (a resumed, re-configured or
# copied run keeps it; file times would not).
STARTED = "started.txt"


def wall_seconds(workdir: str) -> float:
  """Seconds from a run's first start to its last metrics line."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    lines = f.read().splitlines()
  first, last = (json.loads(lines[i])["time"] for i in (0, -1))
  started = os.path.join(workdir, STARTED)
  if os.path.exists(started):
    with open(started) as f:
      return last - float(f.read())
  # Runs from before STARTED: their config.json's time, unless a rewrite
  # moved it past the first metrics line.
  return last - min(
      first, os.path.getmtime(os.path.join(workdir, "config.json"))
  )


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  """A run's config; links to other runs (`*_workdir`) and data folders
  (`data.*_dir`) that start with "../" are resolved against the run folder,
  so a folder of runs that link to each other and to their data
  (`pretrained/<data>/`) works from any directory."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"No config.json in {workdir!r}: not a run folder.")
  with open(path) as f:
    config = json.load(f)
  for key, value in config.items():
    if (
        key.endswith("_workdir")
        and isinstance(value, str)
        and (value.startswith("../"))
    ):
      config[key] = os.path.normpath(os.path.join(workdir, value))
  for key, value in config.get("data", {}).items():
    if key.endswith("_dir") and isinstance(value, str):
      if value.startswith("../"):
        config["data"][key] = os.path.normpath(os.path.join(workdir, value))
  return ml_collections.ConfigDict(config)


def save_token_cache(workdir: str, split: str, tokens_Nxhxw, labels_N):
  path = os.path.join(workdir, f"tokens_{split}.npz")
  if not is_writer():
    return path
  with files.atomic_path(path) as tmp:
    np.savez(
        tmp,
        tokens=np.asarray(tokens_Nxhxw, np.int32),
        labels=np.asarray(labels_N, np.int32),
    )
  return path


def load_token_cache(workdir: str, split: str):
  """(tokens int32 [N, h, w], labels int32 [N]) of a tokenizer run."""
  run_of_kind(workdir, "tokenizer", ("tokenizer",))
  path = os.path.join(workdir, f"tokens_{split}.npz")
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"No token cache {path!r}: train the tokenizer to the end first "
        "(its last step writes the cache)."
    )
  with np.load(path) as f:
    return f["tokens"], f["labels"]


def load_params(workdir: str, name: str, abstract_params):
  """Reads `<name>_params.msgpack` and checks it against `abstract_params`."""
  path = params_path(workdir, name)
  params = released.read_msgpack_params(path)
  released.check_params_fit(params, abstract_params, source=path)
  # Committed runs store float16 (scripts/export_pretrained.py); models
  # compute in float32.
  return jax.tree.map(
      lambda x: np.asarray(x, np.float32)
      if np.asarray(x).dtype == np.float16
      else x,
      params,
  )


def run_of_kind(workdir: str, kind: str, fields: tuple[str, ...]):
  """The run config of `workdir`, checked to be a `kind` run."""
  config = load_run_config(workdir)
  if not all(field in config for field in fields):
    raise ValueError(
        f"{workdir!r} is not a {kind} run: it is a "
        f"{config.get('trainer', 'unknown')!r} run (are "
        "two run folders swapped?)."
    )
  return config


def load_tokenizer(workdir: str):
  """(model, params, run config) of a finished tokenizer run."""
  config = run_of_kind(workdir, "tokenizer", ("tokenizer",))
  model = models.build_tokenizer(config.tokenizer)
  size = config.data.image_size
  abstract = jax.eval_shape(
      model.init, jax.random.key(0), jnp.zeros((1, size, size, 3))
  )["params"]
  return model, load_params(workdir, "tokenizer", abstract), config


def transformer_layout(config) -> models.TokenLayout:
  """Token layout of a transformer run config (reads its tokenizer run)."""
  tok_config = load_run_config(config.tokenizer_workdir)
  num_classes = config.get("num_classes", 0)
  if not num_classes and config.model.class_conditional:
    _, labels = load_token_cache(config.tokenizer_workdir, "train")
    num_classes = int(labels.max()) + 1
  return models.TokenLayout.of_tokenizer(
      tok_config.tokenizer,
      tok_config.data.image_size,
      num_classes,
      config.model.class_conditional,
      null_class=config.model.get("class_dropout", 0.0) > 0,
      class_names=data_lib.class_names(tok_config.data),
  )


def kernel_path(workdir: str) -> str:
  return params_path(workdir, "kernel")


def load_kernel(workdir: str):
  """Learned self-guidance kernel K [C, C] of a `reweight` run."""
  params = released.read_msgpack_params(kernel_path(workdir))
  if "kernel" not in params or np.ndim(params["kernel"]) != 2:
    raise ValueError(f"{kernel_path(workdir)!r} holds no [C, C] 'kernel'.")
  return np.asarray(params["kernel"], np.float32)


PRETRAINED_DIR = os.path.join(files.CHECKOUT, "pretrained")


# The data of the committed reference models that edit by default.
DEFAULT_DATA = "fashion_mnist"


def pretrained_runs(data: str = DEFAULT_DATA) -> dict[str, str]:
  """Run folders of the committed reference models of `data`, by trainer.

  Raises:
    FileNotFoundError: they are not in this checkout, with how to make them.
  """
  folder = os.path.join(PRETRAINED_DIR, data)
  if not os.path.isdir(folder):
    raise FileNotFoundError(
        f"No pretrained runs in {folder!r}: make them with `python "
        f"scripts/main.py --data {data} --reference` then `python "
        f"scripts/export_pretrained.py --run runs/{data}_reference "
        f"--out {folder}`."
    )
  return runs_in(folder)


def runs_in(folder: str) -> dict[str, str]:
  """The runs of a pipeline folder (tokenizer/, maskgit/, judge/, ...), by
  trainer.

  Raises:
    FileNotFoundError: it lacks a tokenizer or a transformer run.
  """
  runs = {
      name: os.path.join(folder, name)
      for name in sorted(os.listdir(folder))
      if os.path.isdir(os.path.join(folder, name))
  }
  missing = [name for name in ("tokenizer", "maskgit") if name not in runs]
  if missing:
    raise FileNotFoundError(
        f"{folder!r} is not a folder of runs: it has no "
        f"{' or '.join(missing)} subfolder."
    )
  return runs


def load_transformer(workdir: str, name: str = "transformer"):
  """(model, params, layout, run config) of a finished transformer run."""
  config = run_of_kind(workdir, "transformer", ("model", "tokenizer_workdir"))
  layout = transformer_layout(config)
  model = models.build_transformer(config.model, layout)
  abstract = jax.eval_shape(
      model.init, jax.random.key(0), jnp.zeros((1, layout.seq_len), jnp.int32)
  )["params"]
  return model, load_params(workdir, name, abstract), layout, config
