"""One measurement of the PyTorch peer (see `maskgit_edit.benchmarking.peer`).

  python -m benchmarks.torch_worker SPEC_JSON

Eager ("torch_eager") or `torch.compile`d ("torch_compile") under
`torch.inference_mode`, with as many intra-op threads as the spec's.
Prints the record as its last line.
"""

import json
import sys

import torch
from torch.nn import functional as F

from benchmarks import torch_maskgit
from maskgit_edit.benchmarking import peer


def gemm_chain(spec: peer.Spec):
  """`jax_worker.gemm_chain` in torch."""
  shapes = peer.gemm_shapes(spec.size)
  generator = torch.Generator().manual_seed(spec.seed)
  weights = [
      torch.randn(*shape, generator=generator) * shape[0] ** -0.5
      for shape in shapes
  ]
  rows = spec.batch * spec.model["seq_len"]
  x_RxH = torch.randn(rows, shapes[0][0], generator=generator)

  def run():
    with torch.inference_mode():
      h = x_RxH
      for w_KxN in weights:
        h = h[:, : w_KxN.shape[0]] @ w_KxN

  return run


def attention_chain(spec: peer.Spec):
  """`jax_worker.attention_chain` in torch, each layer's attention as
  `torch_maskgit.Block` runs it (heads-first views, then [B, L, H])."""
  m = spec.model
  batch, length, heads = spec.batch, m["seq_len"], m["num_heads"]
  generator = torch.Generator().manual_seed(spec.seed)
  q, k, v = (
      torch.randn(
          batch, length, heads, m["hidden_size"] // heads, generator=generator
      )
      for _ in range(3)
  )

  def run():
    with torch.inference_mode():
      query = q
      for _ in range(m["num_layers"]):
        attended = F.scaled_dot_product_attention(
            query.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        )
        query = attended.transpose(1, 2).reshape(batch, length, -1)
        query = query.view(batch, length, heads, -1)

  return run


def main(spec: peer.Spec) -> dict:
  torch.set_num_threads(spec.threads)
  torch.manual_seed(spec.seed)
  version = f"torch {torch.__version__}"
  if spec.part != "model":
    part = {"gemms": gemm_chain, "attention": attention_chain}[spec.part]
    return peer.time_worker(spec, part(spec), None, version)
  m = spec.model
  model = torch_maskgit.MaskGitTransformer(**m).eval()
  if spec.implementation == "torch_compile":
    model = torch.compile(model)
  generator = torch.Generator().manual_seed(spec.seed)
  ids_BxL = torch.randint(
      0, m["codebook_size"], (spec.batch, m["seq_len"]), generator=generator
  )
  # The class token first, then every grid token unknown.
  unknown_BxL = torch.ones(spec.batch, m["seq_len"], dtype=torch.bool)
  unknown_BxL[:, 0] = False
  tokens_BxL = torch.zeros_like(ids_BxL)
  tokens_BxL[:, 0] = m["codebook_size"]  # Class 0.

  def forward():
    with torch.inference_mode():
      model(ids_BxL)

  def decode():
    with torch.inference_mode():
      torch_maskgit.decode(
          model,
          tokens_BxL,
          unknown_BxL,
          mask_id=m["vocab_size"] - 1,
          num_codes=m["codebook_size"],
          num_steps=spec.num_steps,
          generator=generator,
      )

  return peer.time_worker(spec, forward, decode, version)


if __name__ == "__main__":
  print(json.dumps(main(peer.Spec.from_json(sys.argv[1]))), flush=True)
