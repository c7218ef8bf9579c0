r"""Sample grids and inpainting / outpainting / relabelling grids of a run.

  python scripts/generate.py --tokenizer_workdir runs/shapes/tokenizer \
      --transformer_workdir runs/shapes/maskgit --out output/generate \
      [--num_steps 12 --schedule cosine --choice_temperature 4.5 \
       --start_iter 2 --stop_iter 8] [--dilation 1] [--composite feather] \
      [--seed 0]

Writes PNG grids to `--out`:
  samples.png   generation from an all-[MASK] grid (`Sampler.generate`): one
                row per class for a class-conditional model (else --num_rows
                rows), --per_row samples each.
  inpaint.png   the centre box (side --box_fraction of the image) regenerated.
  outpaint.png  the centre box kept and the border regenerated
                (`regions.outpaint_mask`).
  relabel.png   class-conditional models only: the centre box regenerated
                under another label (--new_label, default the next class).
Edits use `edit.Editor` (variant "none") on the first --num_images images of
the tokenizer run's held-out (test) split; each row is one image, with columns
source | masked input (edited pixels grey) | one result per seed. Result
column j uses the key fold_in(key(seed), j) in every edit grid, so columns are
paired across tasks. The decode flags set the Editor's `DecodeSettings`;
`--start_iter` applies to edits only, since generation has no context to skip
the first steps with. Small images are enlarged by pixel repetition (--scale).
"""

import dataclasses
import os
import sys

import jax
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)  # Runs from a checkout without installing.

# pylint: disable=g-import-not-at-top,wrong-import-position
from maskgit_edit import artefacts
from maskgit_edit import cli
from maskgit_edit import data as data_lib
from maskgit_edit import edit as edit_lib
from maskgit_edit import images as images_lib
from maskgit_edit import regions
from maskgit_edit.decoding import sampling

# pylint: enable=g-import-not-at-top,wrong-import-position

# Grey that marks the pixels to regenerate in the "masked input" column.
MASK_GREY = 0.5


def parse_args(argv):
  defaults = edit_lib.EditSettings()
  parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tokenizer_workdir", required=True)
  parser.add_argument("--transformer_workdir", required=True)
  parser.add_argument(
      "--out", default="output/generate", help="Folder for the PNG grids."
  )
  cli.add_decode_flags(
      parser,
      (
          "num_steps",
          "schedule",
          "choice_temperature",
          "start_iter",
          "stop_iter",
          "class_guidance",
      ),
  )
  parser.add_argument(
      "--dilation",
      type=int,
      default=defaults.dilation,
      help="Tokens added around the edited token region.",
  )
  parser.add_argument(
      "--composite", default=defaults.composite, choices=regions.COMPOSITE_MODES
  )
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
      "--per_row", type=int, default=8, help="Samples per row of samples.png."
  )
  parser.add_argument(
      "--num_rows",
      type=int,
      default=4,
      help="Rows of samples.png for unconditional models.",
  )
  parser.add_argument(
      "--num_images",
      type=int,
      default=6,
      help="Held-out images (rows) of the edit grids.",
  )
  parser.add_argument(
      "--num_seeds",
      type=int,
      default=4,
      help="Results (columns) per edited image.",
  )
  parser.add_argument(
      "--box_fraction",
      type=float,
      default=0.5,
      help="Side of the centre box as a fraction of the image.",
  )
  parser.add_argument(
      "--new_label",
      type=int,
      default=None,
      help="Label of relabel.png (default: the next class).",
  )
  parser.add_argument(
      "--scale",
      type=int,
      default=None,
      help="Pixel repetition of the PNGs (default: images "
      "shown at >= 128 px).",
  )
  args = parser.parse_args(argv)
  for name in ("per_row", "num_rows", "num_images", "num_seeds"):
    if getattr(args, name) < 1:
      raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}.")
  return args


def decode_settings(args) -> sampling.DecodeSettings:
  """The editor's decode settings with the flags given."""
  return dataclasses.replace(
      edit_lib.EditSettings().decode, **cli.decode_overrides(args)
  )


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


def main(argv=None) -> dict:
  """Writes the grids; returns {name: path}."""
  args = parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  settings = edit_lib.EditSettings(
      decode=decode_settings(args),
      dilation=args.dilation,
      composite=args.composite,
  )
  editor = edit_lib.Editor.from_workdirs(
      args.tokenizer_workdir, args.transformer_workdir, settings
  )
  sources_NxHxWx3, labels_N = held_out_images(
      args.tokenizer_workdir, args.num_images
  )
  image_size = sources_NxHxWx3.shape[1]
  scale = args.scale or max(1, 128 // image_size)
  tasks = edit_tasks(
      image_size,
      args.box_fraction,
      labels_N,
      editor.layout.num_classes,
      args.new_label,
  )
  rng = jax.random.key(args.seed)
  grids = {
      "samples": sample_grid(
          editor, settings.decode, rng, args.per_row, args.num_rows
      )
  }
  for name, (mask_HxW, task_labels_N) in tasks.items():
    grids[name] = edit_grid(
        editor, sources_NxHxWx3, mask_HxW, task_labels_N, rng, args.num_seeds
    )
  paths = {}
  for name, grid in grids.items():
    paths[name] = images_lib.save_png(
        grid, os.path.join(args.out, f"{name}.png"), scale=scale
    )
    print(f"Wrote {paths[name]}", flush=True)
  return paths


if __name__ == "__main__":
  cli.run(main)
