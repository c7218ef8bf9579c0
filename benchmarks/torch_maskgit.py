"""A plain PyTorch MaskGIT (transformer + decode loop): the speed peer.

Written here only to time against (`scripts/benchmark.py --edit_latency`):
the released architecture (post-LayerNorm BERT blocks, tied MLM head) with
random weights, and the released decode (sample every unknown token, keep
the most confident, cosine schedule, Gumbel noise on confidences annealed
to 0), in eager PyTorch as a plain implementation would be. The package and
the tests never import it; it needs the `peer` dependency group
(`pip install -e '.[peer]'`).
"""

import math

import torch
from torch import nn
from torch.nn import functional as F


class Block(nn.Module):
  """Attention and MLP, each with a residual and a post-LayerNorm."""

  def __init__(self, hidden: int, heads: int, intermediate: int):
    super().__init__()
    self.heads = heads
    self.qkv = nn.Linear(hidden, 3 * hidden)
    self.out = nn.Linear(hidden, hidden)
    self.ln1 = nn.LayerNorm(hidden, eps=1e-12)
    self.fc1 = nn.Linear(hidden, intermediate)
    self.fc2 = nn.Linear(intermediate, hidden)
    self.ln2 = nn.LayerNorm(hidden, eps=1e-12)

  def forward(self, x_BxLxH):
    batch, length, hidden = x_BxLxH.shape
    q, k, v = self.qkv(x_BxLxH).view(batch, length, 3, self.heads, -1).unbind(2)
    attended = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    )
    attended = attended.transpose(1, 2).reshape(batch, length, hidden)
    x_BxLxH = self.ln1(x_BxLxH + self.out(attended))
    return self.ln2(x_BxLxH + self.fc2(F.gelu(self.fc1(x_BxLxH))))


class MaskGitTransformer(nn.Module):
  """Token + position embeddings, blocks, MLM head tied to the embeddings."""

  def __init__(
      self,
      vocab_size: int,
      seq_len: int,
      hidden_size: int,
      num_layers: int,
      num_heads: int,
      intermediate_size: int,
      **unused,
  ):
    super().__init__()
    del unused
    self.words = nn.Embedding(vocab_size, hidden_size)
    self.positions = nn.Embedding(seq_len, hidden_size)
    self.ln = nn.LayerNorm(hidden_size, eps=1e-12)
    self.blocks = nn.ModuleList(
        Block(hidden_size, num_heads, intermediate_size)
        for _ in range(num_layers)
    )
    self.head = nn.Linear(hidden_size, hidden_size)
    self.head_ln = nn.LayerNorm(hidden_size, eps=1e-12)
    self.bias = nn.Parameter(torch.zeros(vocab_size))

  def forward(self, ids_BxL):
    positions = torch.arange(ids_BxL.shape[1], device=ids_BxL.device)
    x = self.ln(self.words(ids_BxL) + self.positions(positions)[None])
    for block in self.blocks:
      x = block(x)
    x = self.head_ln(F.gelu(self.head(x)))
    return x @ self.words.weight.T + self.bias


@torch.no_grad()
def decode(
    model,
    tokens_BxL,
    unknown_BxL,
    *,
    mask_id: int,
    num_codes: int,
    num_steps: int = 12,
    choice_temperature: float = 4.5,
    generator=None,
):
  """Fills the unknown tokens [B, L] over `num_steps` MaskGIT steps."""
  tokens = torch.where(unknown_BxL, mask_id, tokens_BxL)
  unknown = unknown_BxL.clone()
  num_unknown = unknown.sum(-1, keepdim=True)
  for step in range(num_steps):
    logits = model(tokens)[..., :num_codes]
    probs = logits.softmax(-1)
    sampled = torch.multinomial(
        probs.flatten(0, 1), 1, generator=generator
    ).view(tokens.shape)
    sampled = torch.where(unknown, sampled, tokens)
    log_p = probs.gather(-1, sampled.clamp(max=num_codes - 1)[..., None])[
        ..., 0
    ].log()
    ratio = (step + 1) / num_steps
    uniform = torch.rand(log_p.shape, generator=generator).clamp_min(1e-20)
    gumbel = -torch.log(-torch.log(uniform))
    confidence = log_p + choice_temperature * (1 - ratio) * gumbel
    confidence = torch.where(unknown, confidence, torch.inf)
    keep = torch.floor(num_unknown * math.cos(math.pi / 2 * ratio)).long()
    keep = torch.clamp(keep, min=1)
    keep = torch.minimum(keep, unknown.sum(-1, keepdim=True) - 1).clamp_min(0)
    cutoff = confidence.sort(-1).values.gather(-1, keep)
    unknown = (confidence < cutoff) & unknown
    tokens = torch.where(unknown, mask_id, sampled)
  # As released: what the last step left unknown keeps that step's samples.
  return sampled
