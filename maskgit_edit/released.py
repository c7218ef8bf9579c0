"""Import of the released MaskGIT ImageNet checkpoints (Flax msgpack files).

The release ships one file per model, each the msgpack of `{"params": tree}`:
`maskgit_imagenet{256,512}_checkpoint` (class-conditional transformer) and
`tokenizer_imagenet{256,512}_checkpoint` (VQGAN). Our modules use the same
parameter names, so loading is a read plus a strict check of every path and
shape against the module's own abstract parameters (`jax.eval_shape`, no
memory spent on initialisation).
"""

from __future__ import annotations

import copy
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization, traverse_util

from maskgit_edit.models.transformer import Transformer
from maskgit_edit.models.vqgan import VQGAN

Params = dict[str, Any]

RELEASED_CODEBOOK_SIZE = 1024
RELEASED_NUM_CLASSES = 1000
# Every level but the last of the released tokenizer halves the resolution.
_RELEASED_DOWNSAMPLE = 16

_RELEASED_TRANSFORMER = {
    "hidden_size": 768,
    "num_layers": 24,
    "num_heads": 16,
    "intermediate_size": 3072,
    "dropout_rate": 0.1,
}
_RELEASED_TOKENIZER = {
    "filters": 128,
    "num_res_blocks": 2,
    "channel_multipliers": (1, 1, 2, 2, 4),
    "embedding_dim": 256,
    "codebook_size": RELEASED_CODEBOOK_SIZE,
    "norm_groups": 32,
    "commitment_cost": 0.25,
    "entropy_loss_ratio": 0.1,
    "entropy_temperature": 0.01,
}


def released_config(image_size: int) -> dict[str, Any]:
  """Sizes of the released ImageNet models at `image_size` (256 or 512).

  Returns:
    A fresh dict with 'image_size', 'latent_size' (tokens per side),
    'seq_len' (latent_size**2 + 1 class token), 'codebook_size',
    'num_classes', 'vocab_size' (codebook + classes + [MASK]),
    'mask_token_id' (-1, which the transformer maps to row vocab_size - 1),
    'transformer' (keyword arguments of `Transformer` but `dtype`) and
    'tokenizer' (keyword arguments of `VQGAN` but `dtype`).
  """
  if image_size not in (256, 512):
    raise ValueError(
        f"Released MaskGIT checkpoints exist for image_size 256 and 512, "
        f"got {image_size}."
    )
  latent_size = image_size // _RELEASED_DOWNSAMPLE
  seq_len = latent_size**2 + 1
  vocab_size = RELEASED_CODEBOOK_SIZE + RELEASED_NUM_CLASSES + 1
  return {
      "image_size": image_size,
      "latent_size": latent_size,
      "seq_len": seq_len,
      "codebook_size": RELEASED_CODEBOOK_SIZE,
      "num_classes": RELEASED_NUM_CLASSES,
      "vocab_size": vocab_size,
      "mask_token_id": -1,
      "transformer": {
          "vocab_size": vocab_size,
          "seq_len": seq_len,
          **copy.deepcopy(_RELEASED_TRANSFORMER),
      },
      "tokenizer": copy.deepcopy(_RELEASED_TOKENIZER),
  }


def build_released_transformer(
    image_size: int, dtype: Any = jnp.float32
) -> Transformer:
  """The `Transformer` matching `maskgit_imagenet{image_size}_checkpoint`."""
  return Transformer(**released_config(image_size)["transformer"], dtype=dtype)


def build_released_tokenizer(dtype: Any = jnp.float32) -> VQGAN:
  """The `VQGAN` matching `tokenizer_imagenet{256,512}_checkpoint` (same architecture)."""
  return VQGAN(**released_config(256)["tokenizer"], dtype=dtype)


def abstract_params(model: Transformer | VQGAN) -> Params:
  """Parameter shapes/dtypes (`jax.ShapeDtypeStruct` tree) of `model`, without allocating."""
  if isinstance(model, Transformer):
    example = jax.ShapeDtypeStruct((1, model.seq_len), jnp.int32)
  elif isinstance(model, VQGAN):
    # Parameter shapes do not depend on the image size; the smallest legal image will do.
    side = 2 ** (len(model.channel_multipliers) - 1)
    example = jax.ShapeDtypeStruct((1, side, side, 3), jnp.float32)
  else:
    raise TypeError(
        f"Expected a Transformer or VQGAN, got {type(model).__name__}."
    )
  return jax.eval_shape(model.init, jax.random.key(0), example)["params"]


def read_msgpack_params(path: str | os.PathLike) -> Params:
  """Reads the `params` tree of a Flax msgpack checkpoint file `{"params": tree}`.

  Raises:
    FileNotFoundError: `path` does not exist.
    ValueError: The file is not a msgpack checkpoint holding a `params` dict.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Checkpoint file not found: {path}")
  with open(path, "rb") as f:
    raw = f.read()
  try:
    restored = serialization.msgpack_restore(raw)
  except Exception as e:  # msgpack raises several unrelated types on garbage.
    raise ValueError(f"{path} is not a Flax msgpack checkpoint: {e!r}") from e
  if not isinstance(restored, dict) or not isinstance(
      restored.get("params"), dict
  ):
    found = (
        sorted(restored)
        if isinstance(restored, dict)
        else type(restored).__name__
    )
    raise ValueError(
        f"{path} is not a Flax msgpack checkpoint of {{'params': tree}} (found {found})."
    )
  return restored["params"]


def check_params_fit(
    params: Params, expected: Params, source: str = "checkpoint"
) -> None:
  """Raises ValueError naming the first path (sorted) where `params` does not fit `expected`.

  Args:
    params: Nested dict of arrays.
    expected: Nested dict of arrays or `jax.ShapeDtypeStruct`s, e.g. `abstract_params(model)`.
    source: Name of where `params` came from, for the message.
  """
  flat = traverse_util.flatten_dict(params, sep="/")
  flat_expected = traverse_util.flatten_dict(expected, sep="/")
  problems = []
  for path in sorted(flat.keys() | flat_expected.keys()):
    if path not in flat:
      problems.append(
          f"missing parameter {path} (model expects shape "
          f"{tuple(flat_expected[path].shape)})"
      )
    elif path not in flat_expected:
      problems.append(
          f"unexpected parameter {path} (shape {tuple(np.shape(flat[path]))}) "
          "that the model does not have"
      )
    elif tuple(np.shape(flat[path])) != tuple(flat_expected[path].shape):
      problems.append(
          f"parameter {path} has shape {tuple(np.shape(flat[path]))} but the "
          f"model expects {tuple(flat_expected[path].shape)}"
      )
  if problems:
    raise ValueError(
        f"{source} does not fit the model: {problems[0]} "
        f"({len(problems)} mismatching parameter(s) in all)."
    )


def load_params(path: str | os.PathLike, model: Transformer | VQGAN) -> Params:
  """Loads a released-format msgpack checkpoint for `model`, checked path by path.

  Returns:
    The `params` tree as device arrays in the model's parameter dtypes; use as
    `model.apply({"params": params}, ...)`.
  """
  expected = abstract_params(model)
  params = read_msgpack_params(path)
  check_params_fit(params, expected, source=os.fspath(path))
  return jax.tree.map(
      lambda x, spec: jnp.asarray(x, spec.dtype), params, expected
  )
