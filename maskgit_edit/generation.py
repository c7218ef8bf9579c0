"""Sample grids and inpainting / outpainting / relabelling grids of a run
(`scripts/generate.py`).

Writes PNG grids to a folder:
  samples.png   generation from an all-[MASK] grid (`Sampler.generate`): one
                row per class for a class-conditional model (else `num_rows`
                rows), `per_row` samples each.
  inpaint.png   the centre box (side `box_fraction` of the image) regenerated.
  outpaint.png  the centre box kept and the border regenerated
                (`regions.outpaint_mask`).
  relabel.png   class-conditional models only: the centre box regenerated
                under another label (`new_label`, default the next class).
Edits use `edit.Editor` (variant "none") on the first `num_images` images of
the tokenizer run's held-out (test) split; each row is one image, with columns
source | masked input (edited pixels grey) | one result per seed. Result
column j uses the key fold_in(key(seed), j) in every edit grid, so columns are
paired across tasks. The Editor's `DecodeSettings` decode;
its `start_iter` applies to edits only, since generation has no context to skip
the first steps with. Small images are enlarged by pixel repetition (`scale`).
"""

import dataclasses
import os

import jax
import numpy as np

from maskgit_edit import artefacts
from maskgit_edit import data as data_lib
from maskgit_edit import edit as edit_lib
from maskgit_edit import images as images_lib
from maskgit_edit import regions
from maskgit_edit.decoding import sampling

# Grey that marks the pixels to regenerate in the "masked input" column.
MASK_GREY = 0.5


def sample_grid(
    editor: edit_lib.Editor,
    settings: sampling.DecodeSettings,
    rng,
    per_row: int,
    num_rows: int,
) -> np.ndarray:
  """Generated images tiled per_row wide; one row per class if conditional.

  Returns:
    float32 [H', W', 3] grid in [0, 1].
  """
  layout = editor.layout
  if layout.class_conditional:
    num_rows = layout.num_classes
  generation = dataclasses.replace(settings, start_iter=0)
  sampler = sampling.Sampler(editor.sampler.model, layout, generation)
  return sampling.sample_grid(
      sampler, editor.params, editor.detokenize, rng, per_row, num_rows
  )


def edit_tasks(
    image_size: int,
    box_fraction: float,
    labels_N: np.ndarray,
    num_classes: int,
    new_label: int | None,
) -> dict:
  """Edit masks and labels by task name.

  Args:
    image_size: side H of the images.
    box_fraction: side of the centre box as a fraction of H.
    labels_N: true labels of the images.
    num_classes: classes of a class-conditional model, 0 if unconditional.
    new_label: the label of "relabel" (None: each image's next class).

  Returns:
    {name: (mask_HxW bool, labels_N)}; "relabel" only when num_classes > 0.
  """
  box = regions.centre_box(image_size, box_fraction)
  inpaint_HxW = regions.box_mask(image_size, box)
  tasks = {
      "inpaint": (inpaint_HxW, labels_N),
      "outpaint": (regions.outpaint_mask(image_size, box), labels_N),
  }
  if num_classes:
    if new_label is None:
      relabels_N = (labels_N + 1) % num_classes
    elif 0 <= new_label < num_classes:
      relabels_N = np.full_like(labels_N, new_label)
    else:
      raise ValueError(
          f"new_label {new_label} is not a class of this model "
          f"(0 .. {num_classes - 1})."
      )
    tasks["relabel"] = (inpaint_HxW, relabels_N)
  return tasks


def masked_input(sources_NxHxWx3: np.ndarray, mask_HxW: np.ndarray):
  """The sources with the pixels to regenerate painted grey."""
  return np.where(
      mask_HxW[None, :, :, None], np.float32(MASK_GREY), sources_NxHxWx3
  )


def edit_grid(
    editor: edit_lib.Editor,
    sources_NxHxWx3: np.ndarray,
    mask_HxW: np.ndarray,
    labels_N,
    rng,
    num_seeds: int,
):
  """Rows source | masked input | num_seeds results, one per image.

  Args:
    editor: the Editor (its settings fix decoding and compositing).
    sources_NxHxWx3: float32 images in [0, 1].
    mask_HxW: bool pixels to regenerate, shared by all images.
    labels_N: class labels (ignored by unconditional models).
    rng: typed key; result j uses fold_in(rng, j).
    num_seeds: results per image.

  Returns:
    float32 [H', W', 3] grid in [0, 1].
  """
  masks_NxHxW = np.broadcast_to(mask_HxW, sources_NxHxWx3.shape[:3])
  columns = [sources_NxHxWx3, masked_input(sources_NxHxWx3, mask_HxW)]
  for j in range(num_seeds):
    out = editor.edit(
        sources_NxHxWx3,
        masks_NxHxW,
        jax.random.fold_in(rng, j),
        labels_B=labels_N,
        variant="none",
    )
    columns.append(out["images"])
  cells_NxCxHxWx3 = np.stack(columns, axis=1)
  cells_BxHxWx3 = cells_NxCxHxWx3.reshape(-1, *cells_NxCxHxWx3.shape[2:])
  return images_lib.grid(cells_BxHxWx3, len(columns))


def held_out_images(tokenizer_workdir: str, num: int):
  """The first `num` test images: (float32 [num, H, W, 3] in [0, 1], labels)."""
  data_config = artefacts.load_run_config(tokenizer_workdir).data
  images_NxHxWx3, labels_N = data_lib.load_images(data_config, "test", num)
  return images_lib.to_float(images_NxHxWx3), labels_N


def write_grids(
    tokenizer_workdir: str,
    transformer_workdir: str,
    out: str,
    settings: edit_lib.EditSettings,
    *,
    seed: int = 0,
    per_row: int = 8,
    num_rows: int = 4,
    num_images: int = 6,
    num_seeds: int = 4,
    box_fraction: float = 0.5,
    new_label: int | None = None,
    scale: int | None = None,
) -> dict[str, str]:
  """Writes samples.png and the edit grids (see the module doc) to `out`;
  returns {name: path}."""
  os.makedirs(out, exist_ok=True)
  editor = edit_lib.Editor.from_workdirs(
      tokenizer_workdir, transformer_workdir, settings
  )
  sources_NxHxWx3, labels_N = held_out_images(tokenizer_workdir, num_images)
  image_size = sources_NxHxWx3.shape[1]
  scale = scale or max(1, 128 // image_size)
  tasks = edit_tasks(
      image_size, box_fraction, labels_N, editor.layout.num_classes, new_label
  )
  rng = jax.random.key(seed)
  grids = {
      "samples": sample_grid(editor, settings.decode, rng, per_row, num_rows)
  }
  for name, (mask_HxW, task_labels_N) in tasks.items():
    grids[name] = edit_grid(
        editor, sources_NxHxWx3, mask_HxW, task_labels_N, rng, num_seeds
    )
  paths = {}
  for name, grid in grids.items():
    paths[name] = images_lib.save_png(
        grid, os.path.join(out, f"{name}.png"), scale=scale
    )
    print(f"Wrote {paths[name]}", flush=True)
  return paths
