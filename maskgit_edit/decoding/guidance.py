"""Guided editing variants: a name + one knob -> `parallel_decode.Guidance`.

G = tokenizer codes of the stroked image on the edited token positions E.
Every variant is the same decode loop with different `Guidance` fields, and
knob 0 reproduces the unguided baseline exactly (same rng => same output;
sdedit: strength 1).

| variant        | knob           | range   | meaning                                      |
|----------------|----------------|---------|----------------------------------------------|
| none           | (ignored)      | -       | plain inpainting of E                        |
| sdedit         | strength       | [0, 1]  | token SDEdit: E starts as G, and the share    |
|                |                |         | gamma(1 - strength) of E (random, nested      |
|                |                |         | across strengths) is re-masked and decoded;   |
|                |                |         | 0 keeps G, 1 is plain inpainting of E         |
| context        | rho            | [0, 1]  | share of steps in which unknown positions     |
|                |                |         | show G to the model instead of [MASK]        |
| self_fixed     | lambda         | >= 0    | adds lambda * K[G] to the logits at E; K is  |
|                |                |         | identity or -||c_i - c_j||^2 / tau (`kernel`) |
| self_learned   | lambda         | >= 0    | same with the K trained by `reweight`        |
| iterative      | scale          | >= 0    | transformer adds scale * embed(G) at [MASK]  |
|                |                |         | of the `iterate`-tuned transformer, trained  |
|                |                |         | to trust G with probability scale / its      |
|                |                |         | max_scale; scale 0 is that transformer       |
|                |                |         | unguided, not the base model: compare        |
|                |                |         | iterative knobs with its own scale 0         |
| zero_shot      | strength       | [0, 1]  | share of steps in which E proposes G, scored |
|                |                |         | in context; 1 keeps G, 0 is the baseline     |

"Share of steps" counts the steps that run (editing starts at `start_iter`).
"""

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_edit.decoding import schedules
from maskgit_edit.decoding.parallel_decode import Guidance

VARIANTS = (
    "none",
    "sdedit",
    "context",
    "self_fixed",
    "self_learned",
    "iterative",
    "zero_shot",
)
_FRACTION_KNOBS = ("sdedit", "context", "zero_shot")


def identity_kernel(codebook_size: int) -> np.ndarray:
  return np.eye(codebook_size, dtype=np.float32)


def l2_kernel(codebook_CxD, tau: float | None = None) -> np.ndarray:
  """K[i, j] = -||c_i - c_j||^2 / tau.

  tau defaults to the mean squared distance between distinct codes, so that
  lambda has the same meaning across codebooks (K is about -1 between typical
  codes, 0 on the diagonal).
  """
  codebook = np.asarray(codebook_CxD, np.float64)
  sq = np.sum(codebook**2, axis=1)
  dist_CxC = np.maximum(
      sq[:, None] + sq[None, :] - 2 * codebook @ codebook.T, 0.0
  )
  if tau is None:
    n = len(codebook)
    tau = dist_CxC.sum() / max(n * (n - 1), 1)
  if tau <= 0:
    raise ValueError(f"tau must be > 0, got {tau}.")
  return (-dist_CxC / tau).astype(np.float32)


def validate(variant: str, knob: float) -> None:
  if variant not in VARIANTS:
    raise ValueError(
        f"Unknown variant {variant!r}; expected one of "
        f"{', '.join(VARIANTS)}."
    )
  if not np.isfinite(knob) or knob < 0:
    raise ValueError(
        f"Knob of {variant!r} must be finite and >= 0, got {knob}."
    )
  if variant in _FRACTION_KNOBS and knob > 1:
    raise ValueError(
        f"Knob of {variant!r} is a fraction in [0, 1], got {knob}."
    )


def sdedit_keep(rng, strength_B, edited_BxN, schedule: str):
  """Edited positions that token SDEdit keeps as stroke tokens.

  The decode schedule at ratio 1 - strength gives the share of E to re-mask
  (all of it at strength 1, none at 0). Which positions is random from `rng`
  but the same for every strength, so the re-masked sets nest and settings
  pair.

  Args:
    rng: typed PRNG key.
    strength_B: float strengths in [0, 1].
    edited_BxN: bool edited positions E.
    schedule: mask schedule name (see `schedules`).

  Returns:
    bool [B, N], a subset of E.
  """
  edited_BxN = jnp.asarray(edited_BxN, bool)
  strength_B = jnp.asarray(strength_B, jnp.float32)
  scores_BxN = jnp.where(
      edited_BxN, jax.random.uniform(rng, edited_BxN.shape), jnp.inf
  )
  ranks_BxN = jnp.argsort(jnp.argsort(scores_BxN, axis=-1), axis=-1)
  num_edited_B = jnp.sum(edited_BxN, axis=-1)
  # The ends are exact under every schedule: "exp" gives 1 - 1/N at ratio
  # 0, which would keep one stroke token at strength 1.
  share_B = jnp.where(
      strength_B >= 1,
      1.0,
      jnp.where(
          strength_B > 0,
          schedules.mask_ratio(1.0 - strength_B, schedule, num_edited_B),
          0.0,
      ),
  )
  num_remask_B = jnp.ceil(share_B * num_edited_B - 1e-4)
  return edited_BxN & (ranks_BxN >= num_remask_B[:, None])


def make_guidance(
    variant: str,
    knob,
    guide_ids_Bxhxw,
    edited_Bxhxw,
    kernel_CxC,
    rng=None,
    schedule: str | None = None,
) -> Guidance:
  """Guidance for a batch of edits.

  Args:
    variant: one of VARIANTS.
    knob: float or [B] array (same variant for the batch, knob per edit).
    guide_ids_Bxhxw: int tokens of the stroked images.
    edited_Bxhxw: bool, edited token positions E (guidance applies there).
    kernel_CxC: affinity K for self-guidance (identity for other variants).
    rng: typed key of the positions that `sdedit` re-masks (needed by it
      only); pass the same key across settings to pair them.
    schedule: the decode's mask schedule (needed by `sdedit` only).

  Returns:
    `Guidance` with [B, h, w] grids (the sampler flattens them).
  """
  knob_B = np.broadcast_to(
      np.asarray(knob, np.float32), (guide_ids_Bxhxw.shape[0],)
  )
  for k in np.unique(knob_B):
    validate(variant, float(k))
  zeros_B = jnp.zeros_like(knob_B)
  knob_B = jnp.asarray(knob_B)
  on = lambda name: knob_B if variant == name else zeros_B
  edited_Bxhxw = jnp.asarray(edited_Bxhxw, bool)
  keep_Bxhxw = jnp.zeros_like(edited_Bxhxw)
  if variant == "sdedit":
    if rng is None or schedule is None:
      raise ValueError(
          "Variant 'sdedit' needs an rng for the positions it "
          "re-masks and the decode's schedule."
      )
    batch = edited_Bxhxw.shape[0]
    keep_Bxhxw = sdedit_keep(
        rng, knob_B, edited_Bxhxw.reshape(batch, -1), schedule
    ).reshape(edited_Bxhxw.shape)
  return Guidance(
      guide_ids_BxL=jnp.where(
          edited_Bxhxw, jnp.asarray(guide_ids_Bxhxw, jnp.int32), -1
      ),
      self_weight_B=(
          knob_B if variant in ("self_fixed", "self_learned") else zeros_B
      ),
      kernel_CxC=jnp.asarray(kernel_CxC, jnp.float32),
      context_until_B=on("context"),
      reembed_scale_B=on("iterative"),
      propose_until_B=on("zero_shot"),
      keep_guide_BxL=keep_Bxhxw,
  )
