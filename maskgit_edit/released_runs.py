"""Run folders from released MaskGIT checkpoints (`scripts/import_released.py`).

Writes a tokenizer run and a transformer run in the format of trained runs
(`maskgit_edit.artefacts`), so the Editor, generation and the fine-tuning
trainers read them unchanged:

  OUT/tokenizer/config.json            data + tokenizer sections
  OUT/tokenizer/tokenizer_params.msgpack
  OUT/tokenizer/tokens_{train,test}.npz  only with --data
  OUT/maskgit/config.json              model, num_classes, tokenizer_workdir
  OUT/maskgit/transformer_params.msgpack

Both files are checked parameter by parameter against the released model
sizes (configs/imagenet{256,512}.py) before anything is written; the runs
are assembled in a temporary folder next to OUT and renamed into place at the
end, so a failed import leaves no partial OUT.

A data source tokenizes the first `num_train` / `num_test` examples (default: all)
of a data source (`maskgit_edit.data`: tfds:imagenet2012, folder:PATH, ...)
into the token caches that `reweight` and `iterate` train on (launch them
with --config.transformer_workdir=OUT/maskgit). The Editor and generation do
not need them. `sizes_from_json` takes the model sizes from a
release-style config.json (e.g. tests/data/golden_small/config.json) instead
of the ImageNet ones.
"""

import concurrent.futures
import json
import os
import shutil
import sys

import ml_collections
import numpy as np

from maskgit_edit import artefacts
from maskgit_edit import config_defaults
from maskgit_edit import config_files
from maskgit_edit import data as data_lib
from maskgit_edit import files
from maskgit_edit import images as images_lib
from maskgit_edit import models
from maskgit_edit import progress as progress_lib
from maskgit_edit import released
from maskgit_edit import tokenizing

TOKENIZER_DIR = "tokenizer"
TRANSFORMER_DIR = "maskgit"


def sizes_from_json(path: str) -> ml_collections.ConfigDict:
  """`configs/imagenet256.released_sections`-like sizes from a release-style config.json.

  The file holds image_size, num_class (or num_classes), `tokenizer` (filters,
  num_res_blocks, channel_multipliers, embedding_dim, codebook_size, optional
  norm_groups) and `transformer` (hidden_size, num_layers, num_heads,
  intermediate_size, dropout_rate); optional seq_len / vocab_size are checked.
  """
  with open(path) as f:
    spec = json.load(f)
  try:
    tok, net = spec["tokenizer"], spec["transformer"]
    s = ml_collections.ConfigDict()
    s.image_size = spec["image_size"]
    s.num_classes = (
        spec["num_classes"] if "num_classes" in spec else spec["num_class"]
    )
    s.tokenizer = config_defaults.tokenizer(
        filters=tok["filters"],
        num_res_blocks=tok["num_res_blocks"],
        channel_multipliers=tuple(tok["channel_multipliers"]),
        embedding_dim=tok["embedding_dim"],
        codebook_size=tok["codebook_size"],
        # The release's config.json leaves GroupNorm at its default.
        norm_groups=tok.get(
            "norm_groups",
            released.released_config(256)["tokenizer"]["norm_groups"],
        ),
    )
    s.model = config_defaults.transformer(
        **{
            k: net[k]
            for k in (
                "hidden_size",
                "num_layers",
                "num_heads",
                "intermediate_size",
                "dropout_rate",
            )
        },
        class_conditional=True,
    )
  except KeyError as e:
    raise ValueError(f"{path} lacks the size field {e.args[0]!r}.") from e
  layout = token_layout(s)
  for key, ours in (
      ("seq_len", layout.seq_len),
      ("vocab_size", layout.vocab_size),
  ):
    if key in spec and spec[key] != ours:
      raise ValueError(
          f"{path} gives {key} {spec[key]}, but its sizes make {ours}."
      )
  return s


def released_sizes(image_size: int) -> ml_collections.ConfigDict:
  return config_files.load(
      os.path.join(files.CHECKOUT, "configs", f"imagenet{image_size}.py:edit")
  )


def token_layout(sizes) -> models.TokenLayout:
  return models.TokenLayout.of_tokenizer(
      sizes.tokenizer,
      sizes.image_size,
      sizes.num_classes,
      sizes.model.class_conditional,
  )


def load_checked(transformer_path: str, tokenizer_path: str, sizes):
  """Builds both models from `sizes` and loads their files, checked path by path.

  Returns:
    (tokenizer module, tokenizer params, transformer params).

  Raises:
    FileNotFoundError, ValueError: a file is missing, not a msgpack
      checkpoint, or does not fit (the message names the file and parameter).
  """
  tokenizer = models.build_tokenizer(sizes.tokenizer)
  tokenizer_params = released.load_params(tokenizer_path, tokenizer)
  transformer = models.build_transformer(sizes.model, token_layout(sizes))
  transformer_params = released.load_params(transformer_path, transformer)
  return tokenizer, tokenizer_params, transformer_params


def tokenize_source(
    tokenizer, params, source, num: int, batch_size: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
  """Token grids of the first `num` examples of `source`.

  Batches are padded to `batch_size` (one compilation) and the next batch is
  read while the current one is tokenized.

  Returns:
    (tokens int32 [num, h, w], labels int32 [num]).
  """
  tokenize = tokenizing.Tokenizer(tokenizer, params, batch_size).tokenize

  def read(start):
    return source.get(np.arange(start, min(start + batch_size, num)))

  tokens, labels = [], []
  progress = progress_lib.Progress(num, unit="images", stream=sys.stderr)
  report_every = max(1, num // batch_size // 20)  # About 20 lines.
  with concurrent.futures.ThreadPoolExecutor(1) as reader:
    pending = reader.submit(read, 0)
    for start in range(0, num, batch_size):
      images_bxHxWx3, labels_b = pending.result()
      if start + batch_size < num:
        pending = reader.submit(read, start + batch_size)
      count = len(labels_b)
      padded_BxHxWx3 = np.zeros(
          (batch_size, *images_bxHxWx3.shape[1:]), np.uint8
      )
      padded_BxHxWx3[:count] = images_bxHxWx3
      tokens.append(
          np.asarray(tokenize(images_lib.to_float(padded_BxHxWx3)))[:count]
      )
      labels.append(labels_b)
      progress.done += count
      if (start // batch_size) % report_every == 0 or progress.done == num:
        progress.report(f"tokenizing {name}")
  return np.concatenate(tokens), np.concatenate(labels)


def data_config(
    sizes, name: str | None, num_train: int | None, num_test: int | None
) -> ml_collections.ConfigDict:
  """The tokenizer run's `data` section: `name` or the sizes' own source."""
  config = (
      sizes.data.copy_and_resolve_references()
      if "data" in sizes
      else (data_lib.default_data_config())
  )
  config.image_size = sizes.image_size
  if name is not None:
    config.name = name
  for split, num in (("train", num_train), ("test", num_test)):
    if num is not None:
      config[f"num_{split}"] = (
          num  # Size of generated sources, a cap for the others.
      )
  return config


def token_caches(
    tokenizer,
    params,
    config,
    num_classes: int,
    nums: dict[str, int | None],
    batch_size: int,
) -> dict:
  """split -> (tokens [N, h, w], labels [N]) of the source `config` names."""
  caches = {}
  for split in data_lib.SPLITS:
    source = data_lib.get_source(config, split)
    if source.num_classes > num_classes:
      raise ValueError(
          f"Data source {config.name!r} has {source.num_classes} "
          f"classes, the model {num_classes}."
      )
    num = len(source) if nums[split] is None else nums[split]
    if not 0 < num <= len(source):
      raise ValueError(
          f"Asked for {num} examples of the {split!r} split of "
          f"{config.name!r}, which has {len(source)}."
      )
    caches[split] = tokenize_source(
        tokenizer, params, source, num, batch_size, split
    )
  return caches


def run_configs(
    sizes, data, out: str, transformer_path: str, tokenizer_path: str
):
  """(tokenizer run config, transformer run config) of the imported runs in `out`."""
  tok = ml_collections.ConfigDict()
  tok.imported_from = os.path.abspath(tokenizer_path)
  tok.data = data
  tok.tokenizer = sizes.tokenizer
  net = ml_collections.ConfigDict()
  net.imported_from = os.path.abspath(transformer_path)
  net.tokenizer_workdir = os.path.join(os.path.abspath(out), TOKENIZER_DIR)
  # Set, so that the layout does not depend on a token cache's labels.
  net.num_classes = sizes.num_classes
  net.model = sizes.model
  return tok, net


def _check_out(out: str) -> None:
  if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
    raise FileExistsError(
        f"--out {out!r} exists and is not an empty folder; "
        "pick another one or remove it."
    )


def _write_run(workdir: str, config, name: str, params) -> None:
  os.makedirs(workdir)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  artefacts.export_params(workdir, name, params)


def import_released(
    transformer_path: str,
    tokenizer_path: str,
    sizes,
    out: str,
    *,
    data_name: str | None = None,
    num_train: int | None = None,
    num_test: int | None = None,
    batch_size: int = 64,
) -> dict[str, str]:
  """Checks both files against `sizes` and writes the two runs into `out`.

  Args:
    transformer_path, tokenizer_path: release-format msgpack files.
    sizes: `released_sizes(...)` or `sizes_from_json(...)`.
    out: new (or empty) folder of the runs.
    data_name: data source to tokenize into token caches (None: no caches).
    num_train, num_test: examples per split to tokenize (None: all).
    batch_size: images per tokenizer call.

  Returns:
    {"tokenizer": run folder, "maskgit": run folder}.
  """
  out = os.path.normpath(out)
  _check_out(out)
  tokenizer, tokenizer_params, transformer_params = load_checked(
      transformer_path, tokenizer_path, sizes
  )
  data = data_config(sizes, data_name, num_train, num_test)
  caches = {}
  if data_name is not None:
    caches = token_caches(
        tokenizer,
        tokenizer_params,
        data,
        sizes.num_classes,
        {"train": num_train, "test": num_test},
        batch_size,
    )
  tok_config, net_config = run_configs(
      sizes, data, out, transformer_path, tokenizer_path
  )
  # A sibling of `out`: same file system, so the final rename is atomic.
  staging = os.path.join(
      os.path.dirname(os.path.abspath(out)),
      f".{os.path.basename(out)}.import-{os.getpid()}",
  )
  os.makedirs(staging)
  try:
    tok_dir = os.path.join(staging, TOKENIZER_DIR)
    _write_run(tok_dir, tok_config, "tokenizer", tokenizer_params)
    for split, (tokens_Nxhxw, labels_N) in caches.items():
      artefacts.save_token_cache(tok_dir, split, tokens_Nxhxw, labels_N)
    _write_run(
        os.path.join(staging, TRANSFORMER_DIR),
        net_config,
        "transformer",
        transformer_params,
    )
    os.replace(staging, out)  # Replaces an empty `out` too.
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return {
      name: os.path.join(out, name) for name in (TOKENIZER_DIR, TRANSFORMER_DIR)
  }
