"""Masked visual token modelling (MVTM) trainer for the MaskGIT transformer.

Each example draws its own mask ratio gamma(r), r ~ U[0, 1), from the
training schedule (cosine by default); ceil(gamma * N) random tokens become
[MASK] and the loss is label-smoothed cross-entropy on those tokens only.
Trains on the token cache of a finished tokenizer run (`tokenizer_workdir`).

A fresh model can start from informed embeddings (`mvtm.init_words`,
`mvtm.init_positions`): code embeddings that keep the geometry of the
tokenizer's codebook, so codes of similar patches start out similar both as
inputs and as (tied) outputs, and 2-D sine-cosine positions, so grid
neighbours start out close. Both are only initial values of the released
parameters; on shapes they lift test accuracy after 1100 steps from 7% to 28%.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from maskgit_edit import artefacts
from maskgit_edit import data as data_lib
from maskgit_edit import images as images_lib
from maskgit_edit import models
from maskgit_edit.decoding import sampling
from maskgit_edit import tokenizing
from maskgit_edit.decoding import schedules
from maskgit_edit.models import transformer as transformer_lib
from maskgit_edit.trainers import loop

WORD_INITS = ("random", "codebook")
POSITION_INITS = ("random", "sincos2d")


def random_mask(rng, batch: int, length: int, ratio_B):
  """bool [B, L]: ceil(ratio * L) random positions per row (at least 1)."""
  num_B1 = jnp.clip(jnp.ceil(ratio_B * length), 1, length)[:, None]
  scores_BxL = jax.random.uniform(rng, (batch, length))
  ranks_BxL = jnp.argsort(jnp.argsort(scores_BxL, axis=-1), axis=-1)
  return ranks_BxL < num_B1


def codebook_embeddings(rng, codebook_KxD, hidden_size: int):
  """[K, H] code embeddings: the centred codebook through a random isometry.

  Distances between codes are kept up to one scale, set so entries have the
  standard deviation of the released random init.
  """
  if codebook_KxD.shape[1] > hidden_size:
    raise ValueError(
        f"Codebook dimension {codebook_KxD.shape[1]} exceeds the "
        f"transformer's hidden size {hidden_size}."
    )
  centred_KxD = codebook_KxD - jnp.mean(codebook_KxD, axis=0)
  isometry_HxD, _ = jnp.linalg.qr(
      jax.random.normal(rng, (hidden_size, codebook_KxD.shape[1]))
  )
  embeddings_KxH = centred_KxD @ isometry_HxD.T
  return embeddings_KxH * (
      transformer_lib.INIT_STDDEV / jnp.maximum(jnp.std(embeddings_KxH), 1e-12)
  )


def sincos2d_positions(
    side: int, hidden_size: int, max_timescale: float = 100.0
):
  """[side*side, H] row-major grid positions: sin/cos of y, then of x.

  Grid neighbours have larger dot products than distant positions, so
  attention can find neighbours from the first step. Scaled to the released init's standard deviation.
  """
  if hidden_size % 4:
    raise ValueError(
        f"sincos2d positions need hidden_size divisible by 4, "
        f"got {hidden_size}."
    )
  quarter = hidden_size // 4
  frequencies_F = max_timescale ** (-jnp.arange(quarter) / quarter)
  angles_SxF = jnp.arange(side)[:, None] * frequencies_F[None, :]
  axis_SxF2 = jnp.concatenate([jnp.sin(angles_SxF), jnp.cos(angles_SxF)], 1)
  y_S2 = jnp.repeat(jnp.arange(side), side)
  x_S2 = jnp.tile(jnp.arange(side), side)
  positions_S2xH = jnp.concatenate([axis_SxF2[y_S2], axis_SxF2[x_S2]], 1)
  return positions_S2xH * (
      transformer_lib.INIT_STDDEV / jnp.std(positions_S2xH)
  )


def informed_init(
    params,
    rng,
    layout: models.TokenLayout,
    codebook_KxD,
    init_words: str,
    init_positions: str,
):
  """Replaces the random code and/or grid-position embeddings of `params`."""
  embed = dict(params["Embed_0"])
  hidden_size = embed["word_embeddings"]["embedding"].shape[1]
  if init_words == "codebook":
    words_VxH = embed["word_embeddings"]["embedding"]
    embed["word_embeddings"] = {
        "embedding": words_VxH.at[: layout.codebook_size].set(
            codebook_embeddings(rng, codebook_KxD, hidden_size)
        )
    }
  if init_positions == "sincos2d":
    positions_LxH = embed["position_embeddings"]["embedding"]
    embed["position_embeddings"] = {
        "embedding": positions_LxH.at[layout.offset :].set(
            sincos2d_positions(layout.grid_side, hidden_size)
        )
    }
  return {**params, "Embed_0": embed}


def masked_cross_entropy(
    logits_BxNxC, tokens_BxN, mask_BxN, label_smoothing: float
):
  """Mean label-smoothed CE over masked positions, and their accuracy."""
  num_codes = logits_BxNxC.shape[-1]
  targets = optax.smooth_labels(
      jax.nn.one_hot(tokens_BxN, num_codes), label_smoothing
  )
  ce_BxN = optax.softmax_cross_entropy(logits_BxNxC, targets)
  weight_BxN = mask_BxN.astype(jnp.float32)
  denom = jnp.maximum(weight_BxN.sum(), 1.0)
  correct = (jnp.argmax(logits_BxNxC, -1) == tokens_BxN) * weight_BxN
  return jnp.sum(ce_BxN * weight_BxN) / denom, jnp.sum(correct) / denom


def masked_token_metrics(
    logits_fn,
    layout: models.TokenLayout,
    tokens_BxN,
    labels_B,
    seed: int = 1234,
):
  """Masked-token accuracy and NLL at exactly 50% masking.

  Args:
    logits_fn: inputs [B, L] -> code logits [B, N, C].
    layout: the transformer's token layout.
    tokens_BxN, labels_B: token grids (flattened) and their labels.
    seed: of the mask, so that every evaluation masks the same tokens.

  Returns:
    ({"masked_accuracy", "masked_nll"}, the bool mask [B, N] used).
  """
  num, length = np.shape(tokens_BxN)
  mask_BxN = random_mask(
      jax.random.key(seed), num, length, jnp.full((num,), 0.5)
  )
  inputs = layout.inputs(jnp.asarray(tokens_BxN), labels_B, mask_BxN)
  nll, accuracy = masked_cross_entropy(
      logits_fn(inputs), jnp.asarray(tokens_BxN), mask_BxN, 0.0
  )
  return (
      {"masked_accuracy": float(accuracy), "masked_nll": float(nll)},
      np.asarray(mask_BxN),
  )


@dataclasses.dataclass(frozen=True)
class TokenSplits:
  """Token grids (flattened, [N, h*w]) and labels [N] of the two splits."""

  train_tokens: np.ndarray
  train_labels: np.ndarray
  test_tokens: np.ndarray
  test_labels: np.ndarray

  @classmethod
  def from_tokenizer_run(cls, workdir: str) -> "TokenSplits":
    """The token cache of a finished tokenizer run."""
    splits = {}
    for split in ("train", "test"):
      tokens, labels = artefacts.load_token_cache(workdir, split)
      splits[f"{split}_tokens"] = tokens.reshape(len(tokens), -1)
      splits[f"{split}_labels"] = labels
    return cls(**splits)


class MaskGitTask:
  """`loop.Task` for MVTM training over token grids."""

  def __init__(
      self,
      config,
      model_config,
      layout: models.TokenLayout,
      tokens: TokenSplits,
      *,
      codebook_KxD=None,
      tokenizer_workdir: str | None = None,
  ):
    """Args:
    config: this run's config.
    model_config: the transformer's sizes (`model` of a run config).
    layout: its token layout.
    tokens: the token grids to train and evaluate on.
    codebook_KxD: the tokenizer's codebook (`mvtm.init_words="codebook"`).
    tokenizer_workdir: the tokenizer run that decodes the final sample
      grid (None: no grid).
    """
    self.config = config
    schedules.validate(config.mvtm.schedule)
    self.init_words = config.mvtm.get("init_words", "random")
    self.init_positions = config.mvtm.get("init_positions", "random")
    if self.init_words not in WORD_INITS:
      raise ValueError(
          f"Unknown mvtm.init_words {self.init_words!r}; "
          f"expected one of {WORD_INITS}."
      )
    if self.init_positions not in POSITION_INITS:
      raise ValueError(
          f"Unknown mvtm.init_positions {self.init_positions!r}; "
          f"expected one of {POSITION_INITS}."
      )
    if self.init_words == "codebook" and codebook_KxD is None:
      raise ValueError(
          "mvtm.init_words='codebook' needs the tokenizer's codebook."
      )
    self.layout = layout
    self.model = models.build_transformer(model_config, layout)
    self.tokenizer_workdir = tokenizer_workdir
    self.train_tokens, self.train_labels = (
        tokens.train_tokens,
        tokens.train_labels,
    )
    self.test_tokens, self.test_labels = tokens.test_tokens, tokens.test_labels
    if layout.class_conditional and (
        self.train_labels.max() >= layout.num_classes
    ):
      raise ValueError(
          f"Labels up to {self.train_labels.max()} but "
          f"num_classes={layout.num_classes}."
      )
    self.class_dropout = model_config.get("class_dropout", 0.0)
    self.codebook_KxD = codebook_KxD
    self.optimizer = loop.make_optimizer(config.optim, config.total_steps)
    self._eval_logits = jax.jit(self.logits)

  @classmethod
  def from_runs(cls, config, model_run_config=None, **kwargs):
    """The task of a run config: model and data from its tokenizer run.

    Args:
      config: this run's config.
      model_run_config: config holding `model` and `tokenizer_workdir`
        (default: `config`; fine-tuning trainers pass their base run's).
      **kwargs: passed on to the constructor (of a subclass).
    """
    model_run_config = model_run_config or config
    tokenizer_workdir = model_run_config.tokenizer_workdir
    codebook_KxD = None
    if config.mvtm.get("init_words", "random") == "codebook":
      tokenizer_params = artefacts.load_tokenizer(tokenizer_workdir)[1]
      codebook_KxD = np.asarray(tokenizer_params["quantizer"]["codebook"])
    return cls(
        config,
        model_run_config.model,
        artefacts.transformer_layout(model_run_config),
        TokenSplits.from_tokenizer_run(tokenizer_workdir),
        codebook_KxD=codebook_KxD,
        tokenizer_workdir=tokenizer_workdir,
        **kwargs,
    )

  def initial_params(self):
    """Params of the run named by `config.init_from` (None: fresh init)."""
    if not self.config.get("init_from"):
      return None
    return artefacts.load_transformer(self.config.init_from)[1]

  def init_state(self, rng, params=None):
    if params is None:
      dummy = jnp.zeros((1, self.layout.seq_len), jnp.int32)
      params = self.model.init(rng, dummy)["params"]
      params = informed_init(
          params,
          jax.random.fold_in(rng, 1),
          self.layout,
          self.codebook_KxD,
          self.init_words,
          self.init_positions,
      )
    return self.state_from_params(params)

  def state_from_params(self, params):
    state = {"params": params, "opt_state": self.optimizer.init(params)}
    if self.config.optim.ema_decay > 0:
      state["ema"] = params
    return state

  def apply_gradients(self, state, grads):
    updates, opt_state = self.optimizer.update(
        grads, state["opt_state"], state["params"]
    )
    params = optax.apply_updates(state["params"], updates)
    new_state = {**state, "params": params, "opt_state": opt_state}
    if "ema" in state:
      new_state["ema"] = loop.ema_update(
          state["ema"], params, self.config.optim.ema_decay
      )
    return new_state

  def batch(self, step):
    indices = data_lib.batch_indices(
        step, self.config.batch_size, len(self.train_tokens), self.config.seed
    )
    return self.examples(
        data_lib.process_slice(
            indices, jax.process_index(), jax.process_count()
        )
    )

  def examples(self, indices):
    return {
        "tokens": self.train_tokens[indices],
        "labels": self.train_labels[indices],
    }

  def logits(self, params, inputs_BxL, rng=None):
    """Code logits [B, N, C] of inputs [B, L]; dropout with an `rng`."""
    deterministic = rng is None
    logits = self.model.apply(
        {"params": params},
        inputs_BxL,
        deterministic=deterministic,
        rngs=None if deterministic else {"dropout": rng},
    )
    return self.layout.code_logits(logits)

  def train_step(self, state, batch, rng):
    tokens_BxN, labels_B = batch["tokens"], batch["labels"]
    batch_size, length = tokens_BxN.shape
    ratio_rng, mask_rng, dropout_rng = jax.random.split(rng, 3)
    if self.class_dropout:
      class_rng = jax.random.fold_in(rng, 1)
      labels_B = jnp.where(
          jax.random.bernoulli(class_rng, self.class_dropout, (batch_size,)),
          self.layout.null_label,
          labels_B,
      )
    ratio_B = schedules.mask_ratio(
        jax.random.uniform(ratio_rng, (batch_size,)),
        self.config.mvtm.schedule,
        length,
    )
    mask_BxN = random_mask(mask_rng, batch_size, length, ratio_B)
    inputs_BxL = self.layout.inputs(tokens_BxN, labels_B, mask_BxN)

    def loss_fn(params):
      logits = self.logits(params, inputs_BxL, dropout_rng)
      return masked_cross_entropy(
          logits, tokens_BxN, mask_BxN, self.config.mvtm.label_smoothing
      )

    (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state["params"]
    )
    return self.apply_gradients(state, grads), {
        "loss": loss,
        "masked_accuracy": accuracy,
        "grad_norm": optax.tree.norm(grads),
    }

  def _eval_params(self, state):
    return state.get("ema", state["params"])

  def evaluate(self, state):
    """Accuracy/NLL at exactly 50% masking on the test cache vs unigram."""
    num = min(self.config.num_eval, len(self.test_tokens))
    tokens_BxN, labels_B = self.test_tokens[:num], self.test_labels[:num]
    figures, mask_BxN = masked_token_metrics(
        lambda inputs: self._eval_logits(self._eval_params(state), inputs),
        self.layout,
        tokens_BxN,
        labels_B,
    )
    counts = np.bincount(
        self.train_tokens.ravel(), minlength=self.layout.codebook_size
    )
    probs = counts / counts.sum()
    test = tokens_BxN[mask_BxN]
    return {
        **{f"test_{k}": v for k, v in figures.items()},
        "unigram_accuracy": float(np.mean(test == counts.argmax())),
        "unigram_nll": float(-np.mean(np.log(probs[test] + 1e-12))),
    }

  def finish(self, state, workdir):
    params = self._eval_params(state)
    artefacts.export_params(workdir, "transformer", params)
    results = self.evaluate(state)
    if self.tokenizer_workdir:
      sample_png = save_sample_grid(
          self.config,
          self.tokenizer_workdir,
          self.model,
          self.layout,
          params,
          f"{workdir}/samples.png",
      )
      print(f"Wrote {sample_png}", flush=True)
    return results


def save_sample_grid(
    config, tokenizer_workdir, model, layout, params, path, rows: int = 4
):
  """Generates rows x 8 samples (one class per row when class-conditional)."""
  sampler = sampling.Sampler(
      model, layout, sampling.DecodeSettings.from_config(config.sample)
  )
  tokenizer = tokenizing.Tokenizer.from_workdir(tokenizer_workdir)
  grid = sampling.sample_grid(
      sampler,
      params,
      tokenizer.detokenize_all,
      jax.random.key(config.seed),
      8,
      rows,
  )
  if not artefacts.is_writer():
    return path
  return images_lib.save_png(
      grid,
      path,
      scale=max(1, 128 // (layout.grid_side * tokenizer.downsample_factor)),
  )


def make_task(config, workdir):
  del workdir
  return MaskGitTask.from_runs(config)
