"""Tests of the released-checkpoint import: trees, golden outputs, and bad files."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization, traverse_util

from maskgit_edit import released
from maskgit_edit.models.transformer import Transformer
from maskgit_edit.models.vqgan import VQGAN

DATA = pathlib.Path(__file__).parent / "data"
GOLDEN = DATA / "golden_small"


@pytest.fixture(scope="module")
def golden():
  config = json.loads((GOLDEN / "config.json").read_text())
  transformer = Transformer(
      vocab_size=config["vocab_size"],
      seq_len=config["seq_len"],
      **config["transformer"],
  )
  tok = config["tokenizer"]
  tokenizer = VQGAN(
      filters=tok["filters"],
      num_res_blocks=tok["num_res_blocks"],
      channel_multipliers=tuple(tok["channel_multipliers"]),
      embedding_dim=tok["embedding_dim"],
      codebook_size=tok["codebook_size"],
  )
  return transformer, tokenizer, np.load(GOLDEN / "reference_outputs.npz")


def test_released_config_sizes():
  config = released.released_config(512)
  assert (config["latent_size"], config["seq_len"], config["vocab_size"]) == (
      32,
      1025,
      2025,
  )
  assert released.released_config(256)["seq_len"] == 257
  config["transformer"]["hidden_size"] = 1  # Callers get a fresh copy.
  assert released.released_config(512)["transformer"]["hidden_size"] == 768
  with pytest.raises(ValueError, match="384"):
    released.released_config(384)


@pytest.mark.parametrize(
    "name",
    [
        "maskgit_imagenet256_checkpoint",
        "maskgit_imagenet512_checkpoint",
        "tokenizer_imagenet256_checkpoint",
        "tokenizer_imagenet512_checkpoint",
    ],
)
def test_module_trees_equal_released_files(name):
  shapes = json.loads((DATA / "param_shapes.json").read_text())[name]
  image_size = int(name.split("_")[1].removeprefix("imagenet"))
  if name.startswith("maskgit"):
    model = released.build_released_transformer(image_size)
  else:
    model = released.build_released_tokenizer()
  flat = traverse_util.flatten_dict(released.abstract_params(model), sep="/")
  assert {path: list(spec.shape) for path, spec in flat.items()} == shapes


def test_golden_transformer_logits(golden):
  transformer, _, reference = golden
  params = released.load_params(GOLDEN / "maskgit_checkpoint", transformer)
  input_ids = reference["transformer_input_ids"]
  assert (input_ids == -1).any()  # The release's mask convention is exercised.
  logits = jax.jit(transformer.apply)(
      {"params": params}, jnp.asarray(input_ids)
  )
  # Measured max abs error on CPU: 7.2e-7.
  np.testing.assert_allclose(
      logits, reference["transformer_logits"], rtol=0, atol=1e-5
  )


def test_golden_tokenizer(golden):
  _, tokenizer, reference = golden
  params = released.load_params(GOLDEN / "tokenizer_checkpoint", tokenizer)
  apply = jax.jit(tokenizer.apply, static_argnames="method")
  indices = apply(
      {"params": params},
      jnp.asarray(reference["tokenizer_input_image"]),
      method="tokenize",
  )
  np.testing.assert_array_equal(indices, reference["tokenizer_indices"])
  decoded = apply(
      {"params": params},
      jnp.asarray(reference["tokenizer_indices"]),
      method="decode_from_indices",
  )
  # Measured max abs error on CPU: 4.4e-6 (values up to 2.6).
  np.testing.assert_allclose(
      decoded, reference["tokenizer_decoded"], rtol=0, atol=2e-5
  )


def test_loaded_params_are_float32_device_arrays(golden):
  transformer, _, _ = golden
  params = released.load_params(GOLDEN / "maskgit_checkpoint", transformer)
  leaves = jax.tree.leaves(params)
  assert all(
      isinstance(x, jax.Array) and x.dtype == jnp.float32 for x in leaves
  )


def test_missing_file_names_path(tmp_path, golden):
  path = tmp_path / "nowhere_checkpoint"
  with pytest.raises(FileNotFoundError, match="nowhere_checkpoint"):
    released.load_params(path, golden[0])


@pytest.mark.parametrize(
    "payload",
    [
        b"\xc1 certainly not msgpack",
        serialization.msgpack_serialize(7),
        serialization.msgpack_serialize({"weights": {}}),
    ],
)
def test_non_checkpoint_file_names_path(tmp_path, golden, payload):
  path = tmp_path / "junk_checkpoint"
  path.write_bytes(payload)
  with pytest.raises(
      ValueError, match="junk_checkpoint.*not a Flax msgpack checkpoint"
  ):
    released.load_params(path, golden[0])


def test_wrong_size_checkpoint_names_first_path_and_both_shapes(golden):
  narrow = golden[0].clone(hidden_size=32)
  with pytest.raises(ValueError) as error:
    released.load_params(GOLDEN / "maskgit_checkpoint", narrow)
  message = str(error.value)
  assert "maskgit_checkpoint" in message
  assert (
      "Embed_0/embeddings_ln/bias has shape (64,) but the model expects (32,)"
      in message
  )


def _write_params(path, params):
  path.write_bytes(serialization.msgpack_serialize({"params": params}))
  return path


def test_missing_and_unexpected_parameters_are_named(tmp_path, golden):
  transformer = golden[0]
  raw = serialization.msgpack_restore(
      (GOLDEN / "maskgit_checkpoint").read_bytes()
  )["params"]
  flat = traverse_util.flatten_dict(raw, sep="/")

  without_bias = {
      k: v for k, v in flat.items() if k != "MlmLayer_0/mlm_bias/bias"
  }
  path = _write_params(
      tmp_path / "a", traverse_util.unflatten_dict(without_bias, sep="/")
  )
  with pytest.raises(
      ValueError, match=r"missing parameter MlmLayer_0/mlm_bias/bias .*\(75,\)"
  ):
    released.load_params(path, transformer)

  extra = {
      **flat,
      "TransformerLayer_2/Mlp_0/layer_output/bias": np.zeros(64, np.float32),
  }
  path = _write_params(
      tmp_path / "b", traverse_util.unflatten_dict(extra, sep="/")
  )
  with pytest.raises(
      ValueError,
      match=r"unexpected parameter TransformerLayer_2/Mlp_0/layer_output/bias",
  ):
    released.load_params(path, transformer)


def test_check_params_fit_accepts_exact_tree(golden):
  _, tokenizer, _ = golden
  raw = serialization.msgpack_restore(
      (GOLDEN / "tokenizer_checkpoint").read_bytes()
  )["params"]
  released.check_params_fit(raw, released.abstract_params(tokenizer))
  raw["quantizer"]["codebook"] = raw["quantizer"]["codebook"][:, :8]
  with pytest.raises(
      ValueError, match=r"quantizer/codebook has shape \(64, 8\).*\(64, 16\)"
  ):
    released.check_params_fit(raw, released.abstract_params(tokenizer))
