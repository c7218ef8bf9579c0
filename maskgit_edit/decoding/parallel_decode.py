"""MaskGIT parallel decoding as one pure `lax.while_loop`, with guidance hooks.

Released semantics (Chang et al. 2022, google-research/maskgit): at each step
the model predicts every unknown token; a token is sampled per unknown
position; its confidence is its log-probability plus Gumbel noise scaled by
`choice_temperature * (1 - ratio)`; the `floor(N0 * gamma(ratio))` least
confident unknown positions stay unknown (clamped to [1, unknown - 1]) and the
rest are committed, with ratio = (step + 1) / T. Known positions never change.

Every guided variant runs through this same loop; `Guidance` only changes
(a) which ids the model sees at unknown positions, (b) a bias added to the
logits before sampling and confidence, and (c) whether an unknown position
proposes its guide token instead of a sample, and (d) which guided positions
start known as their guide token. With all knobs at zero it is the baseline,
bit for bit. Knobs that are fractions of the decoding count the steps that
run: with start_iter = 2 of 12, rho = 0.3 guides the first 3 of 10 steps.
"""

import dataclasses
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp

from maskgit_edit.decoding import schedules

# log-prob given to known tokens so they are never chosen for re-masking.
_KNOWN_CONFIDENCE = float("inf")

# logits_fn(input_ids_BxL, guide_ids_BxL, guide_scale_B) -> logits_BxLxC,
# with C the codebook size (class/mask rows already dropped).
LogitsFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class KeyValueReuse:
  """Cheaper steps that reuse keys and values (ReCAP, arXiv 2505.19089).

  Every `full_pass_every`-th step that runs (counting from start_iter) calls
  the model on every position and keeps its keys and values; the steps in
  between call it only on the positions unknown at the start (what a stroke
  edits), which attend to the kept keys and values of the others. Inputs of
  the others never change, but their keys and values depend on the unknown
  positions' tokens, so reuse is an approximation.

  Attributes:
    model_fn: (input_ids_BxQ, guide_ids_BxQ, guide_scale_B,
      query_indices_BxQ, cache) -> (logits_BxQxC, cache). With
      query_indices_BxQ and cache None, Q = L and the cache returned holds
      every position's keys and values; otherwise the inputs are those of
      the positions query_indices_BxQ, the other positions' keys and values
      are taken from `cache`.
    full_pass_every: r >= 1.
    num_queries: A, the positions the cheaper steps run: a static bound on
      the number unknown at the start in any example of the batch (examples
      with fewer run some known positions as well).
  """

  model_fn: Callable[..., tuple[jax.Array, Any]]
  full_pass_every: int
  num_queries: int


@flax.struct.dataclass
class Guidance:
  """Per-edit guidance; every field zero/empty gives the baseline decoder.

  Attributes:
    guide_ids_BxL: int32 guidance token per position, -1 where there is none.
    self_weight_B: lambda of self-guidance: adds lambda * K[guide] to logits.
    kernel_CxC: affinity K between codes (row g = bias when the guide is g).
    context_until_B: rho of context guidance: during the first fraction rho
      of the steps that run, unknown positions show their guide token to the
      model instead of [MASK].
    reembed_scale_B: scale of the guide-token embedding that the transformer
      adds at [MASK] positions (iterative re-embedding).
    propose_until_B: zero-shot strength: during the first fraction of the
      steps that run, unknown guided positions propose their guide token
      (scored by its log-probability in context) instead of a sample, so
      plausible guide tokens are committed and the least likely ones stay
      unknown and are re-sampled once the offer ends.
    keep_guide_BxL: bool; positions that start known as their guide token
      (token SDEdit keeps these stroke tokens and re-masks the rest of E).
  """

  guide_ids_BxL: jax.Array
  self_weight_B: jax.Array
  kernel_CxC: jax.Array
  context_until_B: jax.Array
  reembed_scale_B: jax.Array
  propose_until_B: jax.Array
  keep_guide_BxL: jax.Array

  @classmethod
  def none(cls, batch: int, length: int, codebook_size: int) -> "Guidance":
    zeros_B = jnp.zeros((batch,), jnp.float32)
    return cls(
        guide_ids_BxL=jnp.full((batch, length), -1, jnp.int32),
        self_weight_B=zeros_B,
        kernel_CxC=jnp.zeros((codebook_size, codebook_size), jnp.float32),
        context_until_B=zeros_B,
        reembed_scale_B=zeros_B,
        propose_until_B=zeros_B,
        keep_guide_BxL=jnp.zeros((batch, length), bool),
    )


@flax.struct.dataclass
class DecodeState:
  step: jax.Array  # int32 scalar: next step to run
  tokens_BxL: jax.Array  # int32; committed tokens (and the known ones)
  unknown_BxL: jax.Array  # bool; still to decode
  rng: jax.Array
  history_BxTxL: jax.Array  # int32 samples per step ([B, 0, L] if unused)
  cache: Any = ()  # keys and values of `KeyValueReuse` (else ())


def _self_guidance_bias(guidance: Guidance):
  """lambda * K[guide] on guided positions (product of experts): [B, L, C].

  Loop-invariant, so it is built once per decode rather than once per step.
  """
  has_guide_BxL = guidance.guide_ids_BxL >= 0
  bias_BxLxC = guidance.kernel_CxC[jnp.maximum(guidance.guide_ids_BxL, 0)]
  weight_BxL = jnp.where(has_guide_BxL, guidance.self_weight_B[:, None], 0.0)
  return weight_BxL[..., None] * bias_BxLxC


def _model_inputs(
    state: DecodeState, guidance: Guidance, share_done, mask_id: int
):
  """Ids the model sees: known tokens, and [MASK] or the context guide."""
  show_guide_BxL = (share_done < guidance.context_until_B)[:, None] & (
      guidance.guide_ids_BxL >= 0
  )
  placeholder_BxL = jnp.where(show_guide_BxL, guidance.guide_ids_BxL, mask_id)
  return jnp.where(state.unknown_BxL, placeholder_BxL, state.tokens_BxL)


def _inclusive_cumsum(x_NxS):
  """Running sums along the last axis as one matmul (XLA:CPU's cumsum is a
  slow scalar loop); HIGHEST keeps f32 accuracy on GPU/TPU as well."""
  size = x_NxS.shape[-1]
  upper_SxS = jnp.triu(jnp.ones((size, size), x_NxS.dtype))
  return jnp.matmul(x_NxS, upper_SxS, precision=jax.lax.Precision.HIGHEST)


def _sample(rng, logits_BxLxC, block: int = 32):
  """One categorical sample per position, by inverse-CDF search.

  Draws one uniform per position instead of one Gumbel per logit (what
  `jax.random.categorical` does), so the per-step cost beyond the forward is
  about one exp per logit; see `_inverse_cdf`. Resolution: the float32
  uniform lies on a grid of step 2^-23 (`jax.random.uniform` fills the 23
  mantissa bits), so a code of probability p is drawn with a probability
  within about 2^-23 of p, and one far below 2^-23 may never be drawn.
  Codes of probability 0 never are (tested).

  Args:
    rng: PRNG key.
    logits_BxLxC: unnormalised log-probabilities.
    block: codes per block of the search.

  Returns:
    ids_BxL int32 samples, and log_z_BxL = logsumexp(logits) over C.
  """
  uniform_BxL = jax.random.uniform(rng, logits_BxLxC.shape[:2])
  return _inverse_cdf(uniform_BxL, logits_BxLxC, block)


def _first_or_last(hit_BxLxS, valid_BxLxS):
  """Index of the first hit, or of the last valid entry where nothing hits."""
  size = hit_BxLxS.shape[-1]
  first_BxL = jnp.argmax(hit_BxLxS, axis=-1)
  last_BxL = size - 1 - jnp.argmax(valid_BxLxS[..., ::-1], axis=-1)
  return jnp.where(jnp.any(hit_BxLxS, axis=-1), first_BxL, last_BxL)


def _inverse_cdf(uniform_BxL, logits_BxLxC, block: int = 32):
  """`_sample` for given uniforms in [0, 1).

  The CDF is searched in two levels: blocks of `block` codes, then the codes
  of the chosen block. The block sums, the block CDF and the in-block CDF are
  separate float sums that can disagree by a rounding step at a boundary, so
  each level only picks entries of positive weight (the last one when the
  target falls past the end by rounding): a code of probability zero is
  never drawn.
  """
  batch, length, num_codes = logits_BxLxC.shape
  num_blocks = -(-num_codes // block)
  max_BxLx1 = jnp.max(logits_BxLxC, axis=-1, keepdims=True)
  weights_BxLxC = jnp.exp(logits_BxLxC - max_BxLx1)
  weights_BxLxKxS = jnp.pad(
      weights_BxLxC, ((0, 0), (0, 0), (0, num_blocks * block - num_codes))
  ).reshape(batch, length, num_blocks, block)
  block_sums_BxLxK = jnp.sum(weights_BxLxKxS, axis=-1)
  block_cdf_BxLxK = _inclusive_cumsum(block_sums_BxLxK)
  total_BxL = block_cdf_BxLxK[..., -1]
  target_BxL = uniform_BxL * total_BxL
  block_BxL = _first_or_last(
      (block_cdf_BxLxK > target_BxL[..., None]) & (block_sums_BxLxK > 0),
      block_sums_BxLxK > 0,
  )
  take = lambda x, i: jnp.take_along_axis(x, i[..., None], axis=-1)[..., 0]
  before_BxL = take(block_cdf_BxLxK, block_BxL) - take(
      block_sums_BxLxK, block_BxL
  )
  in_block_BxLxS = jnp.take_along_axis(
      weights_BxLxKxS, block_BxL[..., None, None], axis=2
  )[..., 0, :]
  in_block_cdf_BxLxS = _inclusive_cumsum(in_block_BxLxS)
  offset_BxL = _first_or_last(
      (in_block_cdf_BxLxS > (target_BxL - before_BxL)[..., None])
      & (in_block_BxLxS > 0),
      in_block_BxLxS > 0,
  )
  ids_BxL = block_BxL * block + offset_BxL
  log_z_BxL = max_BxLx1[..., 0] + jnp.log(total_BxL)
  return ids_BxL.astype(jnp.int32), log_z_BxL


def _least_confident(confidence_BxL, num_keep_Bx1):
  """True on the `num_keep` least confident positions of each row."""
  sorted_BxL = jnp.sort(confidence_BxL, axis=-1)
  cutoff_Bx1 = jnp.take_along_axis(sorted_BxL, num_keep_Bx1, axis=-1)
  return confidence_BxL < cutoff_Bx1


def _reusing_call_model(
    reuse: KeyValueReuse,
    guidance: Guidance,
    bias_BxLxC,
    unknown_BxL,
    start_iter: int,
    mask_id: int,
):
  """`call_model` of `decode` with `KeyValueReuse`."""
  batch, length = unknown_BxL.shape
  # The positions unknown at the start first, then known ones as padding.
  query_indices_BxA = jnp.argsort(~unknown_BxL, axis=1, stable=True)[
      :, : min(reuse.num_queries, length)
  ]
  batch_Bx1 = jnp.arange(batch)[:, None]
  take = lambda x_BxL: jnp.take_along_axis(x_BxL, query_indices_BxA, axis=1)
  g = guidance

  def call_model(state, share_done):
    input_ids_BxL = _model_inputs(state, g, share_done, mask_id)

    def every_position(cache):
      del cache
      return reuse.model_fn(
          input_ids_BxL, g.guide_ids_BxL, g.reembed_scale_B, None, None
      )

    def unknown_positions(cache):
      logits_BxAxC, _ = reuse.model_fn(
          take(input_ids_BxL),
          take(g.guide_ids_BxL),
          g.reembed_scale_B,
          query_indices_BxA,
          cache,
      )
      # Known positions' logits are never used: zeros stand in for them.
      logits_BxLxC = jnp.zeros(
          (batch, length, logits_BxAxC.shape[-1]), logits_BxAxC.dtype
      )
      return (
          logits_BxLxC.at[batch_Bx1, query_indices_BxA].set(logits_BxAxC),
          cache,
      )

    logits_BxLxC, cache = jax.lax.cond(
        (state.step - start_iter) % reuse.full_pass_every == 0,
        every_position,
        unknown_positions,
        state.cache,
    )
    return logits_BxLxC + bias_BxLxC, cache

  return call_model


def decode(
    logits_fn: LogitsFn,
    tokens_BxL: jax.Array,
    unknown_BxL: jax.Array,
    rng: jax.Array,
    *,
    mask_id: int,
    num_steps: int,
    schedule: str,
    choice_temperature: float,
    start_iter: int = 0,
    stop_iter: int | None = None,
    guidance: Guidance | None = None,
    return_history: bool = False,
    reuse: KeyValueReuse | None = None,
):
  """Decodes the unknown tokens in parallel over `num_steps` steps.

  Args:
    logits_fn: model call, see `LogitsFn`.
    tokens_BxL: int32 tokens; values at unknown positions are ignored.
    unknown_BxL: bool, positions to generate.
    rng: typed PRNG key.
    mask_id: id of [MASK] in the model's vocabulary.
    num_steps: total steps T of the schedule (>= 1).
    schedule: mask schedule name (see `schedules`).
    start_iter: first step to run (editing starts late, e.g. 2 of 12).
    stop_iter: "sweet spot": run steps [start_iter, stop_iter) only, then fill
      what is still unknown with the argmax of one more forward pass (run
      after every step, so without context guidance or proposals).
    choice_temperature: scale of the Gumbel noise on confidences, annealed
      linearly to 0 over the schedule.
    guidance: optional `Guidance`; None is the baseline.
    return_history: also return the sampled tokens of every step.
    reuse: optional `KeyValueReuse` for cheaper steps (`logits_fn` then
      serves only the sweet spot's final pass).

  Returns:
    tokens_BxL with every unknown position filled (and known ones unchanged),
    plus history_BxTxL (samples of steps run, zeros for steps skipped) if
    `return_history`.
  """
  schedules.validate(schedule)
  stop_iter = num_steps if stop_iter is None else stop_iter
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}.")
  if not 0 <= start_iter < stop_iter <= num_steps:
    raise ValueError(
        f"Need 0 <= start_iter < stop_iter <= num_steps, got start_iter="
        f"{start_iter}, stop_iter={stop_iter}, num_steps={num_steps}."
    )
  if tokens_BxL.shape != unknown_BxL.shape:
    raise ValueError(
        f"tokens {tokens_BxL.shape} and unknown "
        f"{unknown_BxL.shape} shapes differ."
    )
  batch, length = tokens_BxL.shape
  if guidance is None:
    probe = jax.eval_shape(
        logits_fn, tokens_BxL, tokens_BxL, jnp.zeros((batch,), jnp.float32)
    )
    guidance = Guidance.none(batch, length, probe.shape[-1])
  # Only unknown positions with a guide may start known: known stay known.
  keep_BxL = (
      guidance.keep_guide_BxL
      & unknown_BxL.astype(bool)
      & (guidance.guide_ids_BxL >= 0)
  )
  tokens_BxL = jnp.where(keep_BxL, guidance.guide_ids_BxL, tokens_BxL)
  unknown_BxL = unknown_BxL.astype(bool) & ~keep_BxL
  num_unknown_Bx1 = jnp.sum(unknown_BxL, axis=-1, keepdims=True)

  bias_BxLxC = _self_guidance_bias(guidance)

  def plain_call_model(state, share_done):
    g = guidance
    input_ids_BxL = _model_inputs(state, g, share_done, mask_id)
    logits_BxLxC = logits_fn(input_ids_BxL, g.guide_ids_BxL, g.reembed_scale_B)
    return logits_BxLxC + bias_BxLxC, state.cache

  cache = ()
  if reuse is None:
    call_model = plain_call_model
  else:
    call_model = _reusing_call_model(
        reuse, guidance, bias_BxLxC, unknown_BxL, start_iter, mask_id
    )
    cache = jax.tree.map(
        lambda x: jnp.zeros(x.shape, x.dtype),
        jax.eval_shape(
            reuse.model_fn,
            tokens_BxL,
            guidance.guide_ids_BxL,
            guidance.reembed_scale_B,
            None,
            None,
        )[1],
    )

  def body(state: DecodeState) -> DecodeState:
    step = state.step
    ratio = (step + 1).astype(jnp.float32) / num_steps
    # Share of the steps that run already done: what fraction knobs count.
    share_done = (step - start_iter).astype(jnp.float32) / (
        stop_iter - start_iter
    )
    logits_BxLxC, cache = call_model(state, share_done)
    rng, sample_rng, choice_rng = jax.random.split(state.rng, 3)
    sampled_BxL, log_z_BxL = _sample(sample_rng, logits_BxLxC)
    offer_guide_BxL = (share_done < guidance.propose_until_B)[:, None] & (
        guidance.guide_ids_BxL >= 0
    )
    sampled_BxL = jnp.where(
        offer_guide_BxL, guidance.guide_ids_BxL, sampled_BxL
    )
    sampled_BxL = jnp.where(state.unknown_BxL, sampled_BxL, state.tokens_BxL)
    log_p_BxL = (
        jnp.take_along_axis(logits_BxLxC, sampled_BxL[..., None], axis=-1)[
            ..., 0
        ]
        - log_z_BxL
    )
    gumbel_BxL = jax.random.gumbel(choice_rng, log_p_BxL.shape)
    confidence_BxL = log_p_BxL + choice_temperature * (1.0 - ratio) * gumbel_BxL
    confidence_BxL = jnp.where(
        state.unknown_BxL, confidence_BxL, _KNOWN_CONFIDENCE
    )
    gamma_Bx1 = schedules.mask_ratio(ratio, schedule, num_unknown_Bx1)
    num_keep_Bx1 = jnp.floor(num_unknown_Bx1 * gamma_Bx1).astype(jnp.int32)
    still_Bx1 = jnp.sum(state.unknown_BxL, axis=-1, keepdims=True)
    num_keep_Bx1 = jnp.maximum(1, jnp.minimum(still_Bx1 - 1, num_keep_Bx1))
    keep_unknown_BxL = _least_confident(confidence_BxL, num_keep_Bx1)
    history = state.history_BxTxL
    if return_history:
      history = jax.lax.dynamic_update_slice(
          history, sampled_BxL[:, None], (0, step, 0)
      )
    return DecodeState(
        step=step + 1,
        tokens_BxL=sampled_BxL,
        unknown_BxL=keep_unknown_BxL & state.unknown_BxL,
        rng=rng,
        history_BxTxL=history,
        cache=cache,
    )

  init = DecodeState(
      step=jnp.asarray(start_iter, jnp.int32),
      tokens_BxL=jnp.where(unknown_BxL, 0, tokens_BxL).astype(jnp.int32),
      unknown_BxL=unknown_BxL,
      rng=rng,
      history_BxTxL=jnp.zeros(
          (batch, num_steps if return_history else 0, length), jnp.int32
      ),
      cache=cache,
  )
  final = jax.lax.while_loop(lambda s: s.step < stop_iter, body, init)
  # After the last step, positions left unknown hold that step's samples.
  tokens_BxL = final.tokens_BxL
  if stop_iter < num_steps:
    input_ids_BxL = _model_inputs(final, guidance, 1.0, mask_id)
    logits_BxLxC = (
        logits_fn(
            input_ids_BxL, guidance.guide_ids_BxL, guidance.reembed_scale_B
        )
        + bias_BxLxC
    )
    argmax_BxL = jnp.argmax(logits_BxLxC, axis=-1).astype(jnp.int32)
    tokens_BxL = jnp.where(final.unknown_BxL, argmax_BxL, tokens_BxL)
  if return_history:
    return tokens_BxL, final.history_BxTxL
  return tokens_BxL
