"""VQ tokenizer trainer.

Loss = pixel MSE + codebook + commitment (+ entropy) losses, optionally a
non-saturating adversarial loss from a patch discriminator trained with an R1
penalty. Dead codes (running usage below a threshold) are restarted on random
encoder outputs of the batch. At the end the run exports its parameters and
tokenizes the dataset once into the token cache that transformer training
reads.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from maskgit_edit import artefacts
from maskgit_edit import batching
from maskgit_edit import data as data_lib
from maskgit_edit import images as images_lib
from maskgit_edit import metrics as metrics_lib
from maskgit_edit import models
from maskgit_edit.models.discriminator import PatchDiscriminator
from maskgit_edit.trainers import loop


def code_usage_stats(indices, codebook_size: int) -> dict:
  """Perplexity and share of codes used by a set of token indices."""
  counts = jnp.bincount(jnp.ravel(indices), length=codebook_size)
  probs = counts / jnp.maximum(counts.sum(), 1)
  entropy = -jnp.sum(jnp.where(probs > 0, probs * jnp.log(probs), 0.0))
  return {"perplexity": jnp.exp(entropy), "codes_used": jnp.mean(counts > 0)}


def flat_patch_codes(images_NxHxWx3, indices_Nxhxw) -> dict:
  """How many codes one flat patch gets: context noise in the tokens.

  Among the patches (one per token) whose pixels all have one colour, takes
  the commonest colour (black on Fashion-MNIST) and counts the distinct
  codes its patches get, and the share of them that get the commonest one.
  A tokenizer whose codes describe their patch gives 1 code and share 1.

  Returns:
    {"flat_patch_codes", "flat_patch_top_share"}; NaN without flat patches.
  """
  images = np.asarray(images_NxHxWx3)
  indices = np.asarray(indices_Nxhxw)
  n, h, w = indices.shape
  p = images.shape[1] // h
  patches_MxPx3 = (
      images.reshape(n, h, p, w, p, -1)
      .transpose(0, 1, 3, 2, 4, 5)
      .reshape(n * h * w, p * p, -1)
  )
  flat_M = (patches_MxPx3 == patches_MxPx3[:, :1]).all(axis=(1, 2))
  if not flat_M.any():
    return {
        "flat_patch_codes": float("nan"),
        "flat_patch_top_share": float("nan"),
    }
  colours_Fx3 = patches_MxPx3[flat_M, 0]
  unique_colours, inverse, counts = np.unique(
      colours_Fx3, axis=0, return_inverse=True, return_counts=True
  )
  commonest = inverse.reshape(-1) == np.argmax(counts)
  _, code_counts = np.unique(
      indices.reshape(-1)[flat_M][commonest], return_counts=True
  )
  return {
      "flat_patch_codes": float(len(code_counts)),
      "flat_patch_top_share": float(code_counts.max() / code_counts.sum()),
  }


def psnr_per_image(a_BxHxWx3, b_BxHxWx3):
  mse_B = jnp.mean((a_BxHxWx3 - b_BxHxWx3) ** 2, axis=(1, 2, 3))
  return -10.0 * jnp.log10(jnp.maximum(mse_B, 1e-10))


class TokenizerTask:
  """`loop.Task` for the VQ tokenizer."""

  def __init__(self, config):
    self.config = config
    self.model = models.build_tokenizer(config.tokenizer)
    self.train_source = data_lib.get_source(config.data, "train")
    self.test_source = data_lib.get_source(config.data, "test")
    self.image_size = config.data.image_size
    self.optimizer = loop.make_optimizer(config.optim, config.total_steps)
    adv = config.tokenizer.adversarial
    self.adversarial = adv.weight > 0
    if self.adversarial:
      self.discriminator = PatchDiscriminator(adv.filters, adv.num_layers)
      self.disc_optimizer = optax.adam(adv.lr, b1=0.5, b2=0.9)
    self._eval_fn = jax.jit(self.reconstruct)
    self._tokenize_fn = jax.jit(
        lambda params, images: self.model.apply(
            {"params": params}, images, method=self.model.tokenize
        )
    )

  # --- state ---------------------------------------------------------------
  def initial_params(self):
    return None

  def init_state(self, rng, params=None):
    del params  # the tokenizer always starts fresh
    size = self.image_size
    dummy = jnp.zeros((1, size, size, 3), jnp.float32)
    params = self.model.init(rng, dummy)["params"]
    state = {
        "step": jnp.zeros((), jnp.int32),
        "params": params,
        "opt_state": self.optimizer.init(params),
        "usage": jnp.full(
            (self.config.tokenizer.codebook_size,),
            1.0 / self.config.tokenizer.codebook_size,
        ),
    }
    if self.config.optim.ema_decay > 0:
      state["ema"] = params
    if self.adversarial:
      disc = self.discriminator.init(jax.random.fold_in(rng, 1), dummy)
      state["disc_params"] = disc["params"]
      state["disc_opt_state"] = self.disc_optimizer.init(disc["params"])
    return state

  def batch(self, step):
    indices = data_lib.batch_indices(
        step, self.config.batch_size, len(self.train_source), self.config.seed
    )
    indices = data_lib.process_slice(
        indices, jax.process_index(), jax.process_count()
    )
    images, _ = self.train_source.get(indices)
    return {"images": images_lib.to_float(images)}

  # --- step ----------------------------------------------------------------
  def _generator_loss(self, params, disc_params, images, use_adv):
    recon, aux = self.model.apply({"params": params}, images, train=True)
    mse = jnp.mean((recon - images) ** 2)
    loss = mse + aux["quantizer_loss"]
    if self.adversarial:
      logits = self.discriminator.apply({"params": disc_params}, recon)
      g_loss = jnp.mean(jax.nn.softplus(-logits))
      loss = loss + use_adv * self.config.tokenizer.adversarial.weight * g_loss
    return loss, (mse, aux, recon)

  def _disc_loss(self, disc_params, images, recon):
    adv = self.config.tokenizer.adversarial

    def real_logits_sum(x):
      return jnp.sum(self.discriminator.apply({"params": disc_params}, x))

    real = self.discriminator.apply({"params": disc_params}, images)
    fake = self.discriminator.apply(
        {"params": disc_params}, jax.lax.stop_gradient(recon)
    )
    grad_real = jax.grad(real_logits_sum)(images)
    r1 = jnp.mean(jnp.sum(grad_real**2, axis=(1, 2, 3)))
    return (
        jnp.mean(jax.nn.softplus(-real))
        + jnp.mean(jax.nn.softplus(fake))
        + 0.5 * adv.r1_gamma * r1
    )

  def _restart_dead_codes(self, params, usage_C, encoded_NxD, rng):
    """Moves codes whose running usage is below threshold onto data."""
    tok = self.config.tokenizer
    codebook_CxD = params["quantizer"]["codebook"]
    dead_C = usage_C < tok.dead_code_threshold / tok.codebook_size
    picks_C = jax.random.randint(
        rng, (tok.codebook_size,), 0, encoded_NxD.shape[0]
    )
    new_CxD = jnp.where(dead_C[:, None], encoded_NxD[picks_C], codebook_CxD)
    usage_C = jnp.where(dead_C, 1.0 / tok.codebook_size, usage_C)
    params = {
        **params,
        "quantizer": {**params["quantizer"], "codebook": new_CxD},
    }
    return params, usage_C, jnp.sum(dead_C)

  def train_step(self, state, batch, rng):
    cfg, tok = self.config, self.config.tokenizer
    images = batch["images"]
    step = state["step"]
    use_adv = (step >= tok.adversarial.start_step).astype(jnp.float32)
    grad_fn = jax.value_and_grad(self._generator_loss, has_aux=True)
    (loss, (mse, aux, recon)), grads = grad_fn(
        state["params"], state.get("disc_params"), images, use_adv
    )
    updates, opt_state = self.optimizer.update(
        grads, state["opt_state"], state["params"]
    )
    params = optax.apply_updates(state["params"], updates)

    counts_C = jnp.bincount(aux["indices"].ravel(), length=tok.codebook_size)
    usage_C = (
        tok.usage_decay * state["usage"]
        + (1 - tok.usage_decay) * counts_C / counts_C.sum()
    )
    restart = (
        (tok.dead_code_every > 0)
        & (step > 0)
        & (step % max(tok.dead_code_every, 1) == 0)
    )
    encoded_NxD = aux["encoded"].reshape(-1, aux["encoded"].shape[-1])
    restarted = self._restart_dead_codes(params, usage_C, encoded_NxD, rng)
    params, usage_C, num_dead = jax.tree.map(
        lambda a, b: jnp.where(restart, a, b),
        restarted,
        (params, usage_C, jnp.zeros((), jnp.int32)),
    )

    new_state = {
        **state,
        "step": step + 1,
        "params": params,
        "opt_state": opt_state,
        "usage": usage_C,
    }
    if "ema" in state:
      new_state["ema"] = loop.ema_update(
          state["ema"], params, cfg.optim.ema_decay
      )
    metrics = {
        "loss": loss,
        "mse": mse,
        "psnr": jnp.mean(psnr_per_image(recon, images)),
        "quantizer_loss": aux["quantizer_loss"],
        "codes_restarted": num_dead.astype(jnp.float32),
        **code_usage_stats(aux["indices"], tok.codebook_size),
    }
    if self.adversarial:
      d_loss, d_grads = jax.value_and_grad(self._disc_loss)(
          state["disc_params"], images, recon
      )
      d_updates, d_opt = self.disc_optimizer.update(
          d_grads, state["disc_opt_state"], state["disc_params"]
      )
      new_state["disc_params"] = optax.apply_updates(
          state["disc_params"], d_updates
      )
      new_state["disc_opt_state"] = d_opt
      metrics["disc_loss"] = d_loss
    return new_state, metrics

  # --- eval / export -------------------------------------------------------
  def reconstruct(self, params, images):
    """(reconstructions, code indices) of images [B, H, W, 3]."""
    recon, aux = self.model.apply({"params": params}, images)
    return recon, aux["indices"]

  def _eval_params(self, state):
    return state.get("ema", state["params"])

  def reconstruct_split(self, params, source, num, decode=True):
    """(PSNR figures, indices [num, h, w], labels [num]) of the first `num`.

    The figures: mean per-image PSNR, and PSNR pooled over edge pixels and
    over the other (flat) pixels (`metrics.edge_mask`). decode=False only
    tokenizes, about half the work, and gives no figures.
    """
    psnrs, indices, labels = [], [], []
    sse_and_count = {"edges": np.zeros(2), "flat": np.zeros(2)}
    size = self.config.eval_batch_size
    # Fixed-size batches (the last one padded) compile once.
    for start, idx in zip(
        range(0, num, size), batching.padded_batches(num, size)
    ):
      images, y = source.get(idx)
      images = images_lib.to_float(images)
      valid = min(size, num - start)
      if decode:
        recon, ind = self._eval_fn(params, images)
        images, recon = images[:valid], np.asarray(recon)[:valid]
        psnrs.append(np.asarray(psnr_per_image(recon, images)))
        squared_error_NxHxW = np.sum((recon - images) ** 2, axis=-1)
        edges_NxHxW = metrics_lib.edge_mask(images)
        for region, pixels in (("edges", edges_NxHxW), ("flat", ~edges_NxHxW)):
          sse_and_count[region] += (
              squared_error_NxHxW[pixels].sum(),
              images.shape[-1] * pixels.sum(),
          )
      else:
        ind = self._tokenize_fn(params, images)
      indices.append(np.asarray(ind)[:valid])
      labels.append(y[:valid])
    figures = {}
    if decode:
      figures["psnr"] = float(np.concatenate(psnrs).mean())
      for region, (sse, count) in sse_and_count.items():
        if count:
          figures[f"psnr_{region}"] = float(-10 * np.log10(sse / count))
    return figures, np.concatenate(indices), np.concatenate(labels)

  def evaluate(self, state):
    num = min(self.config.num_eval, len(self.test_source))
    figures, indices, _ = self.reconstruct_split(
        self._eval_params(state), self.test_source, num
    )
    usage = code_usage_stats(indices, self.config.tokenizer.codebook_size)
    images, _ = self.test_source.get(np.arange(num))
    return {
        **{f"test_{k}": v for k, v in figures.items()},
        "test_perplexity": float(usage["perplexity"]),
        "test_codes_used": float(usage["codes_used"]),
        **{
            f"test_{k}": v for k, v in flat_patch_codes(images, indices).items()
        },
    }

  def finish(self, state, workdir):
    params = self._eval_params(state)
    artefacts.export_params(workdir, "tokenizer", params)
    results = {}
    # Training PSNR is logged during training; decoding 20k images for it
    # would double the time of this export.
    for split, source in (
        ("train", self.train_source),
        ("test", self.test_source),
    ):
      figures, indices, labels = self.reconstruct_split(
          params, source, len(source), decode=split == "test"
      )
      artefacts.save_token_cache(workdir, split, indices, labels)
      message = f"Tokenized {len(source)} {split} images"
      if figures:
        results[f"{split}_psnr_all"] = figures["psnr"]
        message += f" (PSNR {figures['psnr']:.2f} dB)"
      print(message, flush=True)
    results.update(self.evaluate(state))
    images, _ = self.test_source.get(
        np.minimum(
            np.arange(self.config.eval_batch_size), len(self.test_source) - 1
        )
    )
    images = images_lib.to_float(images)
    recon, _ = self._eval_fn(params, images)
    pairs = np.stack([images, np.clip(np.asarray(recon), 0, 1)], 1)[:16]
    if artefacts.is_writer():
      images_lib.save_png(
          images_lib.grid(pairs.reshape(-1, *images.shape[1:]), 8),
          f"{workdir}/reconstructions.png",
          scale=max(1, 128 // self.image_size),
      )
    return results


def make_task(config, workdir):
  del workdir
  return TokenizerTask(config)
