"""Bidirectional MaskGIT transformer (BERT-style, post-LayerNorm).

The module tree and parameter names match the released MaskGIT ImageNet
checkpoints one-to-one (``Embed_0``, ``TransformerLayer_i``, ``MlmLayer_0``),
so the released weights load without any renaming.

Token convention: ids ``[0, V-1)`` are real tokens (codebook codes, then class
tokens); the mask token is the last vocabulary row ``V-1``. As in the release,
an input id of ``-1`` wraps to that last row, so ``-1`` and ``V-1`` are the
same input.

Optional guidance re-embedding: at masked positions with a guidance id
``g >= 0``, ``guide_scale * word_embedding[g]`` is added to the [MASK]
embedding, which lets the model see a hint of the token a user's stroke
suggests without committing to it. It adds no parameters.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

LAYERNORM_EPSILON = 1e-12
INIT_STDDEV = 0.02

Array = jax.Array
# Keys and values of one layer, each [B, L, heads, head_dim].
KeysValues = tuple[Array, Array]


def truncated_normal_init(
    stddev: float = INIT_STDDEV,
) -> nn.initializers.Initializer:
  """Truncated normal in [-2, 2] standard deviations, scaled by `stddev` (as released)."""

  def init(
      key: Array, shape: tuple[int, ...], dtype: Any = jnp.float32
  ) -> Array:
    return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype) * stddev

  return init


# The blocks of `blocked_attention`: at most 256 query rows, and as many
# (example, head) pairs as keep a block's scores within 2^21 floats (8 MiB,
# in cache). Measured on 2 cores at 16 heads of 48, against 64 rows of every
# pair: 30% faster at 1 x 1,025 tokens, 10-20% at 8 x 1,025, 0-5% at 257
# tokens; rows of 512 or all of 257 were slower at 257 tokens.
ATTENTION_ROWS = 256
ATTENTION_SCORES = 2**21

# Operand dtypes of the dense layers' products (`Transformer.matmul_dtype`).
# bfloat16 operands are accumulated in float32 and give float32 results: on a
# CPU with AVX-512 BF16 an edit's decode ran about 2x faster than with float32
# products (docs/decoding.md), provided the kernels are stored in bfloat16
# (`kernels_in`) rather than converted at every call.
MATMUL_DTYPES = ("float32", "bfloat16")


def _bfloat16_dot_general(
    lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None
):
  """`lax.dot_general` of the operands rounded to bfloat16, summed and
  returned in float32 (whatever the module's compute `dtype`)."""
  del preferred_element_type
  return jax.lax.dot_general(
      lhs.astype(jnp.bfloat16),
      rhs.astype(jnp.bfloat16),
      dimension_numbers,
      precision=precision,
      preferred_element_type=jnp.float32,
  )


def _dense_dot_general(matmul_dtype: str):
  """`dot_general` of flax's dense layers for `matmul_dtype` (None: lax's)."""
  if matmul_dtype not in MATMUL_DTYPES:
    raise ValueError(
        f"Unknown matmul_dtype {matmul_dtype!r}: {', '.join(MATMUL_DTYPES)}."
    )
  return _bfloat16_dot_general if matmul_dtype == "bfloat16" else None


def kernels_in(params, matmul_dtype: str):
  """`params` with their dense kernels stored in `matmul_dtype`, for a
  `Transformer(matmul_dtype=...)`: converted once here rather than at every
  call. Embeddings, biases and layer norms stay float32; "float32" returns
  `params` as they are."""
  _dense_dot_general(matmul_dtype)  # Checks the name.
  if matmul_dtype == "float32":
    return params
  dtype = jnp.dtype(matmul_dtype)
  is_kernel = lambda path, x: (
      isinstance(path[-1], jax.tree_util.DictKey)
      and path[-1].key == "kernel"
      and x.ndim >= 2
  )
  return jax.tree_util.tree_map_with_path(
      lambda path, x: x.astype(dtype) if is_kernel(path, x) else x, params
  )


def blocked_attention(
    query_BxQxNxD,
    key_BxLxNxD,
    value_BxLxNxD,
    max_rows=ATTENTION_ROWS,
    max_scores=ATTENTION_SCORES,
):
  """Softmax attention over blocks of query rows and (example, head) pairs,
  normalised after the value product.

  The same function as `jax.nn.dot_product_attention` (to float rounding),
  but XLA:CPU then never writes the whole [B, heads, Q, L] score tensor to
  memory: 2-4x faster at the released sizes on a CPU (docs/performance.md).

  Args:
    query_BxQxNxD, key_BxLxNxD, value_BxLxNxD: flax layout [B, len, heads,
      head_dim].
    max_rows: the most query rows per block.
    max_scores: the most scores per block, unless one pair's rows exceed it.

  Returns:
    [B, Q, heads, head_dim].
  """
  batch, length_q, heads, depth = query_BxQxNxD.shape
  length_k = key_BxLxNxD.shape[1]
  # Equal row blocks of at most `max_rows`, so that little is padding (257
  # rows: two blocks of 129, not 256 + 256).
  num_row_blocks = -(-length_q // max_rows)
  rows = -(-length_q // num_row_blocks)
  pad = num_row_blocks * rows - length_q
  pairs = batch * heads
  group = max(
      g
      for g in range(1, pairs + 1)
      if pairs % g == 0 and (g == 1 or g * rows * length_k <= max_scores)
  )

  def pair_groups(x_BxLxNxD):  # -> [pairs / group, group, L, D]
    x_BxNxLxD = jnp.transpose(x_BxLxNxD, (0, 2, 1, 3))
    return x_BxNxLxD.reshape(pairs // group, group, -1, depth)

  scale = jnp.asarray(1.0 / np.sqrt(depth), query_BxQxNxD.dtype)
  query_GxgxQxD = jnp.pad(
      pair_groups(query_BxQxNxD * scale), ((0, 0), (0, 0), (0, pad), (0, 0))
  )
  query_GxKxgxrxD = jnp.moveaxis(
      query_GxgxQxD.reshape(pairs // group, group, num_row_blocks, rows, depth),
      2,
      1,
  )

  def attend_group(inputs):
    query_KxgxrxD, key_gxLxD, value_gxLxD = inputs

    def attend(query_gxrxD):
      scores_gxrxL = jnp.einsum("gqd,gld->gql", query_gxrxD, key_gxLxD)
      weights_gxrxL = jnp.exp(
          scores_gxrxL - scores_gxrxL.max(-1, keepdims=True)
      )
      out_gxrxD = jnp.einsum("gql,gld->gqd", weights_gxrxL, value_gxLxD)
      return out_gxrxD / weights_gxrxL.sum(-1, keepdims=True)

    return jax.lax.map(attend, query_KxgxrxD)

  out_GxKxgxrxD = jax.lax.map(
      attend_group,
      (query_GxKxgxrxD, pair_groups(key_BxLxNxD), pair_groups(value_BxLxNxD)),
  )
  out_BxNxQxD = jnp.moveaxis(out_GxKxgxrxD, 1, 2).reshape(
      batch, heads, -1, depth
  )[:, :, :length_q]
  return jnp.transpose(out_BxNxQxD, (0, 2, 1, 3))


def _attention(
    query,
    key,
    value,
    dropout_rng=None,
    dropout_rate=0.0,
    deterministic=True,
    dtype=None,
):
  """Attention for `nn.MultiHeadDotProductAttention`: `blocked_attention`
  at inference, flax's reference kernel in training.

  The blocked forward is faster on XLA:CPU, but its backward (through a
  loop over blocks) is slower: at the reference size (batch 32, 65 tokens,
  8 heads of 32) forward and backward took 24 ms per layer blocked against
  16 ms with flax's kernel, which also applies attention dropout.

  Shapes follow flax: query/key/value [B, L, heads, head_dim].
  """
  if deterministic:
    return blocked_attention(query, key, value)
  return nn.dot_product_attention(
      query,
      key,
      value,
      dropout_rng=dropout_rng,
      dropout_rate=dropout_rate,
      deterministic=deterministic,
      dtype=dtype,
  )


def _layer_norm(name: str, dtype: Any) -> nn.LayerNorm:
  return nn.LayerNorm(epsilon=LAYERNORM_EPSILON, dtype=dtype, name=name)


class Embed(nn.Module):
  """Word + position embeddings -> LayerNorm -> dropout (released `Embed_0`)."""

  vocab_size: int
  seq_len: int
  hidden_size: int
  dropout_rate: float
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(
      self,
      input_ids_BxL: Array,
      guide_ids_BxL: Array | None,
      guide_scale: float | Array,
      deterministic: bool,
      position_ids_BxL: Array | None = None,
  ) -> Array:
    word_embedder = nn.Embed(
        self.vocab_size,
        self.hidden_size,
        dtype=self.dtype,
        embedding_init=truncated_normal_init(),
        name="word_embeddings",
    )
    position_embedder = nn.Embed(
        self.seq_len,
        self.hidden_size,
        dtype=self.dtype,
        embedding_init=truncated_normal_init(),
        name="position_embeddings",
    )

    # Negative ids wrap like the release's `jnp.take`, so -1 is the last row ([MASK]).
    ids_BxL = jnp.where(
        input_ids_BxL < 0, input_ids_BxL + self.vocab_size, input_ids_BxL
    )
    words_BxLxH = word_embedder(ids_BxL)
    if guide_ids_BxL is not None:
      words_BxLxH = words_BxLxH + self._guidance(
          word_embedder, ids_BxL, guide_ids_BxL, guide_scale
      )
    if position_ids_BxL is None:
      position_ids_BxL = jnp.arange(ids_BxL.shape[1])[None, :]
    positions_BxLxH = position_embedder(position_ids_BxL)

    embeddings_BxLxH = _layer_norm("embeddings_ln", self.dtype)(
        words_BxLxH + positions_BxLxH
    )
    return nn.Dropout(self.dropout_rate)(
        embeddings_BxLxH, deterministic=deterministic
    )

  def _guidance(
      self,
      word_embedder: nn.Embed,
      ids_BxL: Array,
      guide_ids_BxL: Array,
      guide_scale: float | Array,
  ) -> Array:
    """Scaled guidance-token embeddings at [MASK] positions with a guide id >= 0, else 0."""
    if guide_ids_BxL.shape != ids_BxL.shape:
      raise ValueError(
          f"guide_ids_BxL has shape {guide_ids_BxL.shape}, expected the input shape "
          f"{ids_BxL.shape}."
      )
    scale = jnp.asarray(guide_scale, self.dtype)
    if scale.ndim > 1 or (
        scale.ndim == 1 and scale.shape[0] != ids_BxL.shape[0]
    ):
      raise ValueError(
          f"guide_scale must be a scalar or have shape [B]=({ids_BxL.shape[0]},), got "
          f"shape {scale.shape}."
      )
    scale_Bx1x1 = jnp.reshape(scale, (-1, 1, 1))
    use_BxL = (ids_BxL == self.vocab_size - 1) & (guide_ids_BxL >= 0)
    guides_BxLxH = word_embedder(jnp.maximum(guide_ids_BxL, 0))
    return jnp.where(use_BxL[..., None], scale_Bx1x1 * guides_BxLxH, 0.0)


class SelfAttention(nn.Module):
  """Multi-head self-attention with the parameters of flax's
  `nn.MultiHeadDotProductAttention` (released `self_attention`), which can
  reuse keys and values: see `Transformer`."""

  hidden_size: int
  num_heads: int
  dropout_rate: float
  dtype: Any = jnp.float32
  matmul_dtype: str = "float32"

  @nn.compact
  def __call__(
      self,
      x_BxQxH: Array,
      deterministic: bool,
      cache: KeysValues | None = None,
      query_indices_BxQ: Array | None = None,
  ) -> tuple[Array, KeysValues]:
    dense = functools.partial(
        nn.DenseGeneral,
        features=(self.num_heads, self.hidden_size // self.num_heads),
        kernel_init=truncated_normal_init(),
        bias_init=nn.initializers.zeros,
        dtype=self.dtype,
        dot_general=_dense_dot_general(self.matmul_dtype),
    )
    query_BxQxNxD = dense(name="query")(x_BxQxH)
    keys_BxLxNxD = new_keys_BxQxNxD = dense(name="key")(x_BxQxH)
    values_BxLxNxD = new_values_BxQxNxD = dense(name="value")(x_BxQxH)
    if cache is not None:
      # x holds the positions `query_indices_BxQ` of a sequence of L: their
      # keys and values are fresh, the others' come from `cache`.
      batch_Bx1 = jnp.arange(x_BxQxH.shape[0])[:, None]
      at_queries = (batch_Bx1, query_indices_BxQ)
      keys_BxLxNxD = cache[0].at[at_queries].set(new_keys_BxQxNxD)
      values_BxLxNxD = cache[1].at[at_queries].set(new_values_BxQxNxD)
    dropout_rng = (
        self.make_rng("dropout")
        if self.dropout_rate > 0 and not deterministic
        else None
    )
    attended_BxQxNxD = _attention(
        query_BxQxNxD,
        keys_BxLxNxD,
        values_BxLxNxD,
        dropout_rng=dropout_rng,
        dropout_rate=self.dropout_rate,
        deterministic=deterministic,
        dtype=self.dtype,
    )
    out_BxQxH = nn.DenseGeneral(
        self.hidden_size,
        axis=(-2, -1),
        kernel_init=truncated_normal_init(),
        bias_init=nn.initializers.zeros,
        dtype=self.dtype,
        dot_general=_dense_dot_general(self.matmul_dtype),
        name="out",
    )(attended_BxQxNxD)
    return out_BxQxH, (keys_BxLxNxD, values_BxLxNxD)


class Attention(nn.Module):
  """Bidirectional self-attention, dropout, residual, post-LayerNorm."""

  hidden_size: int
  num_heads: int
  dropout_rate: float
  dtype: Any = jnp.float32
  matmul_dtype: str = "float32"

  @nn.compact
  def __call__(
      self,
      x_BxQxH: Array,
      deterministic: bool,
      cache: KeysValues | None = None,
      query_indices_BxQ: Array | None = None,
  ) -> tuple[Array, KeysValues]:
    attended_BxQxH, keys_values = SelfAttention(
        self.hidden_size,
        self.num_heads,
        self.dropout_rate,
        self.dtype,
        self.matmul_dtype,
        name="self_attention",
    )(x_BxQxH, deterministic, cache, query_indices_BxQ)
    attended_BxQxH = nn.Dropout(self.dropout_rate)(
        attended_BxQxH, deterministic=deterministic
    )
    return (
        _layer_norm("attention_output_ln", self.dtype)(
            attended_BxQxH + x_BxQxH
        ),
        keys_values,
    )


class Mlp(nn.Module):
  """Dense -> GELU -> Dense, dropout, residual, post-LayerNorm."""

  hidden_size: int
  intermediate_size: int
  dropout_rate: float
  dtype: Any = jnp.float32
  matmul_dtype: str = "float32"

  @nn.compact
  def __call__(self, x_BxLxH: Array, deterministic: bool) -> Array:
    h_BxLxI = nn.Dense(
        self.intermediate_size,
        kernel_init=truncated_normal_init(),
        dtype=self.dtype,
        dot_general=_dense_dot_general(self.matmul_dtype),
        name="intermediate_output",
    )(x_BxLxH)
    h_BxLxI = jax.nn.gelu(h_BxLxI)
    out_BxLxH = nn.Dense(
        self.hidden_size,
        kernel_init=truncated_normal_init(),
        dtype=self.dtype,
        dot_general=_dense_dot_general(self.matmul_dtype),
        name="layer_output",
    )(h_BxLxI)
    out_BxLxH = nn.Dropout(self.dropout_rate)(
        out_BxLxH, deterministic=deterministic
    )
    return _layer_norm("layer_output_ln", self.dtype)(out_BxLxH + x_BxLxH)


class TransformerLayer(nn.Module):
  """One post-LN transformer block (released `TransformerLayer_i`)."""

  hidden_size: int
  num_heads: int
  intermediate_size: int
  dropout_rate: float
  dtype: Any = jnp.float32
  matmul_dtype: str = "float32"

  @nn.compact
  def __call__(
      self,
      x_BxQxH: Array,
      deterministic: bool,
      cache: KeysValues | None = None,
      query_indices_BxQ: Array | None = None,
  ) -> tuple[Array, KeysValues]:
    x_BxQxH, keys_values = Attention(
        self.hidden_size,
        self.num_heads,
        self.dropout_rate,
        self.dtype,
        self.matmul_dtype,
    )(x_BxQxH, deterministic, cache, query_indices_BxQ)
    return (
        Mlp(
            self.hidden_size,
            self.intermediate_size,
            self.dropout_rate,
            self.dtype,
            self.matmul_dtype,
        )(x_BxQxH, deterministic),
        keys_values,
    )


class Bias(nn.Module):
  """Learned per-logit bias (released `mlm_bias/bias`)."""

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxLxV: Array) -> Array:
    bias_V = self.param(
        "bias", nn.initializers.zeros, (x_BxLxV.shape[-1],), jnp.float32
    )
    return x_BxLxV + bias_V.astype(self.dtype)


class MlmLayer(nn.Module):
  """Dense -> GELU -> LayerNorm -> logits against the tied word embeddings."""

  hidden_size: int
  dtype: Any = jnp.float32
  matmul_dtype: str = "float32"

  @nn.compact
  def __call__(self, x_BxLxH: Array, word_embeddings_VxH: Array) -> Array:
    h_BxLxH = nn.Dense(
        self.hidden_size,
        kernel_init=truncated_normal_init(),
        dtype=self.dtype,
        dot_general=_dense_dot_general(self.matmul_dtype),
        name="mlm_dense",
    )(x_BxLxH)
    h_BxLxH = _layer_norm("mlm_ln", self.dtype)(jax.nn.gelu(h_BxLxH))
    logits_BxLxV = h_BxLxH @ word_embeddings_VxH.astype(self.dtype).T
    return Bias(self.dtype, name="mlm_bias")(logits_BxLxV)


class Transformer(nn.Module):
  """MaskGIT bidirectional transformer over token ids.

  Attributes:
    vocab_size: V = codebook size + number of classes + 1 ([MASK] is row V-1).
    seq_len: L, number of positions (tokens + class token).
    hidden_size: H.
    num_layers: Number of transformer blocks.
    num_heads: Attention heads; must divide `hidden_size`.
    intermediate_size: MLP width.
    dropout_rate: Dropout on embeddings, attention probabilities and block outputs.
    dtype: Compute dtype; parameters stay float32 and logits are float32.
    matmul_dtype: Operand dtype of the dense layers' products, one of
      `MATMUL_DTYPES` (see `kernels_in`); the products are float32 for any
      `dtype`.
  """

  vocab_size: int
  seq_len: int
  hidden_size: int
  num_layers: int
  num_heads: int
  intermediate_size: int
  dropout_rate: float = 0.1
  dtype: Any = jnp.float32
  matmul_dtype: str = "float32"

  @nn.compact
  def __call__(
      self,
      input_ids_BxL: Array,
      *,
      deterministic: bool = True,
      guide_ids_BxL: Array | None = None,
      guide_scale: float | Array = 0.0,
      position_ids_BxL: Array | None = None,
      cache: tuple[KeysValues, ...] | None = None,
      query_indices_BxL: Array | None = None,
      return_cache: bool = False,
  ):
    """Predicts token logits at every position.

    Key/value reuse: with `return_cache`, a call also returns every layer's
    keys and values; a later call given them as `cache` may run only some
    positions `query_indices_BxL` of that sequence (with their
    `position_ids_BxL`). They attend to fresh keys and values of their own
    and to the cached ones of the other positions, whose inputs may since
    have changed: an approximation that saves the cost of the positions not
    run (ReCAP,
    arXiv 2505.19089).

    Args:
      input_ids_BxL: int [B, L] ids in [-1, V); -1 and V-1 both mean [MASK].
        L = seq_len, or fewer with `position_ids_BxL`.
      deterministic: Disables dropout (needs a "dropout" rng when False).
      guide_ids_BxL: Optional int [B, L] guidance ids; entries < 0 mean no guidance.
        Only [MASK] positions are guided.
      guide_scale: Scalar or [B] weight of the guidance embedding; 0 means none.
      position_ids_BxL: Optional int [B, L] position of each input in [0,
        seq_len) (default: 0..L-1); a window of the sequence keeps the
        embeddings of its true positions.
      cache: keys and values per layer, each [B, S, heads, head_dim], of an
        earlier call over S inputs; the inputs are then those at
        `query_indices_BxL` of that sequence.
      query_indices_BxL: int [B, L] indices in [0, S) of the inputs (with `cache`).
      return_cache: also return the keys and values per layer.

    Returns:
      float32 [B, L, V] logits (and the keys and values with return_cache).
    """
    if (cache is None) != (query_indices_BxL is None) or (
        cache is not None and position_ids_BxL is None
    ):
      raise ValueError(
          "cache, query_indices_BxL and position_ids_BxL come together."
      )
    if input_ids_BxL.ndim != 2 or (
        input_ids_BxL.shape[1] != self.seq_len
        if position_ids_BxL is None
        else input_ids_BxL.shape[1] > self.seq_len
    ):
      raise ValueError(
          f"input_ids_BxL must have shape [B, {self.seq_len}] (or at most "
          f"{self.seq_len} positions with position_ids_BxL), got "
          f"{input_ids_BxL.shape}."
      )
    if position_ids_BxL is not None and (
        jnp.shape(position_ids_BxL)[-1] != input_ids_BxL.shape[1]
    ):
      raise ValueError(
          f"position_ids_BxL has shape {jnp.shape(position_ids_BxL)}"
          f", expected [B, {input_ids_BxL.shape[1]}]."
      )
    if self.hidden_size % self.num_heads:
      raise ValueError(
          f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}."
      )

    x_BxLxH = Embed(
        self.vocab_size,
        self.seq_len,
        self.hidden_size,
        self.dropout_rate,
        self.dtype,
    )(
        input_ids_BxL.astype(jnp.int32),
        guide_ids_BxL,
        guide_scale,
        deterministic,
        position_ids_BxL,
    )
    keys_values = []
    for i in range(self.num_layers):
      x_BxLxH, layer_keys_values = TransformerLayer(
          self.hidden_size,
          self.num_heads,
          self.intermediate_size,
          self.dropout_rate,
          self.dtype,
          self.matmul_dtype,
      )(
          x_BxLxH,
          deterministic,
          None if cache is None else cache[i],
          query_indices_BxL,
      )
      keys_values.append(layer_keys_values)
    word_embeddings_VxH = self.variables["params"]["Embed_0"][
        "word_embeddings"
    ]["embedding"]
    logits_BxLxV = MlmLayer(self.hidden_size, self.dtype, self.matmul_dtype)(
        x_BxLxH, word_embeddings_VxH
    ).astype(jnp.float32)
    return (logits_BxLxV, tuple(keys_values)) if return_cache else logits_BxLxV
