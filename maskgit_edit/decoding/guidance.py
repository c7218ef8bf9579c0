"""Guided editing variants: a name + one knob -> `parallel_decode.Guidance`.

G = tokenizer codes of the stroked image on the edited token positions E.
Every variant is the same decode loop with different `Guidance` fields, and
knob 0 reproduces the unguided baseline exactly (same rng => same output;
sdedit: strength 1). `REGISTRY` holds one `Variant` record per variant: its
knob, the study's grid, the grid's columns, the page's slider, the runs it
needs and the `Guidance` fields it sets. The editor, the study, the page and
the CLIs read it, so a new variant is a record in `REGISTRY` plus, if it
needs one, a new field of the decode loop; `markdown_table` is the README's
table of variants.
"""

from collections.abc import Callable
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_edit.decoding import schedules
from maskgit_edit.decoding.parallel_decode import Guidance

# fields(knob_B, edited_Bxhxw, rng, schedule) -> the `Guidance` fields the
# variant sets (every other knob field is 0, keep_guide_BxL all False).
FieldsFn = Callable[..., dict[str, jax.Array]]


@dataclasses.dataclass(frozen=True)
class Variant:
  """Everything about one editing variant.

  Attributes:
    name: its name (`--variant`, results, the page).
    knob: the knob's name ("-" when the knob is ignored).
    knob_max: the knob's upper bound (None: any value >= 0).
    meaning: what the knob does (the README's table).
    fields: the `Guidance` fields it sets (see `FieldsFn`).
    study_knobs: the knob grid of a full editing study.
    columns: (title, knob) of its columns in the comparison grid.
    slider: (low, high, default) of the edit page's knob slider: the range
      of a bounded knob, else the span the study covers.
    kernel: the self-guidance kernel it uses: "fixed", "learned" or None.
    needs: the trainer whose run it needs ("reweight", "iterate") or None.
    tuned: decodes with the `iterate`-tuned transformer by default.
  """

  name: str
  knob: str
  knob_max: float | None
  meaning: str
  fields: FieldsFn
  study_knobs: tuple[float, ...]
  columns: tuple[tuple[str, float], ...]
  slider: tuple[float, float, float]
  kernel: str | None = None
  needs: str | None = None
  tuned: bool = False

  @property
  def knob_range(self) -> str:
    if self.knob == "-":
      return "-"
    return ">= 0" if self.knob_max is None else f"[0, {self.knob_max:g}]"


def _sdedit_fields(knob_B, edited_Bxhxw, rng, schedule):
  if rng is None or schedule is None:
    raise ValueError(
        "Variant 'sdedit' needs an rng for the positions it "
        "re-masks and the decode's schedule."
    )
  batch = edited_Bxhxw.shape[0]
  keep_BxN = sdedit_keep(rng, knob_B, edited_Bxhxw.reshape(batch, -1), schedule)
  return {"keep_guide_BxL": keep_BxN.reshape(edited_Bxhxw.shape)}


def _sets(field: str) -> FieldsFn:
  """Fields of a variant whose knob is one `Guidance` field."""
  return lambda knob_B, *_: {field: knob_B}


_FRACTIONS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
REGISTRY: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "none",
            "-",
            None,
            "inpaint E without guidance",
            lambda *_: {},
            study_knobs=(0.0,),
            columns=(("No guide", 0.0),),
            slider=(0.0, 0.0, 0.0),
        ),
        Variant(
            "sdedit",
            "strength",
            1.0,
            "token SDEdit, the baseline a user would pick: E starts as G,"
            " the share gamma(1 - strength) of E given by the mask schedule"
            " (random positions, nested across strengths) is re-masked and"
            " decoded; 0 keeps G, 1 is `none`",
            _sdedit_fields,
            # Fine everywhere: every other setting is matched on this curve.
            study_knobs=tuple(np.round(np.linspace(0.0, 1.0, 21), 2).tolist()),
            columns=(("Token SDEdit", 0.5),),
            slider=(0.0, 1.0, 0.5),
        ),
        Variant(
            "context",
            "rho",
            1.0,
            "for the first rho share of the steps, unknown positions show G"
            " to the model instead of [MASK]",
            _sets("context_until_B"),
            study_knobs=_FRACTIONS,
            columns=(("Context", 0.6),),
            slider=(0.0, 1.0, 0.5),
        ),
        Variant(
            "self_fixed",
            "lambda",
            None,
            "add lambda * K[G] to the logits on E before sampling and"
            " confidence; K = identity or -‖c_i − c_j‖²/tau (tau = mean"
            " squared code distance)",
            _sets("self_weight_B"),
            study_knobs=(0.0, 0.5, 1.0, 2.0, 4.0, 8.0),
            columns=(("Self: fixed", 2.0),),
            slider=(0.0, 8.0, 2.0),
            kernel="fixed",
        ),
        Variant(
            "self_learned",
            "lambda",
            None,
            "same with the K trained by `reweight` (lambda = 1 is its"
            " training calibration; large = full confidence)",
            _sets("self_weight_B"),
            study_knobs=(0.0, 0.5, 1.0, 2.0, 4.0, 1000.0),
            # Its trained operating point, and full confidence.
            columns=(
                ("Self: learned", 1.0),
                ("Self: learned, full confidence", 1000.0),
            ),
            slider=(0.0, 8.0, 1.0),
            kernel="learned",
            needs="reweight",
        ),
        Variant(
            "iterative",
            "scale",
            None,
            "transformer (tuned by `iterate`) adds scale * embedding(G) at"
            " [MASK] positions; `iterate` shows the true token as G with"
            " probability scale / `iterate.max_scale` (2 in"
            " `configs/iterate.py`), so the scale is how far to trust G;"
            " scale 0 is the tuned model unguided, not the base model",
            _sets("reembed_scale_B"),
            study_knobs=(0.0, 0.4, 0.8, 1.2, 1.6, 2.0),
            columns=(("Iterative tuning", 1.2),),
            slider=(0.0, 2.0, 1.0),
            needs="iterate",
            tuned=True,
        ),
        Variant(
            "zero_shot",
            "strength",
            1.0,
            "for the first strength share of the steps, E proposes G,"
            " scored by its log-probability in context; plausible stroke"
            " tokens are kept, the least likely are re-sampled; 1 keeps G, 0"
            " is the baseline",
            _sets("propose_until_B"),
            study_knobs=_FRACTIONS,
            columns=(("Zero-shot", 0.6),),
            slider=(0.0, 1.0, 0.5),
        ),
    )
}


def names() -> tuple[str, ...]:
  """The registered variants' names, in registration order."""
  return tuple(REGISTRY)


def variant(name: str) -> Variant:
  """The record of variant `name` (a ValueError naming the known ones)."""
  if name not in REGISTRY:
    raise ValueError(
        f"Unknown variant {name!r}; expected one of {', '.join(REGISTRY)}."
    )
  return REGISTRY[name]


def missing_run(name: str, available: set[str]) -> str | None:
  """The trainer whose run variant `name` needs and `available` (trainer
  names of the runs at hand) lacks, or None."""
  needs = variant(name).needs
  return needs if needs and needs not in available else None


def check_runs(name: str, available: set[str]) -> None:
  """Raises the one error every tool gives for a variant without its run."""
  trainer = missing_run(name, available)
  if trainer:
    raise ValueError(
        f"Variant {name!r} needs a run of the {trainer} trainer"
        f" (configs/{trainer}.py): give its folder as {trainer}_workdir."
    )


def markdown_table() -> str:
  """The variants as a markdown table (the README's)."""
  rows = [
      f"| `{v.name}` | {v.knob.replace('-', '–')} |"
      f" {v.knob_range.replace('-', '–')} | {v.meaning} |"
      for v in REGISTRY.values()
  ]
  return "\n".join(
      ["| variant | knob | range | meaning |", "|---|---|---|---|", *rows]
  )


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


def validate(name: str, knob: float) -> None:
  """Raises a ValueError naming the problem with variant `name` at `knob`."""
  spec = variant(name)
  if not np.isfinite(knob) or knob < 0:
    raise ValueError(f"Knob of {name!r} must be finite and >= 0, got {knob}.")
  if spec.knob_max is not None and knob > spec.knob_max:
    raise ValueError(
        f"Knob of {name!r} is a fraction in [0, {spec.knob_max:g}], got {knob}."
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
    variant: a registered variant's name.
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
  edited_Bxhxw = jnp.asarray(edited_Bxhxw, bool)
  fields = dict(
      self_weight_B=zeros_B,
      context_until_B=zeros_B,
      reembed_scale_B=zeros_B,
      propose_until_B=zeros_B,
      keep_guide_BxL=jnp.zeros_like(edited_Bxhxw),
  )
  fields.update(
      REGISTRY[variant].fields(jnp.asarray(knob_B), edited_Bxhxw, rng, schedule)
  )
  return Guidance(
      guide_ids_BxL=jnp.where(
          edited_Bxhxw, jnp.asarray(guide_ids_Bxhxw, jnp.int32), -1
      ),
      kernel_CxC=jnp.asarray(kernel_CxC, jnp.float32),
      **fields,
  )
