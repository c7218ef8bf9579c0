"""Judge trainer: a CNN classifier of real images, the feature extractor of
judge-FID / judge-KID / realism scores (`judging.py`).

Cross-entropy on the dataset's labels, on the real train split only, plus
(when `judge.map_classes` > 0 and the source has `kind_maps`, as `shapes`
does) a per-cell cross-entropy on what covers each cell of a coarse grid:
dense supervision that teaches the features what shapes look like locally,
where the label alone (the largest object's shape) left a small CNN at
chance for 1500 steps. The run exports `judge_params.msgpack` and its test
accuracy, the reference for the class accuracy of generated samples.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from maskgit_edit import artefacts
from maskgit_edit import data as data_lib
from maskgit_edit import images as images_lib
from maskgit_edit import judging
from maskgit_edit.models import judge as judge_lib
from maskgit_edit.trainers import loop


class JudgeTask:
  """`loop.Task` for the judge."""

  def __init__(self, config):
    self.config = config
    self.train_source = data_lib.get_source(config.data, "train")
    self.test_source = data_lib.get_source(config.data, "test")
    if self.train_source.num_classes < 2:
      raise ValueError(
          f"The judge needs a labelled dataset; "
          f"{config.data.name!r} has no labels."
      )
    self.model = judge_lib.build_judge(
        config.judge, self.train_source.num_classes
    )
    self.map_side = 0
    if self.model.map_classes:
      if not hasattr(self.train_source, "kind_maps"):
        raise ValueError(
            f"judge.map_classes > 0 needs a source with cell "
            f"maps; {config.data.name!r} has none."
        )
      self.map_side = judge_lib.map_side(
          config.data.image_size, self.model.widths, self.model.patch_size
      )
    if self.map_side and config.judge.get("flip", False):
      raise ValueError("judge.flip would mirror images but not their maps.")
    self.optimizer = loop.make_optimizer(config.optim, config.total_steps)

  def initial_params(self):
    return None

  def init_state(self, rng, params=None):
    del params  # The judge always starts fresh.
    size = self.config.data.image_size
    params = self.model.init(rng, jnp.zeros((1, size, size, 3)))["params"]
    return {"params": params, "opt_state": self.optimizer.init(params)}

  def batch(self, step):
    indices = data_lib.batch_indices(
        step, self.config.batch_size, len(self.train_source), self.config.seed
    )
    indices = data_lib.process_slice(
        indices, jax.process_index(), jax.process_count()
    )
    images, labels = self.train_source.get(indices)
    batch = {"images": images_lib.to_float(images), "labels": labels}
    if self.map_side:
      batch["maps"] = self.train_source.kind_maps(indices, self.map_side)
    return batch

  def train_step(self, state, batch, rng):
    images_BxHxWx3 = batch["images"]
    if self.config.judge.get("flip", False):
      # Mirrored garments are garments of the same class.
      flip_B = jax.random.bernoulli(rng, 0.5, images_BxHxWx3.shape[:1])
      images_BxHxWx3 = jnp.where(
          flip_B[:, None, None, None],
          images_BxHxWx3[:, :, ::-1],
          images_BxHxWx3,
      )

    def loss_fn(params):
      logits_BxK, maps_BxhxwxM = self.model.apply(
          {"params": params}, images_BxHxWx3, method=self.model.logits_and_maps
      )
      loss = optax.softmax_cross_entropy_with_integer_labels(
          logits_BxK, batch["labels"]
      ).mean()
      metrics = {
          "accuracy": jnp.mean(jnp.argmax(logits_BxK, -1) == batch["labels"])
      }
      if self.map_side:
        map_loss = optax.softmax_cross_entropy_with_integer_labels(
            maps_BxhxwxM, batch["maps"]
        ).mean()
        loss += self.config.judge.map_weight * map_loss
        metrics["map_loss"] = map_loss
      return loss, metrics

    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state["params"]
    )
    updates, opt_state = self.optimizer.update(
        grads, state["opt_state"], state["params"]
    )
    return (
        {
            "params": optax.apply_updates(state["params"], updates),
            "opt_state": opt_state,
        },
        {"loss": loss, **metrics},
    )

  def evaluate(self, state):
    """Accuracy on the whole test split."""
    images, labels = self.test_source.get(np.arange(len(self.test_source)))
    judge = judging.Judge(
        self.model,
        state["params"],
        self.config,
        batch_size=self.config.eval_batch_size,
    )
    return {"test_accuracy": float(np.mean(judge.labels(images) == labels))}

  def finish(self, state, workdir):
    artefacts.export_params(workdir, "judge", state["params"])
    return self.evaluate(state)


def make_task(config, workdir):
  del workdir
  return JudgeTask(config)
