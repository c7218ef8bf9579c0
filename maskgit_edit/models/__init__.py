"""Model builders from config sections."""

import jax.numpy as jnp

from maskgit_edit.models import vqgan
from maskgit_edit.models.transformer import Transformer
from maskgit_edit.models.vqgan import VQGAN

TOKENIZER_FIELDS = (
    "filters",
    "num_res_blocks",
    "channel_multipliers",
    "embedding_dim",
    "codebook_size",
    "norm_groups",
    "commitment_cost",
    "entropy_loss_ratio",
    "patch_size",
    "encoder_kind",
)


def build_tokenizer(tokenizer_config) -> VQGAN:
  kwargs = {
      k: tokenizer_config[k] for k in TOKENIZER_FIELDS if k in tokenizer_config
  }
  kwargs["channel_multipliers"] = tuple(kwargs["channel_multipliers"])
  return VQGAN(**kwargs)


def latent_size(image_size: int, tokenizer_config) -> int:
  """Token grid side: the image side over the tokenizer's downsampling."""
  factor = vqgan.downsample_factor(
      tokenizer_config.channel_multipliers,
      tokenizer_config.get("patch_size", 1),
  )
  if image_size % factor:
    raise ValueError(
        f"image_size {image_size} is not divisible by the "
        f"tokenizer's downsampling factor {factor}."
    )
  return image_size // factor


class TokenLayout:
  """Vocabulary and sequence layout of the transformer.

  Ids: [0, C) codes, [C, C + K) class tokens, then (with `null_class`) the
  null class C + K, label K, that a model trained with class dropout reads
  as "no class" (classifier-free guidance), and last [MASK]. The sequence is
  the optional class token followed by the h*w code tokens, row-major.
  """

  def __init__(
      self,
      codebook_size: int,
      num_classes: int,
      grid_side: int,
      class_conditional: bool,
      null_class: bool = False,
      class_names: tuple[str, ...] = (),
  ):
    """Args:
    codebook_size: C.
    num_classes: K (ignored unless class-conditional).
    grid_side: side of the square token grid (h = w).
    class_conditional: a class token leads the sequence.
    null_class: a null class for classifier-free guidance.
    class_names: the classes' names, if the data name them.
    """
    if null_class and not class_conditional:
      raise ValueError("A null class needs a class-conditional model.")
    self.codebook_size = codebook_size
    self.num_classes = num_classes if class_conditional else 0
    self.grid_side = grid_side
    self.class_conditional = class_conditional
    self.null_class = null_class
    self.class_names = tuple(class_names)  # () when the data names none.
    self.null_label = self.num_classes  # Meaningful with `null_class` only.
    self.vocab_size = codebook_size + self.num_classes + null_class + 1
    self.mask_id = self.vocab_size - 1
    self.offset = 1 if class_conditional else 0
    self.seq_len = grid_side * grid_side + self.offset

  @classmethod
  def of_tokenizer(
      cls,
      tokenizer_config,
      image_size: int,
      num_classes: int,
      class_conditional: bool,
      null_class: bool = False,
      class_names: tuple[str, ...] = (),
  ) -> "TokenLayout":
    """The layout over the codes of a tokenizer (config section) at
    `image_size` pixels."""
    return cls(
        tokenizer_config.codebook_size,
        num_classes,
        latent_size(image_size, tokenizer_config),
        class_conditional,
        null_class,
        class_names,
    )

  def check_label(self, label: int) -> None:
    """Raises ValueError naming the valid range (and the class names) when
    `label` is not a class of a class-conditional model."""
    if not self.class_conditional or 0 <= label < self.num_classes:
      return
    names = (
        f": {', '.join(f'{i} {n}' for i, n in enumerate(self.class_names))}"
        if len(self.class_names) == self.num_classes
        else ""
    )
    raise ValueError(
        f"Label {label} is not a class of this model: 0 to"
        f" {self.num_classes - 1}{names}."
    )

  def class_ids(self, labels_B):
    return self.codebook_size + labels_B

  def inputs(self, tokens_BxN, labels_B, mask_BxN):
    """Transformer inputs [B, L]: [MASK] where `mask`, the class token
    first (class-conditional models)."""
    ids_BxN = jnp.where(mask_BxN, self.mask_id, tokens_BxN)
    if not self.class_conditional:
      return ids_BxN
    class_Bx1 = self.class_ids(jnp.asarray(labels_B))[:, None]
    return jnp.concatenate([class_Bx1.astype(ids_BxN.dtype), ids_BxN], axis=1)

  def codes_only(self, logits_BxLxV):
    """Logits over the codes (class and [MASK] rows dropped): [B, L, C]."""
    return logits_BxLxV[..., : self.codebook_size]

  def code_logits(self, logits_BxLxV):
    """Logits over the codes at the grid positions: [B, N, C]."""
    return self.codes_only(logits_BxLxV)[:, self.offset :]


def build_transformer(model_config, layout: TokenLayout) -> Transformer:
  return Transformer(
      vocab_size=layout.vocab_size,
      seq_len=layout.seq_len,
      hidden_size=model_config.hidden_size,
      num_layers=model_config.num_layers,
      num_heads=model_config.num_heads,
      intermediate_size=model_config.intermediate_size,
      dropout_rate=model_config.dropout_rate,
  )
