"""Compiler options by program: large calls skip XLA:CPU's YNNPACK fusions,
one-off programs compile unoptimised."""

import flax.linen as nn
import jax
import numpy as np
import pytest

from maskgit_edit import compiling
from maskgit_edit import models
from maskgit_edit.decoding import sampling
from maskgit_edit.decoding import windows
from maskgit_edit.models.transformer import Transformer

pytestmark = pytest.mark.skipif(
    jax.default_backend() != "cpu", reason="the options are XLA:CPU's"
)

GRID_SIDE = 4
LAYOUT = models.TokenLayout(20, 0, GRID_SIDE, False)
# The fewest examples whose full passes reach the threshold.
LARGE_BATCH = -(-compiling.LIBRARY_FUSION_MAX_ROWS // LAYOUT.seq_len)


@pytest.fixture(scope="module")
def model_and_params():
  model = Transformer(
      vocab_size=LAYOUT.vocab_size,
      seq_len=LAYOUT.seq_len,
      hidden_size=16,
      num_layers=1,
      num_heads=2,
      intermediate_size=32,
      dropout_rate=0.0,
  )
  ids_1xL = np.zeros((1, LAYOUT.seq_len), np.int32)
  return model, model.init(jax.random.key(0), ids_1xL)["params"]


def _compiled_text(jitted, *args, **kwargs) -> str:
  return jitted.lower(*args, **kwargs).compile().as_text()


def test_the_threshold_counts_rows_on_cpu_only():
  rows = compiling.LIBRARY_FUSION_MAX_ROWS
  assert not compiling.is_large(rows - 1, "cpu")
  assert compiling.is_large(rows, "cpu")
  assert not compiling.is_large(100 * rows, "gpu")


def test_large_forwards_compile_without_library_fusions_to_the_same_logits(
    model_and_params,
):
  model, params = model_and_params
  apply = lambda p, ids_BxL: model.apply({"params": p}, ids_BxL)
  sized = compiling.SizedJit(apply, lambda p, ids_BxL: ids_BxL.size)
  plain = jax.jit(apply)
  for batch in (2, LARGE_BATCH):
    ids_BxL = jax.random.randint(
        jax.random.key(batch), (batch, LAYOUT.seq_len), 0, 16
    )
    np.testing.assert_allclose(
        sized(params, ids_BxL), plain(params, ids_BxL), rtol=1e-5, atol=1e-5
    )
    default_text = _compiled_text(plain, params, ids_BxL)
    sized_text = _compiled_text(sized, params, ids_BxL)
    assert "ynn_fusion" in default_text
    if batch == LARGE_BATCH:
      assert "ynn_fusion" not in sized_text
    else:
      assert sized_text == default_text


@pytest.mark.parametrize(
    "batch, window_ring, large",
    [(2, None, False), (LARGE_BATCH, None, True), (LARGE_BATCH, 0, False)],
)
def test_decodes_are_sized_by_their_full_passes(
    model_and_params, batch, window_ring, large
):
  model, params = model_and_params
  sampler = sampling.Sampler(model, LAYOUT, sampling.DecodeSettings(4))
  tokens_Bxhxw = np.zeros((batch, GRID_SIDE, GRID_SIDE), np.int32)
  unknown_Bxhxw = np.zeros_like(tokens_Bxhxw, bool)
  unknown_Bxhxw[:, 1, 1] = True
  window_BxW = (
      None
      if window_ring is None
      else windows.window_positions(unknown_Bxhxw, window_ring)
  )
  text = _compiled_text(
      sampler._decode,  # pylint: disable=protected-access
      params,
      tokens_Bxhxw,
      unknown_Bxhxw,
      np.zeros(batch, np.int32),
      jax.random.key(0),
      None,
      window_BxW,
  )
  assert ("ynn_fusion" in text) != large


def test_one_off_programs_compile_unoptimised_to_the_same_draws():
  """An initialiser from `one_off_jit` is the unoptimised program: its
  draws differ from the optimised program's only in the last bits."""
  model = nn.Dense(64)
  init = lambda key: model.init(key, np.zeros((1, 64), np.float32))["params"]
  key = jax.random.key(0)
  lowered = jax.jit(init).lower(key)
  unoptimised = lowered.compile(compiling.ONE_OFF_CPU_OPTIONS)(key)
  optimised = lowered.compile()(key)
  one_off = compiling.one_off_jit(init)(key)
  jax.tree.map(np.testing.assert_array_equal, one_off, unoptimised)
  jax.tree.map(
      lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7),
      one_off,
      optimised,
  )
