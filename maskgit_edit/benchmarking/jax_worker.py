"""One measurement of this project's transformer and `Sampler` (see `peer`).

  python -m maskgit_edit.benchmarking.jax_worker SPEC_JSON

Prints the record as its last line.
"""

import json
import sys

import jax
import numpy as np

from maskgit_edit import compiling
from maskgit_edit import models
from maskgit_edit.benchmarking import peer
from maskgit_edit.decoding import sampling
from maskgit_edit.models import transformer as transformer_lib


def chain_products(x_RxH, weights):
  """`peer.gemm_shapes`' products in order, each on the first K columns of
  the previous product. The barriers keep XLA from reordering or trimming
  the chain (the peer computes every column)."""
  h = x_RxH
  for w_KxN in weights:
    h = jax.lax.optimization_barrier(h[:, : w_KxN.shape[0]] @ w_KxN)
  return h


def gemm_chain(spec: peer.Spec):
  """One call of `chain_products` on random inputs (weights scaled by
  K^-1/2), blocking on its result."""
  shapes = peer.gemm_shapes(spec.size)
  keys = jax.random.split(jax.random.key(spec.seed), len(shapes) + 1)
  weights = [
      jax.random.normal(key, shape) * shape[0] ** -0.5
      for key, shape in zip(keys[1:], shapes)
  ]
  rows = spec.batch * spec.model["seq_len"]
  x_RxH = jax.random.normal(keys[0], (rows, shapes[0][0]))
  # Compiled as the forward's products are at these rows.
  chain = compiling.SizedJit(chain_products, lambda x_RxH, _: x_RxH.shape[0])
  return lambda: jax.block_until_ready(chain(x_RxH, weights))


def chain_attention(query_BxLxNxD, key_BxLxNxD, value_BxLxNxD, num_layers):
  """`num_layers` calls of the forward's attention at inference, each on the
  previous one's output as queries. The barriers keep XLA from sharing the
  key and value transposes between layers (the forward has its own per
  layer)."""
  batch, length, heads, depth = query_BxLxNxD.shape
  q, k, v = query_BxLxNxD, key_BxLxNxD, value_BxLxNxD
  for _ in range(num_layers):
    out_BxLxH = transformer_lib.blocked_attention(q, k, v).reshape(
        batch, length, heads * depth
    )
    q, k, v = jax.lax.optimization_barrier(
        (out_BxLxH.reshape(batch, length, heads, depth), k, v)
    )
  return q


def attention_chain(spec: peer.Spec):
  """One call of `chain_attention` on random queries, keys and values at
  the spec's shapes, blocking on its result."""
  m = spec.model
  shape = (
      spec.batch,
      m["seq_len"],
      m["num_heads"],
      m["hidden_size"] // m["num_heads"],
  )
  qkv = [
      jax.random.normal(key, shape)
      for key in jax.random.split(jax.random.key(spec.seed), 3)
  ]
  chain = compiling.SizedJit(
      chain_attention,
      lambda q, k, v, layers: q.shape[0] * q.shape[1],
      static_argnums=3,
  )
  return lambda: jax.block_until_ready(chain(*qkv, m["num_layers"]))


def transformer(m: dict[str, int]) -> models.Transformer:
  """The transformer of `peer.model_sizes`' sizes `m`, without dropout."""
  return models.Transformer(
      vocab_size=m["vocab_size"],
      seq_len=m["seq_len"],
      hidden_size=m["hidden_size"],
      num_layers=m["num_layers"],
      num_heads=m["num_heads"],
      intermediate_size=m["intermediate_size"],
      dropout_rate=0.0,
  )


def main(spec: peer.Spec) -> dict:
  version = f"jax {jax.__version__}"
  if spec.part != "model":
    part = {"gemms": gemm_chain, "attention": attention_chain}[spec.part]
    return peer.time_worker(spec, part(spec), None, version)
  m = spec.model
  layout = models.TokenLayout(
      m["codebook_size"], m["num_classes"], m["grid_side"], True
  )
  model = transformer(m)
  keys = jax.random.split(jax.random.key(spec.seed), 3)
  ids_BxL = jax.random.randint(
      keys[0], (spec.batch, layout.seq_len), 0, layout.codebook_size
  )
  params = jax.jit(model.init)(keys[1], ids_BxL[:1])["params"]
  forward = compiling.SizedJit(
      lambda p, ids: model.apply({"params": p}, ids, deterministic=True),
      lambda p, ids_BxL: ids_BxL.size,
  )
  sampler = sampling.Sampler(
      model, layout, sampling.DecodeSettings(num_steps=spec.num_steps)
  )
  side = layout.grid_side
  tokens_Bxhxw = np.zeros((spec.batch, side, side), np.int32)
  unknown_Bxhxw = np.ones((spec.batch, side, side), bool)
  labels_B = np.zeros(spec.batch, np.int32)
  return peer.time_worker(
      spec,
      lambda: jax.block_until_ready(forward(params, ids_BxL)),
      lambda: jax.block_until_ready(
          sampler(
              params, tokens_Bxhxw, unknown_Bxhxw, keys[2], labels_B=labels_B
          )
      ),
      version,
  )


if __name__ == "__main__":
  print(json.dumps(main(peer.Spec.from_json(sys.argv[1]))), flush=True)
