"""Key/value reuse: exact where nothing is stale, one compile per edit size."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_edit import edit
from maskgit_edit import models
from maskgit_edit.benchmarking import timing
from maskgit_edit.decoding import sampling
from maskgit_edit.models.transformer import Transformer

from conftest import pretrained_test_images

CompileCounter = timing.CompileCounter


def _transformer(num_layers, seq_len=17, vocab_size=20):
  return Transformer(
      vocab_size=vocab_size,
      seq_len=seq_len,
      hidden_size=16,
      num_layers=num_layers,
      num_heads=2,
      intermediate_size=32,
      dropout_rate=0.0,
  )


def test_rows_run_on_cached_keys_and_values_of_unchanged_inputs_are_exact():
  model = _transformer(num_layers=2)
  ids_2xL = jax.random.randint(jax.random.key(0), (2, 17), 0, 19)
  params = model.init(jax.random.key(1), ids_2xL)["params"]
  apply = lambda *args, **kwargs: model.apply(
      {"params": params}, *args, **kwargs
  )
  full_2xLxV, cache = apply(ids_2xL, return_cache=True)
  assert len(cache) == 2 and cache[0][0].shape == (2, 17, 2, 8)
  rows_2xA = jnp.array([[3, 4, 9], [0, 16, 8]])
  take = lambda x: jnp.take_along_axis(x, rows_2xA, axis=1)
  rows_only = lambda cache: apply(
      take(ids_2xL),
      position_ids_BxL=rows_2xA,
      cache=cache,
      query_indices_BxL=rows_2xA,
  )
  np.testing.assert_allclose(
      rows_only(cache),
      jnp.take_along_axis(full_2xLxV, rows_2xA[..., None], axis=1),
      atol=1e-5,
  )
  # Keys and values of other inputs change the rows' outputs: they are read.
  _, other_cache = apply((ids_2xL + 1) % 19, return_cache=True)
  assert not np.allclose(rows_only(other_cache), rows_only(cache), atol=1e-5)
  with pytest.raises(ValueError, match="come together"):
    apply(take(ids_2xL), cache=cache)


@pytest.mark.parametrize("window", [None, 1])
@pytest.mark.parametrize("num_layers", [0, 1])
def test_reuse_is_exact_where_no_cached_key_can_be_stale(window, num_layers):
  """With one layer, a known position's keys and values come from its own
  input, which never changes, so they are never stale; the edited rows
  still attend to them. Reuse must then decode exactly as full passes do
  (0 layers: no attention at all)."""
  layout = models.TokenLayout(
      codebook_size=16, num_classes=3, grid_side=8, class_conditional=True
  )
  model = _transformer(
      num_layers=num_layers,
      seq_len=layout.seq_len,
      vocab_size=layout.vocab_size,
  )
  params = model.init(
      jax.random.key(0), jnp.zeros((1, layout.seq_len), jnp.int32)
  )["params"]
  tokens = jax.random.randint(jax.random.key(1), (3, 8, 8), 0, 16)
  unknown = np.zeros((3, 8, 8), bool)
  unknown[0, 1:3, 1:4] = unknown[1, 5:8, 2:7] = unknown[2, 0:2, 6:8] = True
  decode = lambda every: sampling.Sampler(
      model,
      layout,
      sampling.DecodeSettings(start_iter=2, full_pass_every=every),
  )(
      params,
      tokens,
      unknown,
      jax.random.key(2),
      labels_B=np.array([0, 1, 2]),
      window=window,
      return_history=True,
  )
  full, reused = decode(1), decode(3)
  for a, b in zip(full, reused):
    np.testing.assert_array_equal(a, b)


def test_reuse_needs_a_sensible_setting():
  with pytest.raises(ValueError, match="full_pass_every must be >= 1"):
    sampling.DecodeSettings(full_pass_every=0)
  with pytest.raises(ValueError, match="class_guidance"):
    sampling.DecodeSettings(full_pass_every=2, class_guidance=1.0)


def test_reusing_edits_keep_the_rest_and_compile_once_per_size():
  settings = edit.EditSettings()
  editor = edit.Editor.from_workdirs(
      settings=dataclasses.replace(
          settings,
          decode=dataclasses.replace(settings.decode, full_pass_every=2),
      )
  )
  images, labels = pretrained_test_images(2)

  def run(box, seed=0):
    masks = np.zeros((2, 32, 32), bool)
    masks[:, box[0] : box[1], box[2] : box[3]] = True
    strokes = np.where(masks[..., None], np.float32([0.9, 0.2, 0.1]), images)
    return editor.edit(
        images,
        masks,
        jax.random.key(seed),
        strokes_BxHxWx3=strokes,
        labels_B=labels,
        variant="self_fixed",
        knob=2.0,
    )

  first = run((4, 12, 4, 12))
  source_tokens = np.asarray(editor.tokenize(images))
  np.testing.assert_array_equal(
      first["tokens"][~first["edited"]], source_tokens[~first["edited"]]
  )
  with CompileCounter() as counter:
    run((16, 24, 12, 20), seed=1)  # As many edited tokens: same program.
  assert counter.count == 0


def test_full_passes_run_every_r_th_step_that_runs():
  from maskgit_edit.decoding import parallel_decode  # pylint: disable=g-import-not-at-top

  calls = []
  unknown_1xL = jnp.array([[False, True, True, False, True, False]])

  def model_fn(ids_BxQ, guide_BxQ, scale_B, query_indices_BxQ, cache):
    del guide_BxQ, scale_B
    kind = "full" if query_indices_BxQ is None else "rows"
    jax.debug.callback(
        lambda q: calls.append((kind, q.tolist())),
        jnp.arange(ids_BxQ.shape[1])
        if query_indices_BxQ is None
        else query_indices_BxQ[0],
    )
    cache = jnp.zeros((1,)) if cache is None else cache
    return jnp.zeros((*ids_BxQ.shape, 4)), cache

  parallel_decode.decode(
      lambda ids, guide, scale: jnp.zeros((*ids.shape, 4)),
      jnp.zeros((1, 6), jnp.int32),
      unknown_1xL,
      jax.random.key(0),
      mask_id=5,
      num_steps=8,
      schedule="cosine",
      choice_temperature=1.0,
      start_iter=2,
      reuse=parallel_decode.KeyValueReuse(model_fn, 2, 4),
  )
  # Steps 2..7 run: full passes at 2, 4 and 6; the others run the three
  # positions unknown at the start, padded with the first known one.
  assert [kind for kind, _ in calls] == ["full", "rows"] * 3
  assert all(q == [1, 2, 4, 0] for kind, q in calls if kind == "rows")
