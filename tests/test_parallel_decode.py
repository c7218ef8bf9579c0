import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_edit.decoding import parallel_decode
from maskgit_edit.decoding import schedules

C, L, MASK = 40, 24, 99


def counting_model(input_ids_BxL, guide_ids_BxL, guide_scale_B):
  """Deterministic fake: predicts, everywhere, the number of [MASK] inputs."""
  del guide_ids_BxL, guide_scale_B
  count_B = jnp.sum(input_ids_BxL == MASK, axis=-1)
  return 1e4 * jax.nn.one_hot(count_B, C)[:, None, :].repeat(L, axis=1)


def random_model(input_ids_BxL, guide_ids_BxL, guide_scale_B):
  """A fixed random logit table per position, so sampling is stochastic."""
  del guide_ids_BxL, guide_scale_B
  table = jax.random.normal(jax.random.key(7), (L, C))
  return jnp.broadcast_to(table, input_ids_BxL.shape + (C,))


def run(model, tokens, unknown, seed=0, **kw):
  kw.setdefault("num_steps", 8)
  kw.setdefault("schedule", "cosine")
  kw.setdefault("choice_temperature", 4.5)
  fn = jax.jit(
      functools.partial(parallel_decode.decode, model, mask_id=MASK, **kw)
  )
  return fn(jnp.asarray(tokens), jnp.asarray(unknown), jax.random.key(seed))


def inputs(batch=3, seed=0):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, C, (batch, L))
  unknown = rng.random((batch, L)) < 0.7
  unknown[:, 0] = True
  return tokens, unknown


def expected_masks_per_step(
    num_unknown, num_steps, schedule, start=0, stop=None
):
  """[MASK] count in the model input of each step, by the released rule."""
  counts, still = [], num_unknown
  for step in range(start, num_steps if stop is None else stop):
    counts.append(still)
    gamma = float(
        schedules.mask_ratio((step + 1) / num_steps, schedule, num_unknown)
    )
    keep = int(np.floor(num_unknown * gamma))
    still = max(1, min(still - 1, keep))
  return counts, still


def test_fills_every_unknown_and_keeps_known_tokens():
  tokens, unknown = inputs()
  out = np.asarray(run(random_model, tokens, unknown))
  assert out.shape == tokens.shape
  np.testing.assert_array_equal(out[~unknown], tokens[~unknown])
  assert out.min() >= 0 and out.max() < C


@pytest.mark.parametrize("schedule", ["cosine", "linear", "pow3", "exp"])
@pytest.mark.parametrize("start_iter", [0, 3])
def test_commits_follow_schedule(schedule, start_iter):
  tokens, unknown = inputs(batch=2)
  out = np.asarray(
      run(
          counting_model,
          tokens,
          unknown,
          schedule=schedule,
          start_iter=start_iter,
      )
  )
  for row in range(2):
    n0 = int(unknown[row].sum())
    counts, _ = expected_masks_per_step(n0, 8, schedule, start_iter)
    # A token committed at a step holds that step's [MASK] count.
    got = np.bincount(out[row][unknown[row]], minlength=C)
    want = np.zeros(C, int)
    for i, m in enumerate(counts):
      nxt = counts[i + 1] if i + 1 < len(counts) else 0
      want[m] += m - nxt
    np.testing.assert_array_equal(got, want)


def test_sweet_spot_stops_early_and_fills_by_argmax():
  tokens, unknown = inputs(batch=1)
  n0 = int(unknown.sum())
  out, history = run(
      counting_model, tokens, unknown, stop_iter=3, return_history=True
  )
  counts, left = expected_masks_per_step(n0, 8, "cosine", stop=3)
  out = np.asarray(out)[0][unknown[0]]
  # The final argmax pass sees `left` masks and fills exactly those.
  assert np.sum(out == left) == left
  assert np.asarray(history)[0, 3:].sum() == 0  # steps not run stay empty
  assert counts[0] == n0


def test_same_seed_same_output_and_seeds_differ():
  tokens, unknown = inputs()
  a = run(random_model, tokens, unknown, seed=1)
  b = run(random_model, tokens, unknown, seed=1)
  c = run(random_model, tokens, unknown, seed=2)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_zero_guidance_is_the_baseline_bit_for_bit():
  tokens, unknown = inputs()
  base = run(random_model, tokens, unknown, seed=3)
  g = parallel_decode.Guidance.none(3, L, C)
  guided = g.replace(
      guide_ids_BxL=jnp.asarray(tokens, jnp.int32), kernel_CxC=jnp.eye(C)
  )
  out = run(random_model, tokens, unknown, seed=3, guidance=guided)
  np.testing.assert_array_equal(base, out)


def test_strong_self_guidance_copies_the_guide():
  tokens, unknown = inputs()
  guide = (tokens + 5) % C
  g = parallel_decode.Guidance.none(3, L, C).replace(
      guide_ids_BxL=jnp.asarray(guide, jnp.int32),
      kernel_CxC=jnp.eye(C),
      self_weight_B=jnp.full((3,), 1e3),
  )
  out = np.asarray(run(random_model, tokens, unknown, guidance=g))
  np.testing.assert_array_equal(out[unknown], guide[unknown])
  np.testing.assert_array_equal(out[~unknown], tokens[~unknown])


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(num_steps=0), "num_steps"),
        (dict(start_iter=8), "start_iter"),
        (dict(stop_iter=0), "stop_iter"),
        (dict(schedule="zigzag"), "Unknown mask schedule"),
    ],
)
def test_bad_settings(kw, match):
  tokens, unknown = inputs()
  with pytest.raises(ValueError, match=match):
    run(random_model, tokens, unknown, **kw)


def test_shape_mismatch():
  tokens, unknown = inputs()
  with pytest.raises(ValueError, match="shapes differ"):
    run(random_model, tokens, unknown[:, :-1])


@pytest.mark.parametrize("num_codes,block", [(40, 8), (50, 32), (512, 32)])
def test_sample_matches_the_categorical_distribution(num_codes, block):
  # Peaked rows, flat rows and codes of zero probability (logit -inf).
  rows = 4
  logits_RxC = 3.0 * jax.random.normal(jax.random.key(0), (rows, num_codes))
  logits_RxC = logits_RxC.at[1].set(0.0).at[2, ::3].set(-jnp.inf)
  draws = 20000
  logits_BxLxC = jnp.broadcast_to(logits_RxC[:, None], (rows, draws, num_codes))
  ids_BxL, log_z_BxL = jax.jit(parallel_decode._sample, static_argnums=2)(
      jax.random.key(1), logits_BxLxC, block
  )
  np.testing.assert_allclose(
      log_z_BxL[:, 0], jax.nn.logsumexp(logits_RxC, axis=-1), rtol=1e-5
  )
  probs_RxC = np.asarray(jax.nn.softmax(logits_RxC, axis=-1), np.float64)
  for row in range(rows):
    counts_C = np.bincount(np.asarray(ids_BxL[row]), minlength=num_codes)
    assert counts_C.shape == (num_codes,)  # Never an id past the codebook.
    assert not counts_C[probs_RxC[row] == 0].any()
    # Within 5 Poisson standard deviations (+5 for codes of tiny mass).
    expected_C = draws * probs_RxC[row]
    np.testing.assert_array_less(
        np.abs(counts_C - expected_C), 5 * np.sqrt(expected_C) + 5
    )


def _boundary_uniforms(logits_RxC, block):
  """Uniforms (as float32 can hold them) within a few ulps of each block
  boundary of the CDF of every row, and the extremes 0 and 1 - 2^-24."""
  weights_RxC = np.exp(
      np.asarray(logits_RxC, np.float64)
      - np.max(logits_RxC, axis=-1, keepdims=True)
  )
  cdf_RxC = np.cumsum(weights_RxC, axis=-1) / weights_RxC.sum(-1, keepdims=True)
  ends_RxK = np.concatenate(
      [cdf_RxC[:, block - 1 :: block], cdf_RxC[:, -1:]], 1
  )
  steps = np.arange(-8, 9, dtype=np.float32)
  near_RxKxU = (
      np.float32(ends_RxK)[..., None]
      + steps * np.spacing(np.float32(ends_RxK))[..., None]
  )
  near_RxU = near_RxKxU.reshape(len(ends_RxK), -1)
  extremes = np.array([0.0, 1.0 - 2.0**-24], np.float32)
  uniforms_RxU = np.concatenate(
      [near_RxU, np.broadcast_to(extremes, (len(near_RxU), 2))], axis=1
  )
  return np.clip(uniforms_RxU, 0.0, np.float32(1.0 - 2.0**-24))


def test_sample_never_draws_a_code_of_zero_probability():
  # Zero-weight codes (logit -inf, or underflow next to a huge logit) at both
  # ends of every block, where the block and in-block sums can disagree.
  num_codes, block, rows = 96, 32, 64
  logits_RxC = 4.0 * jax.random.normal(jax.random.key(2), (rows, num_codes))
  edges = np.array([0, 31, 32, 63, 64, 95])
  logits_RxC = logits_RxC.at[: rows // 2, edges].set(-jnp.inf)
  logits_RxC = logits_RxC.at[rows // 2 :, edges].set(-200.0)
  uniforms_RxU = _boundary_uniforms(logits_RxC, block)
  logits_RxUxC = jnp.broadcast_to(
      logits_RxC[:, None], (rows, uniforms_RxU.shape[1], num_codes)
  )
  ids_RxU, _ = jax.jit(parallel_decode._inverse_cdf, static_argnums=2)(
      jnp.asarray(uniforms_RxU), logits_RxUxC, block
  )
  weights_RxC = np.asarray(jax.nn.softmax(logits_RxC, axis=-1))
  drawn_weights = np.take_along_axis(weights_RxC, np.asarray(ids_RxU), axis=1)
  assert (drawn_weights > 0).all()


def copy_or_random_model(input_ids_BxL, guide_ids_BxL, guide_scale_B):
  """Copies a code it is shown; at [MASK] a random table that never gives
  code C - 1 (probability ~1e-13), so a sampled C - 1 was shown or
  proposed."""
  del guide_ids_BxL, guide_scale_B
  table = jax.random.normal(jax.random.key(7), (L, C)).at[:, -1].set(-30.0)
  shown = jax.nn.one_hot(jnp.minimum(input_ids_BxL, C - 1), C) * 1e4
  return jnp.where((input_ids_BxL == MASK)[..., None], table, shown)


@pytest.mark.parametrize("field", ["context_until_B", "propose_until_B"])
@pytest.mark.parametrize("knob", [0.0, 0.1, 0.15, 0.25, 0.5, 1.0])
def test_fraction_knobs_count_the_steps_that_run(field, knob):
  num_steps, start_iter = 12, 2
  tokens, unknown = inputs(batch=1)
  guide = np.where(unknown, C - 1, -1)
  g = parallel_decode.Guidance.none(1, L, C).replace(
      guide_ids_BxL=jnp.asarray(guide, jnp.int32),
      **{field: jnp.full((1,), knob)},
  )
  _, history = run(
      copy_or_random_model,
      tokens,
      unknown,
      guidance=g,
      num_steps=num_steps,
      start_iter=start_iter,
      return_history=True,
  )
  # A guided step samples C - 1 at every still-unknown position; an unguided
  # one samples it nowhere (>= 1 position stays unknown until the last step).
  run_steps = np.asarray(history)[0, start_iter:][:, unknown[0]]
  guided = np.all(run_steps == C - 1, axis=-1)
  expected = int(np.ceil(knob * (num_steps - start_iter) - 1e-9))
  assert guided.tolist() == [True] * expected + [False] * (
      num_steps - start_iter - expected
  )


def test_kept_guide_positions_start_known():
  tokens, unknown = inputs(batch=2)
  guide = np.where(unknown, (tokens + 3) % C, -1)
  keep = unknown & (np.arange(L) % 2 == 0)
  g = parallel_decode.Guidance.none(2, L, C).replace(
      guide_ids_BxL=jnp.asarray(guide, jnp.int32),
      keep_guide_BxL=jnp.asarray(keep),
  )
  out = np.asarray(run(counting_model, tokens, unknown, guidance=g))
  np.testing.assert_array_equal(out[keep], guide[keep])
  np.testing.assert_array_equal(out[~unknown], tokens[~unknown])
  # The schedule spreads only the re-masked positions over the steps.
  for row in range(2):
    counts, _ = expected_masks_per_step(
        int((unknown & ~keep)[row].sum()), 8, "cosine"
    )
    assert out[row][unknown[row] & ~keep[row]].max() == counts[0]


def test_sdedit_remasks_the_scheduled_share_of_the_edit_nested():
  from maskgit_edit.decoding import guidance as guidance_lib

  rng = np.random.default_rng(0)
  edited_BxN = rng.random((3, 64)) < 0.4
  strengths = (0.0, 0.2, 0.5, 0.8, 1.0)
  kept = [
      np.asarray(
          guidance_lib.sdedit_keep(
              jax.random.key(5), np.full(3, s), edited_BxN, "cosine"
          )
      )
      for s in strengths
  ]
  num_edited_B = edited_BxN.sum(-1)
  for s, keep_BxN in zip(strengths, kept):
    assert not (keep_BxN & ~edited_BxN).any()
    share = np.cos(np.pi / 2 * (1 - s)) if s > 0 else 0.0
    np.testing.assert_array_equal(
        num_edited_B - keep_BxN.sum(-1),
        np.ceil(np.round(share * num_edited_B, 4)),
    )
  # The same key re-masks nested sets, so strengths pair.
  for weaker, stronger in zip(kept, kept[1:]):
    assert not (stronger & ~weaker).any()
  np.testing.assert_array_equal(kept[0], edited_BxN)
  assert not kept[-1].any()


def test_class_guidance_pushes_the_class_away_from_the_marginal():
  from maskgit_edit.decoding import sampling
  from maskgit_edit.models import TokenLayout

  layout = TokenLayout(
      codebook_size=6, num_classes=3, grid_side=2, class_conditional=True
  )
  table_KxC = jax.random.normal(jax.random.key(0), (3, 6))

  class FakeModel:
    """Logits depend only on the class token: table[class] everywhere."""

    def apply(self, variables, ids_BxL, **kwargs):
      del variables, kwargs
      logits_BxC = table_KxC[ids_BxL[:, 0] - layout.codebook_size]
      logits_BxC = jnp.pad(logits_BxC, ((0, 0), (0, layout.vocab_size - 6)))
      return jnp.broadcast_to(
          logits_BxC[:, None], ids_BxL.shape + (layout.vocab_size,)
      )

  ids_BxL = jnp.array([[6, 0, 1, 2, 3], [8, 0, 1, 2, 3]])
  args = (ids_BxL, jnp.full_like(ids_BxL, -1), jnp.zeros(2))
  plain = sampling.logits_fn_for(FakeModel(), None, layout)(*args)
  guided = sampling.logits_fn_for(FakeModel(), None, layout, 2.0)(*args)
  log_p_KxC = jax.nn.log_softmax(table_KxC)
  marginal_C = jax.nn.logsumexp(log_p_KxC, axis=0) - jnp.log(3.0)
  for row, y in enumerate((0, 2)):
    np.testing.assert_allclose(plain[row, 1], table_KxC[y], rtol=1e-6)
    np.testing.assert_allclose(
        guided[row, 1],
        log_p_KxC[y] + 2.0 * (log_p_KxC[y] - marginal_C),
        rtol=1e-5,
        atol=1e-6,
    )
  unconditional = TokenLayout(6, 3, 2, class_conditional=False)
  with pytest.raises(ValueError, match="class-conditional"):
    sampling.logits_fn_for(FakeModel(), None, unconditional, 2.0)


def test_null_class_guidance_runs_two_passes_against_the_null_class():
  from maskgit_edit.decoding import sampling
  from maskgit_edit.models import TokenLayout

  layout = TokenLayout(6, 3, 2, class_conditional=True, null_class=True)
  assert layout.vocab_size == 6 + 3 + 1 + 1
  assert layout.class_ids(layout.null_label) == 9 and layout.mask_id == 10
  table_KxC = jax.random.normal(jax.random.key(0), (4, 6))  # 3 + null
  batches = []

  class FakeModel:
    """Logits depend only on the class token: table[class] everywhere."""

    def apply(self, variables, ids_BxL, **kwargs):
      del variables, kwargs
      batches.append(ids_BxL.shape[0])
      logits_BxC = table_KxC[ids_BxL[:, 0] - layout.codebook_size]
      logits_BxC = jnp.pad(logits_BxC, ((0, 0), (0, layout.vocab_size - 6)))
      return jnp.broadcast_to(
          logits_BxC[:, None], ids_BxL.shape + (layout.vocab_size,)
      )

  ids_BxL = jnp.array([[6, 0, 1, 2, 3], [8, 0, 1, 2, 3]])
  guided = sampling.logits_fn_for(FakeModel(), None, layout, 2.0)(
      ids_BxL, jnp.full_like(ids_BxL, -1), jnp.zeros(2)
  )
  assert batches == [4]  # One call: each row with its class and with null.
  log_p_KxC = jax.nn.log_softmax(table_KxC)
  for row, y in enumerate((0, 2)):
    np.testing.assert_allclose(
        guided[row, 1],
        log_p_KxC[y] + 2.0 * (log_p_KxC[y] - log_p_KxC[3]),
        rtol=1e-5,
        atol=1e-6,
    )
  with pytest.raises(ValueError, match="null class needs a class-cond"):
    TokenLayout(6, 3, 2, class_conditional=False, null_class=True)


@pytest.mark.parametrize(
    "schedule", ["cosine", "linear", "square", "pow3", "log", "exp"]
)
def test_sdedit_ends_are_exact_under_every_schedule(schedule):
  """Strength 1 re-masks all of E (the unguided decode), strength 0 none."""
  from maskgit_edit.decoding import guidance as guidance_lib

  edited_BxN = np.random.default_rng(1).random((4, 64)) < 0.3
  edited_BxN[3] = False
  edited_BxN[3, 7] = True  # A one-token edit.
  for strength, kept in ((1.0, np.zeros_like(edited_BxN)), (0.0, edited_BxN)):
    np.testing.assert_array_equal(
        guidance_lib.sdedit_keep(
            jax.random.key(0), np.full(4, strength), edited_BxN, schedule
        ),
        kept,
    )
