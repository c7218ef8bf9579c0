"""A setting's saved outputs, resuming, and the identity of a study folder.

`<out_dir>/edits/<variant>/knob_<knob:g>.npz` is written last, atomically:
a setting whose .npz exists is complete and is skipped when the study
resumes. Beside it, one PNG per stroke in `<out_dir>/edits/<variant>/
knob_<knob:g>/<id>.png`. npz fields: images (composited) and decoded
(tokenizer output before compositing) uint8 [N, H, W, 3], tokens int32
[N, h, w], edited bool [N, h, w], ids str [N], seed, batch_size, version.
`<out_dir>/run.json` records which strokes, models and edit settings the
folder holds edits of.
"""

from collections.abc import Mapping
import json
import os
from typing import Any

import numpy as np

from maskgit_edit import files
from maskgit_edit import images as images_lib
from maskgit_edit.study import stroke_sets as stroke_sets_lib

# Bumped when the decode of a setting changes meaning (knob semantics, the
# sampler), so that resuming never mixes outputs of two versions.
OUTPUTS_VERSION = 3
RUN_NAME = "run.json"


def output_path(out_dir: str | os.PathLike, variant: str, knob: float) -> str:
  return os.path.join(out_dir, "edits", variant, f"knob_{knob:g}.npz")


def png_dir(npz_path: str) -> str:
  return npz_path.removesuffix(".npz")


def save_outputs(
    path: str,
    outputs: Mapping[str, np.ndarray],
    stroke_set: stroke_sets_lib.StrokeSet,
    *,
    seed: int,
    batch_size: int,
) -> None:
  """Writes the PNGs, then the .npz atomically (its presence = complete)."""
  pngs = png_dir(path)
  os.makedirs(pngs, exist_ok=True)
  for stroke_id, image in zip(stroke_set.ids, outputs["images"]):
    images_lib.save_png(
        images_lib.to_float(image), os.path.join(pngs, f"{stroke_id}.png")
    )
  with files.atomic_path(path) as tmp:
    np.savez(
        tmp,
        **outputs,
        ids=np.array(stroke_set.ids),
        seed=seed,
        batch_size=batch_size,
        version=OUTPUTS_VERSION,
    )


def claim_out_dir(
    out_dir: str,
    identity: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
) -> None:
  """Records which strokes, models and edit settings `out_dir` holds edits
  of, or raises ValueError naming both when it holds another run's (whose
  outputs would otherwise be resumed as this run's). `defaults`: identity
  fields a record written before they existed stands for (see
  `files.differing_keys`)."""
  path = os.path.join(out_dir, RUN_NAME)
  identity = json.loads(json.dumps(identity))  # Tuples as lists.
  differ = files.differing_keys(path, identity, defaults)
  if differ:
    key = differ[0]
    found = files.read_json(path, "Run record")
    raise ValueError(
        f"{out_dir} holds edits of another run: its {key} is "
        f"{found.get(key)!r}, this run's {identity.get(key)!r}. Use "
        "another --out_dir."
    )
  if differ is not None:
    return
  os.makedirs(out_dir, exist_ok=True)
  with files.atomic_path(path) as tmp, open(tmp, "w") as f:
    json.dump(identity, f, indent=1)


def check_outputs(
    path: str,
    stroke_set: stroke_sets_lib.StrokeSet,
    *,
    seed: int,
    batch_size: int,
) -> None:
  """Raises ValueError unless a setting's .npz belongs to this run.

  Reads only the small fields (npz members load lazily).
  """
  with np.load(path) as f:
    found = (tuple(f["ids"].tolist()), int(f["seed"]), int(f["batch_size"]))
    version = int(f["version"]) if "version" in f.files else 1
  if version != OUTPUTS_VERSION:
    raise ValueError(
        f"{path} holds outputs of an older decode (version {version}, now "
        f"{OUTPUTS_VERSION}). Use another out_dir or delete the stale "
        "outputs."
    )
  if found != (stroke_set.ids, seed, batch_size):
    raise ValueError(
        f"{path} holds outputs of another run ({len(found[0])} strokes, seed "
        f"{found[1]}, batch size {found[2]}; this run: {len(stroke_set)} "
        f"strokes, seed {seed}, batch size {batch_size}, or different ids). "
        "Use another out_dir or delete the stale outputs."
    )


def load_outputs(
    path: str,
    stroke_set: stroke_sets_lib.StrokeSet,
    *,
    seed: int,
    batch_size: int,
) -> dict[str, np.ndarray]:
  """A setting's outputs (see the module doc), checked to be this run's."""
  check_outputs(path, stroke_set, seed=seed, batch_size=batch_size)
  with np.load(path) as f:
    return {name: f[name] for name in ("images", "decoded", "tokens", "edited")}
