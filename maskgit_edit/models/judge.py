"""The judge: a small CNN classifier whose penultimate features score images.

Trained only on real images of a dataset (`trainers/judge.py`), it plays the
role Inception plays for FID on ImageNet: `features` feed judge-FID,
judge-KID and the per-image realism score (`judging.py`), and `__call__`
labels samples for the class accuracy of class-conditional generation.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from maskgit_edit.models import vqgan


class Judge(nn.Module):
  """Conv stages (each but the first halving the resolution) -> mean pool
  -> features -> class logits, plus an optional dense head.

  Attributes:
    num_classes: labels of the data set.
    widths: channels of each stage.
    feature_size: dimension of the penultimate features.
    map_classes: classes of the dense head on the second-to-last stage (a
      per-cell auxiliary target such as which shape covers the cell); 0: none.
    patch_size: pixels per side folded into channels before the first stage
      (lossless; wide convolutions at low resolution run faster on CPUs).
  """

  num_classes: int
  widths: Sequence[int] = (32, 64, 128, 128)
  feature_size: int = 128
  map_classes: int = 0
  patch_size: int = 1

  def setup(self):
    self.stages = [
        [
            nn.Conv(w, (3, 3), strides=(1, 1) if i == 0 else (2, 2)),
            nn.GroupNorm(num_groups=min(8, w)),
            nn.Conv(w, (3, 3)),
            nn.GroupNorm(num_groups=min(8, w)),
        ]
        for i, w in enumerate(self.widths)
    ]
    self.project = nn.Dense(self.feature_size)
    self.head = nn.Dense(self.num_classes)
    if self.map_classes:
      self.map_head = nn.Conv(self.map_classes, (1, 1))

  def features_and_maps(self, images_BxHxWx3):
    """(features [B, feature_size], map logits [B, h, w, map_classes] or
    None), h = H / 2**(len(widths) - 2)."""
    x = images_BxHxWx3 * 2.0 - 1.0
    if self.patch_size > 1:
      x = vqgan.space_to_depth(x, self.patch_size)
    maps = None
    for i, (conv1, norm1, conv2, norm2) in enumerate(self.stages):
      x = nn.gelu(norm1(conv1(x)))
      x = nn.gelu(norm2(conv2(x)))
      if self.map_classes and i == len(self.stages) - 2:
        maps = self.map_head(x)
    return nn.gelu(self.project(jnp.mean(x, axis=(1, 2)))), maps

  def features(self, images_BxHxWx3) -> jax.Array:
    """Float images in [0, 1] -> penultimate features [B, feature_size]."""
    return self.features_and_maps(images_BxHxWx3)[0]

  def __call__(self, images_BxHxWx3) -> jax.Array:
    """Float images in [0, 1] -> class logits [B, num_classes]."""
    return self.head(self.features(images_BxHxWx3))

  def logits_and_maps(self, images_BxHxWx3):
    """(class logits [B, num_classes], map logits or None)."""
    features, maps = self.features_and_maps(images_BxHxWx3)
    return self.head(features), maps


def map_side(
    image_size: int, widths: Sequence[int], patch_size: int = 1
) -> int:
  """Side of the dense head's grid."""
  return image_size // patch_size // 2 ** (len(widths) - 2)


def build_judge(judge_config, num_classes: int) -> Judge:
  return Judge(
      num_classes=num_classes,
      widths=tuple(judge_config.widths),
      feature_size=judge_config.feature_size,
      map_classes=judge_config.get("map_classes", 0),
      patch_size=judge_config.get("patch_size", 1),
  )
