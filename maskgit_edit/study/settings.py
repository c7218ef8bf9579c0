"""Which (variant, knob) settings a study runs, and the grid's columns.

A setting is named by its guidance variant (`decoding.guidance.REGISTRY`),
or "<variant>@tuned" for a baseline decoded by the iterate-tuned
transformer.
"""

from collections.abc import Mapping, Sequence
import dataclasses

from maskgit_edit.decoding import guidance as guidance_lib

# `iterative` decodes with the iterate-tuned transformer, so the study also
# decodes its baselines with it: settings named "<variant>@tuned".
TUNED = "@tuned"
TUNED_BASELINES = ("none", "sdedit")


def decode_of(name: str) -> tuple[str, bool | None]:
  """A setting's name -> (guidance variant, `tuned` of `Editor.edit`)."""
  if name.endswith(TUNED):
    return name.removesuffix(TUNED), True
  return name, None


def knob_name(name: str) -> str:
  return guidance_lib.variant(decode_of(name)[0]).knob


def baselines_of(variant: str) -> tuple[str, str]:
  """The settings a variant's paired differences compare with: (the
  unguided decode, the token-SDEdit curve) of the same transformer. The
  tuned transformer's unguided decode compares with the base one's (the
  fine-tune's own effect)."""
  if variant == "none" + TUNED:
    return "none", ""
  tuned = variant == "iterative" or variant.endswith(TUNED)
  suffix = TUNED if tuned else ""
  return "none" + suffix, "sdedit" + suffix


INPUT_COLUMNS = ("source", "stroke")


@dataclasses.dataclass(frozen=True)
class Column:
  """A column of the comparison grid.

  Attributes:
    title: column title.
    variant: "source" or "stroke" (the inputs) or a guidance variant.
    knob: the display knob of the variant (ignored for inputs and "none").
  """

  title: str
  variant: str
  knob: float = 0.0


def comparison_columns() -> tuple[Column, ...]:
  """The grid's columns: the inputs, then each variant's display knobs."""
  return (
      Column("Source", "source"),
      Column("Stroke", "stroke"),
      *(
          Column(title, v.name, knob)
          for v in guidance_lib.REGISTRY.values()
          for title, knob in v.columns
      ),
  )


def select_variants(
    knobs: Mapping[str, Sequence[float]], runs: set[str]
) -> dict[str, tuple[float, ...]]:
  """Validates knob grids against the variants and the runs given.

  Args:
    knobs: variant -> knob values to run.
    runs: trainers whose runs are given ("reweight", "iterate").

  Returns:
    setting name -> knobs to run; with "iterative", its baselines decoded by
    its tuned transformer too (`TUNED`).

  Raises:
    ValueError: an unknown variant, a knob out of range, or a variant asked
      for without the run it needs (`guidance.check_runs`).
  """
  kept = {}
  for variant, values in knobs.items():
    if not values:
      raise ValueError(f"No knob values given for variant {variant!r}.")
    for knob in values:
      guidance_lib.validate(variant, float(knob))
    guidance_lib.check_runs(variant, runs)
    kept[variant] = tuple(float(k) for k in values)
  if "iterative" in kept:
    for variant in TUNED_BASELINES:
      if variant in kept:
        kept[variant + TUNED] = kept[variant]
  return kept


def plan(
    variants: Sequence[str] | None,
    knobs: Mapping[str, Sequence[float]],
    runs: set[str],
) -> tuple[dict[str, tuple[float, ...]], dict[str, str]]:
  """The settings a study runs, and the variants it skips.

  Args:
    variants: the variants asked for; None: every variant whose runs are
      given, and those `knobs` names.
    knobs: knob grids that replace the variants' `study_knobs`.
    runs: trainers whose runs are given ("reweight", "iterate").

  Returns:
    (setting name -> knobs, as `select_variants`; variant -> why it is
    skipped, only when `variants` is None).

  Raises:
    ValueError: as `select_variants`, or knobs for a variant left out.
  """
  chosen = list(variants or [])
  skipped = {}
  if variants is None:
    for v in guidance_lib.names():
      if v in knobs or not guidance_lib.missing_run(v, runs):
        chosen.append(v)
      else:
        needs = guidance_lib.variant(v).needs
        skipped[v] = f"needs --{needs}_workdir (not given)"
  unknown = sorted(set(knobs) - set(chosen))
  if unknown:
    raise ValueError(
        f"--knobs given for {unknown}, which --variants leaves out."
    )
  grids = {v: knobs.get(v, guidance_lib.variant(v).study_knobs) for v in chosen}
  return select_variants(grids, runs), skipped
