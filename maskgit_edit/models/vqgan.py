"""VQGAN image tokenizer (MaskGIT variant: no non-local layers).

The module tree and parameter names match the released MaskGIT tokenizer
(`encoder`, `quantizer/codebook`, `decoder`, with `Conv_i`, `ResBlock_i`,
`GroupNorm_i` inside), so the released weights load without renaming.
Images are float in [0, 1], NHWC. Every level but the last halves the
resolution, so a tokenizer with `n` channel multipliers maps H x W pixels to
H / 2^(n-1) x W / 2^(n-1) tokens. An optional `patch_size` p > 1 (not in the
release) first folds p x p pixel patches into channels (space-to-depth) and
unfolds the decoder's output the same way (pixel shuffle), dividing the token
grid by p more: the convolutions then run at low resolution on wide
channels, which XLA:CPU executes far more efficiently than thin
full-resolution ones.

`encoder="patch"` (not in the release) replaces the convolutional encoder by
an MLP applied to each p x p patch alone: a code is then a function of the
pixels it covers only. The convolutional encoder's 3x3 kernels and
GroupNorm statistics over the whole image put context into every code (on
Fashion-MNIST the always-black corner patch got ~140 different codes), which
the transformer then has to predict. The decoder keeps its context.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
ENCODERS = ("conv", "patch")


class ResBlock(nn.Module):
  """GroupNorm -> swish -> Conv3x3 -> GroupNorm -> swish -> Conv3x3, plus a residual.

  When the channel count changes, the released model forms the residual with a
  1x1 conv applied to the block's *output*, not its input (so the block returns
  `h + conv1x1(h)`); this is replicated so released weights behave identically.
  """

  filters: int
  norm_groups: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxHxWxC: Array) -> Array:
    residual = x_BxHxWxC
    h = x_BxHxWxC
    for _ in range(2):
      h = nn.GroupNorm(num_groups=self.norm_groups, dtype=self.dtype)(h)
      h = nn.swish(h)
      h = nn.Conv(self.filters, (3, 3), use_bias=False, dtype=self.dtype)(h)
    if x_BxHxWxC.shape[-1] != self.filters:
      residual = nn.Conv(
          self.filters, (1, 1), use_bias=False, dtype=self.dtype
      )(h)
    return h + residual


class Encoder(nn.Module):
  """Pixels [B, H, W, 3] -> pre-quantization features [B, h, w, embedding_dim]."""

  filters: int
  num_res_blocks: int
  channel_multipliers: tuple[int, ...]
  embedding_dim: int
  norm_groups: int
  patch_size: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images_BxHxWx3: Array) -> Array:
    x = images_BxHxWx3
    if self.patch_size > 1:
      x = space_to_depth(x, self.patch_size)
    x = nn.Conv(self.filters, (3, 3), use_bias=False, dtype=self.dtype)(x)
    num_levels = len(self.channel_multipliers)
    for level, multiplier in enumerate(self.channel_multipliers):
      filters = self.filters * multiplier
      for _ in range(self.num_res_blocks):
        x = ResBlock(filters, self.norm_groups, self.dtype)(x)
      if level < num_levels - 1:
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    for _ in range(self.num_res_blocks):
      x = ResBlock(filters, self.norm_groups, self.dtype)(x)
    x = nn.swish(nn.GroupNorm(num_groups=self.norm_groups, dtype=self.dtype)(x))
    return nn.Conv(self.embedding_dim, (1, 1), dtype=self.dtype)(x)


class PatchEncoder(nn.Module):
  """Pixels [B, H, W, 3] -> features [B, H/p, W/p, embedding_dim], per patch.

  Two hidden swish layers of `filters` units on each p x p patch; no
  information crosses patches.
  """

  filters: int
  embedding_dim: int
  patch_size: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images_BxHxWx3: Array) -> Array:
    x = space_to_depth(images_BxHxWx3, self.patch_size)
    for _ in range(2):
      x = nn.swish(nn.Dense(self.filters, dtype=self.dtype)(x))
    return nn.Dense(self.embedding_dim, dtype=self.dtype)(x)


def _upsample_nearest_2x(x_BxHxWxC: Array) -> Array:
  return jnp.repeat(jnp.repeat(x_BxHxWxC, 2, axis=1), 2, axis=2)


def space_to_depth(x_BxHxWxC: Array, p: int) -> Array:
  """[B, H, W, C] -> [B, H/p, W/p, p*p*C]: each p x p patch into channels."""
  b, h, w, c = x_BxHxWxC.shape
  x = x_BxHxWxC.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // p, w // p, p * p * c)


def depth_to_space(x_Bxhxwxc: Array, p: int) -> Array:
  """Inverse of `space_to_depth`: [B, h, w, p*p*C] -> [B, h*p, w*p, C]."""
  b, h, w, c = x_Bxhxwxc.shape
  x = x_Bxhxwxc.reshape(b, h, w, p, p, c // (p * p)).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h * p, w * p, c // (p * p))


class Decoder(nn.Module):
  """Quantized features [B, h, w, embedding_dim] -> pixels [B, H, W, 3] (not clipped)."""

  filters: int
  num_res_blocks: int
  channel_multipliers: tuple[int, ...]
  norm_groups: int
  patch_size: int = 1
  output_dim: int = 3
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, features_Bxhxwxd: Array) -> Array:
    filters = self.filters * self.channel_multipliers[-1]
    x = nn.Conv(filters, (3, 3), dtype=self.dtype)(features_Bxhxwxd)
    for _ in range(self.num_res_blocks):
      x = ResBlock(filters, self.norm_groups, self.dtype)(x)
    for level in reversed(range(len(self.channel_multipliers))):
      filters = self.filters * self.channel_multipliers[level]
      for _ in range(self.num_res_blocks):
        x = ResBlock(filters, self.norm_groups, self.dtype)(x)
      if level > 0:
        # Nearest upsampling + conv instead of a transposed conv avoids checkerboard artifacts.
        x = nn.Conv(filters, (3, 3), dtype=self.dtype)(_upsample_nearest_2x(x))
    x = nn.swish(nn.GroupNorm(num_groups=self.norm_groups, dtype=self.dtype)(x))
    p = self.patch_size
    x = nn.Conv(self.output_dim * p * p, (3, 3), dtype=self.dtype)(x)
    return depth_to_space(x, p) if p > 1 else x


def downsample_factor(channel_multipliers, patch_size: int = 1) -> int:
  """Pixels per token along each side."""
  return patch_size * 2 ** (len(channel_multipliers) - 1)


def squared_distances(x_NxD: Array, codebook_KxD: Array) -> Array:
  """Squared L2 distances [N, K], expanded as |x|^2 - 2 x.c + |c|^2 like the release."""
  x2_Nx1 = jnp.sum(x_NxD**2, axis=1, keepdims=True)
  c2_1xK = jnp.sum(codebook_KxD**2, axis=1)[None, :]
  return x2_Nx1 - 2 * (x_NxD @ codebook_KxD.T) + c2_1xK


def entropy_loss(logits_NxK: Array) -> Array:
  """Mean per-sample entropy minus the entropy of the batch-averaged assignment.

  Minimising it makes each sample's soft assignment confident while spreading
  the batch over the whole codebook (the release's "softmax" entropy loss).

  Args:
    logits_NxK: Affinities (negative distances already divided by a temperature).

  Returns:
    float32 scalar.
  """
  probs_NxK = jax.nn.softmax(logits_NxK, axis=-1)
  log_probs_NxK = jax.nn.log_softmax(logits_NxK + 1e-5, axis=-1)
  sample_entropy = -jnp.mean(jnp.sum(probs_NxK * log_probs_NxK, axis=-1))
  avg_probs_K = jnp.mean(probs_NxK, axis=0)
  avg_entropy = -jnp.sum(avg_probs_K * jnp.log(avg_probs_K + 1e-5))
  return sample_entropy - avg_entropy


class VectorQuantizer(nn.Module):
  """Nearest-code vector quantizer with a learned `codebook` [K, D]."""

  codebook_size: int
  embedding_dim: int
  commitment_cost: float = 0.25
  entropy_loss_ratio: float = 0.0
  entropy_temperature: float = 0.01
  dtype: Any = jnp.float32

  def setup(self):
    self.codebook = self.param(
        "codebook",
        nn.initializers.variance_scaling(1.0, "fan_in", "uniform"),
        (self.codebook_size, self.embedding_dim),
        jnp.float32,
    )

  def __call__(
      self, encoded_Bxhxwxd: Array, train: bool = False
  ) -> tuple[Array, dict[str, Array]]:
    """Quantizes features; see `VQGAN.encode` for the outputs."""
    # Nearest-code search in float32 even under low-precision compute: close codes must not tie.
    flat_NxD = encoded_Bxhxwxd.reshape(-1, self.embedding_dim).astype(
        jnp.float32
    )
    distances_NxK = squared_distances(flat_NxD, self.codebook)
    indices_Bxhxw = (
        jnp.argmin(distances_NxK, axis=-1)
        .astype(jnp.int32)
        .reshape(encoded_Bxhxwxd.shape[:-1])
    )
    quantized = self.decode_ids(indices_Bxhxw)

    encoded_f32 = encoded_Bxhxwxd.astype(jnp.float32)
    quantized_f32 = quantized.astype(jnp.float32)
    codebook_loss = jnp.mean(
        (quantized_f32 - jax.lax.stop_gradient(encoded_f32)) ** 2
    )
    commitment_loss = jnp.mean(
        (jax.lax.stop_gradient(quantized_f32) - encoded_f32) ** 2
    )
    # XLA keeps 0 * x (x may be NaN), so an unused regulariser would still
    # cost an [N, K] softmax and its gradient every step.
    entropy = (
        entropy_loss(-distances_NxK / self.entropy_temperature)
        if self.entropy_loss_ratio
        else jnp.zeros((), jnp.float32)
    )
    aux = {
        "indices": indices_Bxhxw,
        "encoded": encoded_Bxhxwxd,
        "codebook_loss": codebook_loss,
        "commitment_loss": commitment_loss,
        "entropy_loss": entropy,
        "quantizer_loss": (
            codebook_loss
            + self.commitment_cost * commitment_loss
            + self.entropy_loss_ratio * entropy
        ),
    }
    if train:
      # Straight-through: forward pass uses the codes, gradients flow to the encoder.
      quantized = encoded_Bxhxwxd + jax.lax.stop_gradient(
          quantized - encoded_Bxhxwxd
      )
    return quantized, aux

  def decode_ids(self, indices_Bxhxw: Array) -> Array:
    """Codebook rows [B, h, w, D] for int ids [B, h, w]."""
    return jnp.take(self.codebook.astype(self.dtype), indices_Bxhxw, axis=0)


class VQGAN(nn.Module):
  """MaskGIT VQGAN tokenizer: encoder, vector quantizer, decoder.

  Attributes:
    filters: Base channel count (128 in the release).
    num_res_blocks: ResBlocks per level.
    channel_multipliers: Per-level channel multipliers; len - 1 downsamplings.
    embedding_dim: Code dimension D.
    codebook_size: Number of codes K.
    norm_groups: GroupNorm groups; must divide every level's channel count.
    commitment_cost: Weight of the commitment loss in `quantizer_loss`.
    entropy_loss_ratio: Weight of the entropy regulariser in `quantizer_loss`.
    entropy_temperature: Softmax temperature on negative distances for that regulariser.
    patch_size: Pixels per side folded into channels before the encoder (1 in the release).
    encoder_kind: "conv" (the release's) or "patch" (`PatchEncoder`: codes that
      depend only on their patch; needs patch_size > 1 and one level).
    dtype: Compute dtype; parameters stay float32.
  """

  filters: int
  num_res_blocks: int
  channel_multipliers: tuple[int, ...]
  embedding_dim: int
  codebook_size: int
  norm_groups: int = 32
  commitment_cost: float = 0.25
  entropy_loss_ratio: float = 0.0
  entropy_temperature: float = 0.01
  patch_size: int = 1
  encoder_kind: str = "conv"
  dtype: Any = jnp.float32

  def setup(self):
    if self.encoder_kind not in ENCODERS:
      raise ValueError(
          f"Unknown tokenizer encoder {self.encoder_kind!r}; expected one of"
          f" {ENCODERS}."
      )
    if self.encoder_kind == "patch" and (
        self.patch_size < 2 or len(self.channel_multipliers) != 1
    ):
      raise ValueError(
          "The patch encoder needs patch_size >= 2 and one level"
          f" (channel_multipliers of length 1); got patch_size"
          f" {self.patch_size} and {tuple(self.channel_multipliers)}."
      )
    for multiplier in self.channel_multipliers:
      if (self.filters * multiplier) % self.norm_groups:
        raise ValueError(
            f"norm_groups {self.norm_groups} does not divide level width "
            f"{self.filters} * {multiplier}."
        )
    if self.encoder_kind == "patch":
      self.encoder = PatchEncoder(
          self.filters, self.embedding_dim, self.patch_size, self.dtype
      )
    else:
      self.encoder = Encoder(
          self.filters,
          self.num_res_blocks,
          tuple(self.channel_multipliers),
          self.embedding_dim,
          self.norm_groups,
          self.patch_size,
          self.dtype,
      )
    self.quantizer = VectorQuantizer(
        self.codebook_size,
        self.embedding_dim,
        self.commitment_cost,
        self.entropy_loss_ratio,
        self.entropy_temperature,
        self.dtype,
    )
    self.decoder = Decoder(
        self.filters,
        self.num_res_blocks,
        tuple(self.channel_multipliers),
        self.norm_groups,
        self.patch_size,
        dtype=self.dtype,
    )

  @property
  def downsample_factor(self) -> int:
    """Pixels per token along each side."""
    return downsample_factor(self.channel_multipliers, self.patch_size)

  def _check_images(self, images_BxHxWx3: Array) -> None:
    factor = self.downsample_factor
    if (
        images_BxHxWx3.ndim != 4
        or images_BxHxWx3.shape[-1] != 3
        or images_BxHxWx3.shape[1] % factor
        or images_BxHxWx3.shape[2] % factor
    ):
      raise ValueError(
          f"images must be [B, H, W, 3] with H and W divisible by {factor}, got shape "
          f"{images_BxHxWx3.shape}."
      )

  def encode(
      self, images_BxHxWx3: Array, train: bool = False
  ) -> tuple[Array, dict[str, Array]]:
    """Encodes and quantizes images.

    Args:
      images_BxHxWx3: float images in [0, 1].
      train: Use the straight-through estimator (otherwise the codes are returned as is).

    Returns:
      (quantized [B, h, w, D], aux) where aux holds 'indices' int32 [B, h, w],
      'encoded' [B, h, w, D] (pre-quantization), and float32 scalars
      'codebook_loss', 'commitment_loss', 'entropy_loss' (0 when
      entropy_loss_ratio is 0: not computed) and 'quantizer_loss'
      (= codebook + commitment_cost * commitment + entropy_loss_ratio * entropy).
    """
    self._check_images(images_BxHxWx3)
    encoded_Bxhxwxd = self.encoder(images_BxHxWx3.astype(self.dtype))
    return self.quantizer(encoded_Bxhxwxd, train=train)

  def decode(self, quantized_Bxhxwxd: Array) -> Array:
    """Decodes features [B, h, w, D] to float32 images [B, H, W, 3] (not clipped)."""
    return self.decoder(quantized_Bxhxwxd).astype(jnp.float32)

  def decode_from_indices(self, indices_Bxhxw: Array) -> Array:
    """Decodes int code ids [B, h, w] to float32 images [B, H, W, 3] (not clipped)."""
    return self.decode(self.quantizer.decode_ids(indices_Bxhxw))

  def tokenize(self, images_BxHxWx3: Array) -> Array:
    """Code ids int32 [B, h, w] of images in [0, 1]."""
    return self.encode(images_BxHxWx3)[1]["indices"]

  def __call__(
      self, images_BxHxWx3: Array, train: bool = False
  ) -> tuple[Array, dict[str, Array]]:
    """Reconstructs images; returns (reconstruction [B, H, W, 3], aux as in `encode`)."""
    quantized, aux = self.encode(images_BxHxWx3, train=train)
    return self.decode(quantized), aux
