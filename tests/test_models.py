"""Tests of the MaskGIT transformer and the VQGAN tokenizer on tiny configurations."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import traverse_util

from maskgit_edit.models import transformer as transformer_lib
from maskgit_edit.models.transformer import Embed, Transformer
from maskgit_edit import models
from maskgit_edit.models.vqgan import VQGAN, depth_to_space, entropy_loss, space_to_depth

VOCAB = 12
SEQ = 6
MASK = VOCAB - 1


def _random_params(model, example, seed=0):
  """Random parameters from numpy for `model`: avoids compiling jax's initialisers (slow on CPU)."""
  rng = np.random.default_rng(seed)

  def draw(path, spec):
    noise = rng.standard_normal(spec.shape).astype(np.float32)
    if path[-1].key == "scale":
      return jnp.asarray(1.0 + 0.1 * noise)
    if path[-1].key == "bias":
      return jnp.asarray(0.1 * noise)
    return jnp.asarray(noise / np.sqrt(np.prod(spec.shape[:-1])))

  abstract = jax.eval_shape(model.init, jax.random.key(0), example)["params"]
  return jax.tree_util.tree_map_with_path(draw, abstract)


@pytest.fixture(scope="module")
def transformer():
  model = Transformer(
      vocab_size=VOCAB,
      seq_len=SEQ,
      hidden_size=16,
      num_layers=2,
      num_heads=2,
      intermediate_size=32,
  )
  return (
      model,
      _random_params(model, _ids()),
      jax.jit(model.apply, static_argnames="deterministic"),
  )


def _ids():
  return jnp.array([[10, 3, -1, 4, -1, 7], [9, -1, -1, 0, 5, -1]], jnp.int32)


def test_transformer_logits_shape_and_dtype(transformer):
  model, params, apply = transformer
  logits_BxLxV = apply({"params": params}, _ids())
  assert logits_BxLxV.shape == (2, SEQ, VOCAB)
  assert logits_BxLxV.dtype == jnp.float32
  assert np.all(np.isfinite(logits_BxLxV))


def test_transformer_bfloat16_compute_gives_float32_logits(transformer):
  model, params, apply = transformer
  logits_f32 = apply({"params": params}, _ids())
  logits_bf16 = jax.jit(model.clone(dtype=jnp.bfloat16).apply)(
      {"params": params}, _ids()
  )
  assert logits_bf16.dtype == jnp.float32
  np.testing.assert_allclose(logits_bf16, logits_f32, atol=0.2)


def test_bfloat16_products_round_only_the_dense_operands(transformer):
  model, params, apply = transformer
  fast = model.clone(matmul_dtype="bfloat16")
  stored = transformer_lib.kernels_in(params, "bfloat16")
  kinds = {
      "/".join(k.key for k in path): x.dtype
      for path, x in jax.tree_util.tree_leaves_with_path(stored)
  }
  assert {d for n, d in kinds.items() if n.endswith("kernel")} == {
      jnp.dtype(jnp.bfloat16)
  }
  assert {d for n, d in kinds.items() if not n.endswith("kernel")} == {
      jnp.dtype(jnp.float32)
  }
  logits_f32 = apply({"params": params}, _ids())
  fast_apply = jax.jit(fast.apply)
  logits_bf16 = fast_apply({"params": stored}, _ids())
  assert logits_bf16.dtype == jnp.float32
  # Kernels stored in bfloat16 once are the kernels rounded at every call.
  np.testing.assert_array_equal(
      logits_bf16, fast_apply({"params": params}, _ids())
  )
  assert not np.array_equal(logits_bf16, logits_f32)
  np.testing.assert_allclose(logits_bf16, logits_f32, atol=0.05)
  assert transformer_lib.kernels_in(params, "float32") is params


def test_unknown_matmul_dtype_is_named(transformer):
  _, params, _ = transformer
  with pytest.raises(ValueError, match="Unknown matmul_dtype 'int8': float32"):
    transformer_lib.kernels_in(params, "int8")


def test_minus_one_is_the_last_vocab_row(transformer):
  model, params, apply = transformer
  ids = _ids()
  explicit = jnp.where(ids == -1, MASK, ids)
  np.testing.assert_array_equal(
      apply({"params": params}, ids), apply({"params": params}, explicit)
  )
  other = jnp.where(ids == -1, MASK - 1, ids)
  assert not np.allclose(
      apply({"params": params}, ids), apply({"params": params}, other)
  )


def test_attention_is_bidirectional(transformer):
  model, params, apply = transformer
  ids = _ids()
  changed = ids.at[:, -1].set(2)
  logits = apply({"params": params}, ids)
  logits_changed = apply({"params": params}, changed)
  # The first position sees a change at the last one.
  assert np.abs(logits[:, 0] - logits_changed[:, 0]).max() > 1e-4


def test_dropout_is_active_only_when_not_deterministic(transformer):
  model, params, apply = transformer
  ids = _ids()
  eval_logits = apply({"params": params}, ids)
  train_logits = apply(
      {"params": params},
      ids,
      deterministic=False,
      rngs={"dropout": jax.random.key(1)},
  )
  assert np.abs(train_logits - eval_logits).max() > 1e-4


def test_zero_guide_scale_is_identical_to_no_guidance(transformer):
  _, params, apply = transformer
  ids = _ids()
  guides = jnp.array([[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0]], jnp.int32)
  no_guides = jnp.full_like(guides, -1)
  # Within one compiled program (as in a decoding loop) it is bit-identical to no guidance.
  for scale in (0.0, jnp.zeros(2)):
    np.testing.assert_array_equal(
        apply({"params": params}, ids, guide_ids_BxL=guides, guide_scale=scale),
        apply(
            {"params": params}, ids, guide_ids_BxL=no_guides, guide_scale=1.0
        ),
    )
  # Across different programs XLA may fuse differently; only rounding may differ.
  np.testing.assert_allclose(
      apply({"params": params}, ids, guide_ids_BxL=guides, guide_scale=0.0),
      apply({"params": params}, ids),
      atol=1e-5,
  )


def _is_embed(module, _):
  return isinstance(module, Embed)


@functools.partial(jax.jit, static_argnums=0)
def _embeddings(model, params, ids, **kwargs):
  """Output of `Embed_0` (after LayerNorm) for the given call."""
  _, state = model.apply(
      {"params": params}, ids, capture_intermediates=_is_embed, **kwargs
  )
  return state["intermediates"]["Embed_0"]["__call__"][0]


def test_guidance_changes_only_guided_mask_embeddings(transformer):
  model, params, apply = transformer
  ids = _ids()
  # Guides at a masked position, at an unmasked position, and a -1 (no guide) at a mask.
  guides = (
      jnp.full(ids.shape, -1, jnp.int32)
      .at[0, 2]
      .set(5)
      .at[0, 1]
      .set(6)
      .at[1, 1]
      .set(7)
  )
  scales = jnp.array([1.0, 0.0])
  plain = _embeddings(model, params, ids)
  guided = _embeddings(
      model, params, ids, guide_ids_BxL=guides, guide_scale=scales
  )
  changed_BxL = np.abs(guided - plain).max(axis=-1) > 0
  expected_BxL = np.zeros(ids.shape, bool)
  expected_BxL[0, 2] = (
      True  # Row 1 has scale 0; [0, 1] is not a mask; [0, 4] has no guide.
  )
  np.testing.assert_array_equal(changed_BxL, expected_BxL)

  logits_plain = apply(
      {"params": params},
      ids,
      guide_ids_BxL=jnp.full_like(guides, -1),
      guide_scale=scales,
  )
  logits_guided = apply(
      {"params": params}, ids, guide_ids_BxL=guides, guide_scale=scales
  )
  assert np.abs(logits_guided[0] - logits_plain[0]).max() > 1e-4
  np.testing.assert_array_equal(logits_guided[1], logits_plain[1])


def test_guidance_adds_scaled_guide_embedding_before_layer_norm(transformer):
  model, params, apply = transformer
  ids = _ids()
  guides = jnp.full(ids.shape, 3, jnp.int32)
  # Same effect by hand: shift the [MASK] row of the embedding table by 0.5 * row 3.
  table = params["Embed_0"]["word_embeddings"]["embedding"]
  shifted = jax.tree.map(lambda x: x, params)
  shifted["Embed_0"]["word_embeddings"]["embedding"] = table.at[MASK].add(
      0.5 * table[3]
  )
  # The tied output layer must still see the original table, so compare embeddings only.
  np.testing.assert_allclose(
      _embeddings(model, params, ids, guide_ids_BxL=guides, guide_scale=0.5),
      _embeddings(model, shifted, ids),
      atol=1e-6,
  )


def test_transformer_rejects_bad_shapes(transformer):
  model, params, apply = transformer
  with pytest.raises(ValueError, match=r"\[B, 6\]"):
    apply({"params": params}, jnp.zeros((2, SEQ + 1), jnp.int32))
  with pytest.raises(ValueError, match="guide_ids_BxL"):
    apply(
        {"params": params},
        _ids(),
        guide_ids_BxL=jnp.zeros((2, 3), jnp.int32),
        guide_scale=1.0,
    )
  with pytest.raises(ValueError, match="guide_scale"):
    apply(
        {"params": params},
        _ids(),
        guide_ids_BxL=jnp.zeros_like(_ids()),
        guide_scale=jnp.ones(3),
    )


# --- VQGAN -------------------------------------------------------------------------------


def latent_size_factor(model):
  """Image side over token side, as the config-level `models.latent_size` computes it."""
  config = ml_collections.ConfigDict(
      {
          "channel_multipliers": model.channel_multipliers,
          "patch_size": model.patch_size,
      }
  )
  return 16 // models.latent_size(16, config)


CODEBOOK = 16
DIM = 4


@pytest.fixture(scope="module")
def vqgan():
  model = VQGAN(
      filters=8,
      num_res_blocks=1,
      channel_multipliers=(1, 2),
      embedding_dim=DIM,
      codebook_size=CODEBOOK,
      norm_groups=4,
      commitment_cost=0.5,
      entropy_loss_ratio=0.3,
  )
  return (
      model,
      _random_params(model, _images()),
      jax.jit(model.apply, static_argnames=("method", "train")),
  )


def _images():
  return jnp.asarray(
      np.random.default_rng(1).uniform(size=(2, 8, 8, 3)), jnp.float32
  )


def test_vqgan_tree_has_released_top_level_names_and_no_transposed_conv(vqgan):
  _, params, _ = vqgan
  assert set(params) == {"encoder", "quantizer", "decoder"}
  assert params["quantizer"]["codebook"].shape == (CODEBOOK, DIM)
  paths = traverse_util.flatten_dict(params, sep="/")
  assert (
      "decoder/ResBlock_2/Conv_2/kernel" in paths
  )  # 16 -> 8 channels: 1x1 residual conv.
  assert paths["decoder/ResBlock_2/Conv_2/kernel"].shape == (1, 1, 8, 8)
  assert not any("ConvTranspose" in p for p in paths)


def test_vqgan_shapes(vqgan):
  model, params, apply = vqgan
  images = _images()
  quantized, aux = apply({"params": params}, images, method="encode")
  assert quantized.shape == (2, 4, 4, DIM)
  assert aux["encoded"].shape == (2, 4, 4, DIM)
  assert aux["indices"].shape == (2, 4, 4) and aux["indices"].dtype == jnp.int32
  for name in (
      "codebook_loss",
      "commitment_loss",
      "entropy_loss",
      "quantizer_loss",
  ):
    assert aux[name].shape == ()
  reconstruction, _ = apply({"params": params}, images)
  assert (
      reconstruction.shape == images.shape
      and reconstruction.dtype == jnp.float32
  )


def test_space_to_depth_folds_patches_and_depth_to_space_inverts_it():
  x_BxHxWxC = jnp.arange(2 * 4 * 6 * 3, dtype=jnp.float32).reshape(2, 4, 6, 3)
  folded = space_to_depth(x_BxHxWxC, 2)
  assert folded.shape == (2, 2, 3, 12)
  # Channel order: patch row, patch column, colour.
  np.testing.assert_array_equal(
      folded[1, 1, 2].reshape(2, 2, 3), x_BxHxWxC[1, 2:4, 4:6]
  )
  np.testing.assert_array_equal(depth_to_space(folded, 2), x_BxHxWxC)


def test_patch_size_divides_the_token_grid_further():
  model = VQGAN(
      filters=8,
      num_res_blocks=1,
      channel_multipliers=(1, 2),
      embedding_dim=DIM,
      codebook_size=CODEBOOK,
      norm_groups=4,
      patch_size=2,
  )
  images = jnp.tile(_images(), (1, 2, 2, 1))  # 16 x 16 pixels.
  params = _random_params(model, images)
  assert model.downsample_factor == 4 == latent_size_factor(model)
  assert params["encoder"]["Conv_0"]["kernel"].shape == (3, 3, 12, 8)
  indices = model.apply({"params": params}, images, method="tokenize")
  assert indices.shape == (2, 4, 4)
  pixels = model.apply(
      {"params": params}, indices, method="decode_from_indices"
  )
  assert pixels.shape == images.shape


def test_patch_encoder_codes_depend_on_their_patch_only():
  model = VQGAN(
      filters=8,
      num_res_blocks=1,
      channel_multipliers=(1,),
      embedding_dim=DIM,
      codebook_size=CODEBOOK,
      norm_groups=4,
      patch_size=4,
      encoder_kind="patch",
  )
  images = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3))
  params = _random_params(model, images)
  encode = lambda x: model.apply({"params": params}, x, method="encode")[1]
  # Repaint everything but the top-left patch (and its code's neighbours).
  repainted = images.at[:, 4:].set(0.5).at[:, :4, 4:].set(1.0)
  before, after = encode(images)["encoded"], encode(repainted)["encoded"]
  np.testing.assert_allclose(before[:, 0, 0], after[:, 0, 0], rtol=1e-6)
  assert not np.allclose(before[:, 0, 1], after[:, 0, 1])
  decoded = model.apply(
      {"params": params},
      encode(images)["indices"],
      method="decode_from_indices",
  )
  assert decoded.shape == images.shape
  # The released convolutional encoder mixes neighbouring patches.
  conv = model.clone(encoder_kind="conv")
  conv_params = _random_params(conv, images)
  encode = lambda x: conv.apply({"params": conv_params}, x, method="encode")[1]
  assert not np.allclose(
      encode(images)["encoded"][:, 0, 0], encode(repainted)["encoded"][:, 0, 0]
  )


@pytest.mark.parametrize(
    "kind, patch_size, multipliers, message",
    [
        ("patch", 1, (1,), "patch encoder needs patch_size >= 2"),
        ("patch", 4, (1, 2), "patch encoder needs patch_size >= 2"),
        ("mlp", 4, (1,), "Unknown tokenizer encoder 'mlp'"),
    ],
)
def test_patch_encoder_bad_settings(kind, patch_size, multipliers, message):
  model = VQGAN(
      filters=8,
      num_res_blocks=1,
      channel_multipliers=multipliers,
      embedding_dim=DIM,
      codebook_size=CODEBOOK,
      norm_groups=4,
      patch_size=patch_size,
      encoder_kind=kind,
  )
  with pytest.raises(ValueError, match=message):
    _random_params(model, jnp.zeros((1, 16, 16, 3)))


def test_quantizer_picks_nearest_code_and_returns_it(vqgan):
  model, params, apply = vqgan
  quantized, aux = apply({"params": params}, _images(), method="encode")
  codebook = np.asarray(params["quantizer"]["codebook"])
  encoded = np.asarray(aux["encoded"])
  distances = ((encoded[..., None, :] - codebook) ** 2).sum(-1)
  np.testing.assert_array_equal(aux["indices"], distances.argmin(-1))
  np.testing.assert_array_equal(quantized, codebook[np.asarray(aux["indices"])])


def test_quantizer_losses_combine_as_documented(vqgan):
  model, params, apply = vqgan
  quantized, aux = apply({"params": params}, _images(), method="encode")
  mse = np.mean((np.asarray(quantized) - np.asarray(aux["encoded"])) ** 2)
  np.testing.assert_allclose(aux["codebook_loss"], mse, rtol=1e-5)
  np.testing.assert_allclose(aux["commitment_loss"], mse, rtol=1e-5)
  np.testing.assert_allclose(
      aux["quantizer_loss"],
      aux["codebook_loss"]
      + 0.5 * aux["commitment_loss"]
      + 0.3 * aux["entropy_loss"],
      rtol=1e-5,
  )


def test_entropy_loss_rewards_confident_and_diverse_assignments():
  confident_diverse = 100.0 * jnp.eye(4)
  confident_collapsed = 100.0 * jnp.tile(jnp.eye(4)[:1], (4, 1))
  uniform = jnp.zeros((4, 4))
  np.testing.assert_allclose(
      entropy_loss(confident_diverse), -np.log(4), atol=1e-3
  )
  np.testing.assert_allclose(entropy_loss(confident_collapsed), 0.0, atol=1e-3)
  # Uniform soft assignments: per-sample entropy log 4 cancels the batch entropy.
  np.testing.assert_allclose(entropy_loss(uniform), 0.0, atol=1e-3)


def test_straight_through_gradient_only_in_training(vqgan):
  model, params, _ = vqgan

  def reconstruction_sum(images, train):
    return model.apply({"params": params}, images, train=train)[0].sum()

  image_grad = jax.jit(jax.grad(reconstruction_sum), static_argnums=1)
  grad_train = image_grad(_images(), True)
  grad_eval = image_grad(_images(), False)
  assert np.abs(grad_train).max() > 0
  assert (
      np.abs(grad_eval).max() == 0
  )  # argmin blocks gradients without the estimator.


def test_decode_from_indices_matches_full_reconstruction(vqgan):
  model, params, apply = vqgan
  images = _images()
  indices = apply({"params": params}, images, method="tokenize")
  reconstruction, aux = apply({"params": params}, images)
  np.testing.assert_array_equal(indices, aux["indices"])
  np.testing.assert_allclose(
      apply({"params": params}, indices, method="decode_from_indices"),
      reconstruction,
      atol=1e-6,
  )


def test_vqgan_rejects_bad_images(vqgan):
  model, params, apply = vqgan
  with pytest.raises(ValueError, match="divisible by 2"):
    apply({"params": params}, jnp.zeros((1, 7, 8, 3)))
  with pytest.raises(ValueError, match=r"\[B, H, W, 3\]"):
    apply({"params": params}, jnp.zeros((1, 8, 8, 1)))


def test_vqgan_rejects_norm_groups_not_dividing_width():
  model = VQGAN(
      filters=6,
      num_res_blocks=1,
      channel_multipliers=(1, 2),
      embedding_dim=DIM,
      codebook_size=CODEBOOK,
      norm_groups=4,
  )
  with pytest.raises(ValueError, match="norm_groups 4"):
    jax.eval_shape(model.init, jax.random.key(0), _images())


def test_vqgan_bfloat16_compute_keeps_output_types(vqgan):
  model, params, _ = vqgan
  reconstruction, aux = jax.jit(model.clone(dtype=jnp.bfloat16).apply)(
      {"params": params}, _images()
  )
  assert (
      reconstruction.dtype == jnp.float32 and aux["indices"].dtype == jnp.int32
  )
  assert aux["quantizer_loss"].dtype == jnp.float32
  quantized, _ = jax.jit(
      functools.partial(model.clone(dtype=jnp.bfloat16).apply, method="encode")
  )({"params": params}, _images())
  assert (
      quantized.dtype == jnp.bfloat16
  )  # The codes are handed on in the compute dtype.


@pytest.mark.parametrize(
    "length_q, length_k", [(1, 7), (5, 65), (65, 65), (257, 257), (130, 300)]
)
@pytest.mark.parametrize(
    "max_rows, max_scores",
    # Every pair in one block; some pairs per block; one pair whose rows
    # alone pass max_scores; the defaults.
    [(64, 2**30), (64, 3 * 64 * 65), (16, 1), (256, 2**21)],
)
def test_blocked_attention_is_softmax_attention(
    length_q, length_k, max_rows, max_scores
):
  keys = jax.random.split(jax.random.key(0), 3)
  query = jax.random.normal(keys[0], (3, length_q, 4, 8))
  key, value = (jax.random.normal(k, (3, length_k, 4, 8)) for k in keys[1:])
  np.testing.assert_allclose(
      transformer_lib.blocked_attention(
          query, key, value, max_rows, max_scores
      ),
      jax.nn.dot_product_attention(query, key, value),
      atol=2e-6,
  )
