"""Token-grid decoding with a trained transformer: one compiled program.

`Sampler` turns token grids + an unknown mask (+ labels, + guidance) into
decoded grids. Everything that varies between calls (tokens, masks, labels,
rng, guidance knobs) is a traced array, so a new mask or knob value never
recompiles; only shapes and the static decode settings do.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_edit import compiling
from maskgit_edit import images as images_lib
from maskgit_edit.decoding import parallel_decode
from maskgit_edit.decoding import schedules
from maskgit_edit.decoding import windows
from maskgit_edit.models import TokenLayout


@dataclasses.dataclass(frozen=True)
class DecodeSettings:
  """Static settings of a decode (changing them recompiles)."""

  num_steps: int = 12
  schedule: str = "cosine"
  choice_temperature: float = 4.5
  start_iter: int = 0
  stop_iter: int | None = None
  class_guidance: float = 0.0  # w of `logits_fn_for`; 0 is plain decoding.
  # Key/value reuse (`parallel_decode.KeyValueReuse`): the transformer runs
  # over every token at every r-th step, in between over the unknown ones
  # only. 1 runs every token at every step.
  full_pass_every: int = 1

  def __post_init__(self):
    schedules.validate(self.schedule)
    if self.num_steps < 1:
      raise ValueError(f"num_steps must be >= 1, got {self.num_steps}.")
    if self.class_guidance < 0:
      raise ValueError(
          f"class_guidance must be >= 0, got {self.class_guidance}."
      )
    if self.full_pass_every < 1:
      raise ValueError(
          f"full_pass_every must be >= 1, got {self.full_pass_every}."
      )
    if self.full_pass_every > 1 and self.class_guidance:
      raise ValueError(
          "Key/value reuse (full_pass_every > 1) does not "
          "combine with class_guidance."
      )

  @classmethod
  def from_config(cls, cfg) -> "DecodeSettings":
    return cls(
        **{
            f.name: cfg[f.name]
            for f in dataclasses.fields(cls)
            if f.name in cfg
        }
    )


# An edit's decode: the released MaskGIT editing demo starts at step 2 of 12.
EDIT_DECODE = DecodeSettings(start_iter=2)

# The command-line spelling of every `DecodeSettings` field: --<field>.
DECODE_FLAGS = {
    "num_steps": (int, "Decode steps."),
    "schedule": (str, f"Mask schedule: {', '.join(schedules.NAMES)}."),
    "choice_temperature": (float, "Temperature of the confidence noise."),
    "start_iter": (int, "First decode step of an edit (not of generation)."),
    "stop_iter": (int, "Sweet spot: stop after this step, argmax the rest."),
    "class_guidance": (float, "w of logits_fn_for (0: none)."),
    "full_pass_every": (
        int,
        "Key/value reuse: every token runs through the transformer every"
        " this many steps, the unknown ones only in between (1: no reuse).",
    ),
}


# Class guidance runs the transformer once per class at every step.
MAX_GUIDED_CLASSES = 16


def _code_logits(
    model,
    params,
    layout: TokenLayout,
    input_ids_BxQ,
    guide_ids_BxQ,
    guide_scale_B,
    position_ids_BxQ,
    **cache_args,
):
  """The transformer's logits over the codebook, [B, Q, C] (with
  `return_cache` in `cache_args`: and its keys and values)."""
  out = model.apply(
      {"params": params},
      input_ids_BxQ,
      deterministic=True,
      guide_ids_BxL=guide_ids_BxQ,
      guide_scale=guide_scale_B,
      position_ids_BxL=position_ids_BxQ,
      **cache_args,
  )
  if cache_args.get("return_cache"):
    return layout.codes_only(out[0]), out[1]
  return layout.codes_only(out)


def logits_fn_for(
    model,
    params,
    layout: TokenLayout,
    class_guidance: float = 0.0,
    position_ids_BxL=None,
):
  """`parallel_decode.LogitsFn` over the codebook for a transformer.

  `position_ids_BxL` gives the sequence position of each input when the
  inputs are a window of the sequence (`decoding.windows`).

  With `class_guidance` w > 0 (class-conditional models), the
  log-probabilities of the requested class y are pushed away from those of
  no class, per token:
    log p(x | y) + w (log p(x | y) - log p(x)),
  i.e. guidance by the implicit classifier p(y | x) of the model itself.
  A model trained with class dropout (`layout.null_class`) gives p(x) in one
  more forward pass (classifier-free guidance); otherwise p(x) is the exact
  class marginal mean_c p(x | c), at one forward pass per class.
  """

  def logits_fn(
      input_ids_BxL,
      guide_ids_BxL,
      guide_scale_B,
      position_ids_BxL=position_ids_BxL,
  ):
    return _code_logits(
        model,
        params,
        layout,
        input_ids_BxL,
        guide_ids_BxL,
        guide_scale_B,
        position_ids_BxL,
    )

  if not class_guidance:
    return logits_fn
  if not layout.class_conditional:
    raise ValueError("class_guidance needs a class-conditional model.")
  num_classes = layout.num_classes
  if layout.null_class:
    return _null_class_guided(
        logits_fn, layout, class_guidance, position_ids_BxL
    )
  if num_classes > MAX_GUIDED_CLASSES:
    raise ValueError(
        f"class_guidance runs one forward pass per class; "
        f"{num_classes} classes is more than "
        f"{MAX_GUIDED_CLASSES}."
    )

  def guided_fn(input_ids_BxL, guide_ids_BxL, guide_scale_B):
    batch = input_ids_BxL.shape[0]
    tile = lambda x: jnp.tile(x, (num_classes,) + (1,) * (x.ndim - 1))
    class_ids_K = layout.class_ids(jnp.arange(num_classes))
    ids_KBxL = (
        tile(input_ids_BxL)
        .at[:, 0]
        .set(jnp.repeat(class_ids_K, batch).astype(input_ids_BxL.dtype))
    )
    logits_KBxLxC = logits_fn(
        ids_KBxL,
        tile(guide_ids_BxL),
        tile(guide_scale_B),
        None if position_ids_BxL is None else tile(position_ids_BxL),
    )
    log_p_KxBxLxC = jax.nn.log_softmax(
        logits_KBxLxC.reshape(num_classes, batch, *logits_KBxLxC.shape[1:])
    )
    requested_B = input_ids_BxL[:, 0] - layout.codebook_size
    log_p_BxLxC = log_p_KxBxLxC[requested_B, jnp.arange(batch)]
    log_marginal_BxLxC = jax.nn.logsumexp(log_p_KxBxLxC, axis=0) - jnp.log(
        num_classes
    )
    return log_p_BxLxC + class_guidance * (log_p_BxLxC - log_marginal_BxLxC)

  return guided_fn


def _null_class_guided(
    logits_fn, layout: TokenLayout, class_guidance: float, position_ids_BxL
):
  """Classifier-free guidance against the null class: 2 passes a step."""
  twice = (
      lambda x: None if x is None else jnp.tile(x, (2,) + (1,) * (x.ndim - 1))
  )

  def guided_fn(input_ids_BxL, guide_ids_BxL, guide_scale_B):
    batch = input_ids_BxL.shape[0]
    null_ids_BxL = input_ids_BxL.at[:, 0].set(
        layout.class_ids(layout.null_label)
    )
    logits_2BxLxC = logits_fn(
        jnp.concatenate([input_ids_BxL, null_ids_BxL]),
        twice(guide_ids_BxL),
        twice(guide_scale_B),
        twice(position_ids_BxL),
    )
    log_p_BxLxC, log_null_BxLxC = jnp.split(
        jax.nn.log_softmax(logits_2BxLxC), [batch]
    )
    return log_p_BxLxC + class_guidance * (log_p_BxLxC - log_null_BxLxC)

  return guided_fn


def key_value_reuse(
    model,
    params,
    layout: TokenLayout,
    full_pass_every: int,
    num_queries: int,
    position_ids_BxL=None,
) -> parallel_decode.KeyValueReuse:
  """`parallel_decode.KeyValueReuse` for a transformer (over the codebook).

  `position_ids_BxL`: as in `logits_fn_for`.
  """

  def model_fn(
      input_ids_BxQ, guide_ids_BxQ, guide_scale_B, query_indices_BxQ, cache
  ):
    positions_BxQ = position_ids_BxL
    if query_indices_BxQ is not None:
      positions_BxQ = (
          query_indices_BxQ
          if position_ids_BxL is None
          else jnp.take_along_axis(position_ids_BxL, query_indices_BxQ, axis=1)
      )
    return _code_logits(
        model,
        params,
        layout,
        input_ids_BxQ,
        guide_ids_BxQ,
        guide_scale_B,
        positions_BxQ,
        cache=cache,
        query_indices_BxL=query_indices_BxQ,
        return_cache=True,
    )

  return parallel_decode.KeyValueReuse(model_fn, full_pass_every, num_queries)


class Sampler:
  """Decodes [B, h, w] token grids with a transformer."""

  def __init__(self, model, layout: TokenLayout, settings: DecodeSettings):
    self.model = model
    self.layout = layout
    self.settings = settings
    self._decode = compiling.SizedJit(
        self._decode_impl,
        self._full_pass_rows,
        static_argnames=("return_history", "num_queries"),
    )

  def _full_pass_rows(self, params, tokens_Bxhxw, *inputs, **static) -> int:
    """Rows (batch x tokens) of one full pass of a `_decode_impl` call, whose
    inputs are all positional, the window last."""
    del params, static
    window_BxW = inputs[-1]
    batch, grid_tokens = tokens_Bxhxw.shape[0], tokens_Bxhxw[0].size
    if window_BxW is None:
      return batch * self.layout.seq_len
    return batch * (self.layout.seq_len - grid_tokens + window_BxW.shape[1])

  def _to_sequence(self, grid_Bxhxw, labels_B, class_value):
    seq_BxN = grid_Bxhxw.reshape(grid_Bxhxw.shape[0], -1)
    if not self.layout.class_conditional:
      return seq_BxN
    return jnp.concatenate(
        [class_value(labels_B)[:, None].astype(seq_BxN.dtype), seq_BxN], axis=1
    )

  def _decode_impl(
      self,
      params,
      tokens_Bxhxw,
      unknown_Bxhxw,
      labels_B,
      rng,
      guidance_grid,
      window_BxW,
      return_history=False,
      num_queries=None,
  ):
    layout, s = self.layout, self.settings
    batch = tokens_Bxhxw.shape[0]
    tokens_BxL = self._to_sequence(
        tokens_Bxhxw.astype(jnp.int32), labels_B, layout.class_ids
    )
    unknown_BxL = self._to_sequence(
        unknown_Bxhxw, labels_B, lambda y: jnp.zeros_like(y, bool)
    )
    guidance = None
    if guidance_grid is not None:
      guidance = dataclasses.replace(
          guidance_grid,
          guide_ids_BxL=self._to_sequence(
              guidance_grid.guide_ids_BxL.reshape(batch, -1),
              labels_B,
              lambda y: jnp.full_like(y, -1),
          ),
          keep_guide_BxL=self._to_sequence(
              guidance_grid.keep_guide_BxL.reshape(batch, -1),
              labels_B,
              lambda y: jnp.zeros_like(y, bool),
          ),
      )
    # The window's sequence positions: the class token's, then the grid's.
    positions_BxS = (
        None
        if window_BxW is None
        else self._to_sequence(
            window_BxW + layout.offset, labels_B, jnp.zeros_like
        )
    )
    take = (
        (lambda x: x)
        if positions_BxS is None
        else lambda x: jnp.take_along_axis(x, positions_BxS, axis=1)
    )
    if guidance is not None:
      guidance = dataclasses.replace(
          guidance,
          guide_ids_BxL=take(guidance.guide_ids_BxL),
          keep_guide_BxL=take(guidance.keep_guide_BxL),
      )
    out = parallel_decode.decode(
        logits_fn_for(
            self.model, params, layout, s.class_guidance, positions_BxS
        ),
        take(tokens_BxL),
        take(unknown_BxL),
        rng,
        mask_id=layout.mask_id,
        num_steps=s.num_steps,
        schedule=s.schedule,
        start_iter=s.start_iter,
        stop_iter=s.stop_iter,
        choice_temperature=s.choice_temperature,
        guidance=guidance,
        return_history=return_history,
        reuse=None
        if num_queries is None
        else key_value_reuse(
            self.model,
            params,
            layout,
            s.full_pass_every,
            num_queries,
            positions_BxS,
        ),
    )
    decoded_BxS, history_BxTxS = out if return_history else (out, None)
    rows_Bx1 = jnp.arange(batch)[:, None]
    if positions_BxS is not None:
      decoded_BxS = tokens_BxL.at[rows_Bx1, positions_BxS].set(decoded_BxS)
    grid = decoded_BxS[:, layout.offset :].reshape(tokens_Bxhxw.shape)
    if not return_history:
      return grid
    if positions_BxS is not None:
      history_BxTxS = (
          jnp.broadcast_to(
              tokens_BxL[:, None], (batch, s.num_steps, tokens_BxL.shape[1])
          )
          .at[rows_Bx1, :, positions_BxS]
          .set(jnp.swapaxes(history_BxTxS, 1, 2))
      )
    return grid, history_BxTxS[:, :, layout.offset :].reshape(
        batch, -1, *tokens_Bxhxw.shape[1:]
    )

  def __call__(
      self,
      params,
      tokens_Bxhxw,
      unknown_Bxhxw,
      rng,
      *,
      labels_B=None,
      guidance=None,
      return_history=False,
      window: int | None = None,
  ):
    """Decodes the unknown tokens.

    Args:
      params: transformer params.
      tokens_Bxhxw: int token grids (unknown positions are ignored).
      unknown_Bxhxw: bool, positions to generate.
      rng: typed key.
      labels_B: int class labels (required iff the model is class-conditional).
      guidance: optional `parallel_decode.Guidance` whose guide_ids_BxL and
        keep_guide_BxL are given as [B, h, w] grids (the class position is
        added here).
      return_history: also return per-step samples [B, T, h, w].
      window: None decodes over the whole grid; k >= 0 runs the transformer
        only on the unknown tokens' bounding box grown by k tokens
        (`decoding.windows`; a new bucketed window size compiles once).

    Returns:
      int32 [B, h, w] grids (and the history if asked).
    """
    if tokens_Bxhxw.shape != unknown_Bxhxw.shape:
      raise ValueError(
          f"tokens {tokens_Bxhxw.shape} and unknown mask "
          f"{unknown_Bxhxw.shape} differ in shape."
      )
    side = self.layout.grid_side
    if tuple(tokens_Bxhxw.shape[1:]) != (side, side):
      raise ValueError(
          f"Token grids must be {side}x{side} for this model, "
          f"got {tuple(tokens_Bxhxw.shape[1:])}."
      )
    if self.layout.class_conditional and labels_B is None:
      raise ValueError("This model is class-conditional: pass labels_B.")
    if labels_B is None:
      labels_B = jnp.zeros((tokens_Bxhxw.shape[0],), jnp.int32)
    window_BxW = (
        None
        if window is None
        else windows.window_positions(np.asarray(unknown_Bxhxw), window)
    )
    return self._decode(
        params,
        jnp.asarray(tokens_Bxhxw),
        jnp.asarray(unknown_Bxhxw, bool),
        jnp.asarray(labels_B, jnp.int32),
        rng,
        guidance,
        window_BxW,
        return_history=return_history,
        num_queries=self._num_queries(unknown_Bxhxw, window_BxW),
    )

  def _num_queries(self, unknown_Bxhxw, window_BxW) -> int | None:
    """Positions the steps without a full pass run (bucketed: a new edit
    size compiles once), or None where key/value reuse is off or saves
    nothing."""
    if self.settings.full_pass_every == 1:
      return None
    length = (
        self.layout.grid_side**2 if window_BxW is None else window_BxW.shape[1]
    )
    most = int(np.max(np.sum(np.asarray(unknown_Bxhxw, bool), axis=(1, 2))))
    bucket = windows.bucket_for(length)
    queries = -(-max(most, 1) // bucket) * bucket
    return queries if queries < length else None

  def generate(self, params, rng, batch: int, labels_B=None):
    """Unconditional / class-conditional generation: all tokens unknown."""
    side = self.layout.grid_side
    tokens = jnp.zeros((batch, side, side), jnp.int32)
    return self(
        params, tokens, jnp.ones_like(tokens, bool), rng, labels_B=labels_B
    )


def sample_grid(
    sampler: Sampler,
    params,
    detokenize,
    rng,
    per_row: int = 8,
    num_rows: int = 4,
):
  """float32 [H', W', 3] grid in [0, 1] of generated images, `per_row` a
  row; row r is class r mod num_classes for class-conditional models.

  Args:
    sampler, params: the transformer's sampler and params.
    detokenize: token grids [B, h, w] -> images [B, H, W, 3].
    rng: typed key of the generation.
  """
  labels_B = (np.arange(num_rows * per_row) // per_row) % max(
      sampler.layout.num_classes, 1
  )
  tokens_Bxhxw = sampler.generate(
      params, rng, num_rows * per_row, labels_B=labels_B
  )
  images_BxHxWx3 = np.clip(np.asarray(detokenize(tokens_Bxhxw)), 0, 1)
  return images_lib.grid(images_BxHxWx3, per_row)
