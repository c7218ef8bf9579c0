"""`reweight`: learn the self-guidance affinity K with the transformer frozen.

Self-guidance decodes an edited position t from log p(x_t | context) +
lambda * K[G_t]. This trainer fits K (C x C, initialised to the codebook L2
energy of `decoding.guidance.l2_kernel`) so that, at lambda = 1, guided
predictions recover the true tokens: loss = cross-entropy of
softmax(logits + K[G]) against the truth on the guided positions. Guidance G:
- "samples": the model's own samples at masked positions (plausible but
  wrong guesses, as in the seed project);
- "strokes": codes of auto-stroked (inversion) training images, paired with
  the tokens of the real images (the edit situation itself).
The transformer's logits are computed once per batch and never
differentiated, so a step costs one forward pass.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from maskgit_edit import artefacts
from maskgit_edit import images as images_lib
from maskgit_edit import regions
from maskgit_edit import strokes as strokes_lib
from maskgit_edit import tokenizing
from maskgit_edit.decoding import guidance as guidance_lib
from maskgit_edit.decoding import schedules
from maskgit_edit.trainers import maskgit

GUIDE_SOURCES = ("samples", "strokes")


def stroke_pairs(
    tokenizer_workdir: str, num: int, seed: int, dilation: int = 0
):
  """Token pairs from inversion strokes on the first `num` training images.

  Returns:
    (guide tokens [N, h, w] of the stroked images, edited token mask
    [N, h, w]); the truth is the token cache's row of the same index.
  """
  tokenizer, params, run_config = artefacts.load_tokenizer(tokenizer_workdir)
  from maskgit_edit import data as data_lib  # pylint: disable=g-import-not-at-top

  source = data_lib.get_source(run_config.data, "train")
  images, _ = source.get(np.arange(min(num, len(source))))
  records = strokes_lib.make_strokes(
      images, strokes_per_image=1, modes=("inversion",), seed=seed
  )
  stroked = np.stack([r.stroke.stroke_image for r in records])
  masks = np.stack([r.stroke.mask for r in records])
  guides = tokenizing.Tokenizer(tokenizer, params, batch_size=256).tokenize_all(
      images_lib.to_float(stroked)
  )
  latent = guides.shape[1]
  return guides, regions.pixel_to_token_mask(masks, latent, dilation)


class ReweightTask(maskgit.MaskGitTask):
  """Trains K only; the base transformer run is frozen."""

  def __init__(self, config, *args, **kwargs):
    super().__init__(config, *args, **kwargs)
    if self.tokenizer_workdir is None:
      raise ValueError(
          "reweight needs the tokenizer run (its codebook and stroke pairs)."
      )
    if config.reweight.guide_source not in GUIDE_SOURCES:
      raise ValueError(
          f"Unknown reweight.guide_source "
          f"{config.reweight.guide_source!r}; expected one of "
          f"{GUIDE_SOURCES}."
      )
    tokenizer, tok_params, _ = artefacts.load_tokenizer(self.tokenizer_workdir)
    del tokenizer
    self.initial_kernel = guidance_lib.l2_kernel(
        tok_params["quantizer"]["codebook"]
    )
    if config.reweight.guide_source == "strokes":
      guides, edited = stroke_pairs(
          self.tokenizer_workdir, config.reweight.num_stroke_pairs, config.seed
      )
      n = len(guides)
      self.train_tokens, self.train_labels = (
          self.train_tokens[:n],
          self.train_labels[:n],
      )
      self.stroke_guides = guides.reshape(n, -1)
      self.stroke_edited = edited.reshape(n, -1)

  def initial_params(self):
    return artefacts.load_transformer(self.config.transformer_workdir)[1]

  def init_state(self, rng, params):
    """K at the codebook L2 energy; the frozen transformer rides along."""
    del rng
    kernel = jnp.asarray(self.initial_kernel)
    return {
        "kernel": kernel,
        "opt_state": self.optimizer.init(kernel),
        "frozen_params": params,
    }

  def examples(self, indices):
    batch = super().examples(indices)
    if self.config.reweight.guide_source == "strokes":
      batch["guides"] = self.stroke_guides[indices]
      batch["edited"] = self.stroke_edited[indices]
    return batch

  def _guides(self, frozen_params, batch, rng):
    """(guide tokens [B, N], guided positions [B, N], model logits)."""
    tokens_BxN, labels_B = batch["tokens"], batch["labels"]
    batch_size, length = tokens_BxN.shape
    if self.config.reweight.guide_source == "strokes":
      edited_BxN = batch["edited"]
    else:
      ratio_rng, mask_rng, rng = jax.random.split(rng, 3)
      ratio_B = schedules.mask_ratio(
          jax.random.uniform(ratio_rng, (batch_size,)),
          self.config.mvtm.schedule,
          length,
      )
      edited_BxN = maskgit.random_mask(mask_rng, batch_size, length, ratio_B)
    inputs = self.layout.inputs(tokens_BxN, labels_B, edited_BxN)
    logits_BxNxC = jax.lax.stop_gradient(self.logits(frozen_params, inputs))
    if self.config.reweight.guide_source == "strokes":
      guides_BxN = batch["guides"]
    else:
      guides_BxN = jax.random.categorical(rng, logits_BxNxC)
    return guides_BxN, edited_BxN, logits_BxNxC

  def train_step(self, state, batch, rng):
    guides_BxN, edited_BxN, logits_BxNxC = self._guides(
        state["frozen_params"], batch, rng
    )

    def loss_fn(kernel_CxC):
      guided = logits_BxNxC + kernel_CxC[guides_BxN]
      return maskgit.masked_cross_entropy(
          guided, batch["tokens"], edited_BxN, 0.0
      )

    (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state["kernel"]
    )
    updates, opt_state = self.optimizer.update(
        grads, state["opt_state"], state["kernel"]
    )
    kernel = optax.apply_updates(state["kernel"], updates)
    return (
        {**state, "kernel": kernel, "opt_state": opt_state},
        {
            "loss": loss,
            "guided_accuracy": accuracy,
            **self.kernel_drift(kernel),
        },
    )

  def kernel_drift(self, kernel_CxC):
    """How far K moved from its L2 initialisation."""
    delta = kernel_CxC - self.initial_kernel
    return {
        "kernel_rel_change": jnp.linalg.norm(delta)
        / jnp.linalg.norm(self.initial_kernel),
        "kernel_diag_mean": jnp.mean(jnp.diag(kernel_CxC)),
    }

  def evaluate(self, state):
    return {k: float(v) for k, v in self.kernel_drift(state["kernel"]).items()}

  def finish(self, state, workdir):
    artefacts.export_params(workdir, "kernel", {"kernel": state["kernel"]})
    return self.evaluate(state)


def make_task(config, workdir):
  del workdir
  return ReweightTask.from_runs(
      config, artefacts.load_run_config(config.transformer_workdir)
  )
