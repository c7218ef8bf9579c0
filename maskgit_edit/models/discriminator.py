"""Small patch discriminator for the tokenizer's optional adversarial loss."""

import flax.linen as nn
import jax


class PatchDiscriminator(nn.Module):
  """Strided conv stack -> one logit per patch.

  Attributes:
    filters: channels of the first conv; doubled at each downsampling.
    num_layers: number of stride-2 convs.
  """

  filters: int = 32
  num_layers: int = 2

  @nn.compact
  def __call__(self, images_BxHxWx3) -> jax.Array:
    """Returns logits [B, H / 2**num_layers, W / 2**num_layers]."""
    x = nn.Conv(self.filters, (3, 3))(images_BxHxWx3 * 2.0 - 1.0)
    x = nn.leaky_relu(x, 0.2)
    for i in range(self.num_layers):
      x = nn.Conv(self.filters * 2 ** (i + 1), (4, 4), strides=(2, 2))(x)
      x = nn.GroupNorm(num_groups=min(32, self.filters))(x)
      x = nn.leaky_relu(x, 0.2)
    return nn.Conv(1, (3, 3))(x)[..., 0]
