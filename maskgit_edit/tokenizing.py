"""A tokenizer's jitted calls: images <-> token grids, in fixed-size batches.

Each call is compiled once per batch shape; the `*_all` methods split N
images into batches of `batch_size` (the last one padded), so any N reuses
one program.
"""

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_edit import artefacts
from maskgit_edit import batching


class Tokenizer:
  """A VQGAN module with its params: tokenize, detokenize, reconstruct."""

  def __init__(self, model, params, batch_size: int = 100):
    self.model, self.params, self.batch_size = model, params, batch_size
    apply = lambda method: jax.jit(
        lambda p, x: model.apply({"params": p}, x, method=method)
    )
    self._tokenize = apply(model.tokenize)
    self._detokenize = apply(model.decode_from_indices)
    self._reconstruct = jax.jit(lambda p, x: model.apply({"params": p}, x)[0])

  @classmethod
  def from_workdir(cls, workdir: str, batch_size: int = 100) -> "Tokenizer":
    model, params, _ = artefacts.load_tokenizer(workdir)
    return cls(model, params, batch_size)

  @property
  def downsample_factor(self) -> int:
    return self.model.downsample_factor

  def tokenize(self, images_BxHxWx3) -> jax.Array:
    """float images in [0, 1] -> int32 token grids [B, h, w] (one call)."""
    return self._tokenize(self.params, jnp.asarray(images_BxHxWx3))

  def detokenize(self, tokens_Bxhxw) -> jax.Array:
    """Token grids -> decoded images [B, H, W, 3] (not clipped)."""
    return self._detokenize(self.params, tokens_Bxhxw)

  def _batched(self, fn, inputs_N) -> np.ndarray:
    return batching.map_in_batches(
        lambda x: fn(self.params, x), inputs_N, self.batch_size
    )

  def tokenize_all(self, images_NxHxWx3) -> np.ndarray:
    """int32 [N, h, w] token grids of float images in [0, 1]."""
    return self._batched(self._tokenize, np.asarray(images_NxHxWx3, np.float32))

  def detokenize_all(self, tokens_Nxhxw) -> np.ndarray:
    """float [N, H, W, 3] decoded images, clipped to [0, 1]."""
    return np.clip(
        self._batched(self._detokenize, np.asarray(tokens_Nxhxw)), 0, 1
    )

  def reconstruct_all(self, images_NxHxWx3) -> np.ndarray:
    """float [N, H, W, 3] reconstructions, clipped to [0, 1]."""
    return np.clip(
        self._batched(
            self._reconstruct, np.asarray(images_NxHxWx3, np.float32)
        ),
        0,
        1,
    )
