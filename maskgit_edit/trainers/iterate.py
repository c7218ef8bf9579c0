"""`iterate`: fine-tune the transformer to use guide tokens re-embedded at [MASK].

Two decode steps are unrolled per example. Step 1 is plain MVTM: mask a
schedule-drawn share of tokens and sample them. The least confident half of
the step-1 samples stay masked for step 2; the rest are committed. Each
step-2 position gets a guide id, embedded with a random scale s in
[0, max_scale] on top of [MASK]: the true token with probability
s / max_scale, else its step-1 sample (plausible but often wrong, like a
stroke's token). So the scale tells the model how far to trust the guide,
and at edit time (guide ids = stroke tokens, scale = the user's knob) larger
scales follow the stroke more. The loss is cross-entropy on the true tokens
at the step-2 masked positions (plus the usual step-1 MVTM loss so plain
decoding does not degrade). Only step 2 is differentiated through; samples
are discrete.
"""

import jax
import jax.numpy as jnp

from maskgit_edit import artefacts
from maskgit_edit.decoding import schedules
from maskgit_edit.trainers import maskgit


class IterateTask(maskgit.MaskGitTask):
  """Fine-tunes the base transformer run's parameters."""

  def __init__(self, config, *args, **kwargs):
    if config.iterate.max_scale <= 0:
      raise ValueError(
          f"iterate.max_scale must be > 0, got {config.iterate.max_scale}."
      )
    super().__init__(config, *args, **kwargs)

  def initial_params(self):
    return artefacts.load_transformer(self.config.transformer_workdir)[1]

  def train_step(self, state, batch, rng):
    tokens_BxN, labels_B = batch["tokens"], batch["labels"]
    batch_size, length = tokens_BxN.shape
    ratio_rng, mask_rng, sample_rng, scale_rng, trust_rng, drop1, drop2 = (
        jax.random.split(rng, 7)
    )
    ratio_B = schedules.mask_ratio(
        jax.random.uniform(ratio_rng, (batch_size,)),
        self.config.mvtm.schedule,
        length,
    )
    mask_BxN = maskgit.random_mask(mask_rng, batch_size, length, ratio_B)
    inputs1_BxL = self.layout.inputs(tokens_BxN, labels_B, mask_BxN)
    offset = self.layout.offset
    max_scale = self.config.iterate.max_scale

    def loss_fn(params):
      logits1 = self.logits(params, inputs1_BxL, drop1)
      loss1, _ = maskgit.masked_cross_entropy(
          logits1, tokens_BxN, mask_BxN, self.config.mvtm.label_smoothing
      )
      logits1 = jax.lax.stop_gradient(logits1)
      samples_BxN = jax.random.categorical(sample_rng, logits1)
      log_p_BxN = jnp.take_along_axis(
          jax.nn.log_softmax(logits1), samples_BxN[..., None], -1
      )[..., 0]
      # The least confident half of the masked positions stays masked.
      confidence = jnp.where(mask_BxN, log_p_BxN, jnp.inf)
      keep_Bx1 = jnp.maximum(jnp.sum(mask_BxN, -1, keepdims=True) // 2, 1)
      ranks = jnp.argsort(jnp.argsort(confidence, axis=-1), axis=-1)
      mask2_BxN = (ranks < keep_Bx1) & mask_BxN
      committed_BxN = jnp.where(mask_BxN, samples_BxN, tokens_BxN)
      inputs2 = self.layout.inputs(committed_BxN, labels_B, mask2_BxN)
      scale_B = jax.random.uniform(scale_rng, (batch_size,)) * max_scale
      trusted_BxN = (
          jax.random.uniform(trust_rng, (batch_size, length))
          < (scale_B / max_scale)[:, None]
      )
      guides = jnp.where(
          mask2_BxN, jnp.where(trusted_BxN, tokens_BxN, samples_BxN), -1
      )
      if offset:
        guides = jnp.pad(guides, ((0, 0), (offset, 0)), constant_values=-1)
      logits2 = self.layout.code_logits(
          self.model.apply(
              {"params": params},
              inputs2,
              deterministic=False,
              guide_ids_BxL=guides,
              guide_scale=scale_B,
              rngs={"dropout": drop2},
          )
      )
      loss2, accuracy2 = maskgit.masked_cross_entropy(
          logits2, tokens_BxN, mask2_BxN, self.config.mvtm.label_smoothing
      )
      return loss1 + loss2, (loss1, loss2, accuracy2)

    grads_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, (loss1, loss2, accuracy2)), grads = grads_fn(state["params"])
    return self.apply_gradients(state, grads), {
        "loss": loss,
        "step1_loss": loss1,
        "step2_loss": loss2,
        "step2_accuracy": accuracy2,
    }

  def finish(self, state, workdir):
    artefacts.export_params(workdir, "transformer", self._eval_params(state))
    return self.evaluate(state)


def make_task(config, workdir):
  del workdir
  return IterateTask.from_runs(
      config, artefacts.load_run_config(config.transformer_workdir)
  )
