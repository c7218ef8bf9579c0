"""The comparison grid: example strokes, one column per variant.

Each variant is shown at its display knob (`settings.comparison_columns`),
or the nearest knob that ran; a grey "n/a" cell for a variant that did not
run. Small images are enlarged by pixel repetition.
"""

import math
import os
import re

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from maskgit_edit import images as images_lib
from maskgit_edit import strokes
from maskgit_edit.study import outputs as outputs_lib
from maskgit_edit.study import schema
from maskgit_edit.study import settings as settings_lib
from maskgit_edit.study import stroke_sets

_PAD = 4
_FONT_SIZE = 13
_PLACEHOLDER_GREY = 200


def slug(text: str) -> str:
  return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def pick_rows(stroke_set: stroke_sets.StrokeSet, per_mode: int) -> list[int]:
  """The first `per_mode` strokes of each mode, inversion first."""
  return [
      i
      for mode in strokes.MODES
      for i in [j for j, m in enumerate(stroke_set.modes) if m == mode][
          :per_mode
      ]
  ]


def column_cells(results, results_dir, stroke_set, rows):
  """Images of the example rows per column, and a note per column.

  Returns:
    (cells, notes): cells[c] is uint8 [R, H, W, 3] or None (not run);
    notes[c] says which knob is shown, or why the column is empty.
  """
  cells, notes = [], []
  for column in settings_lib.comparison_columns():
    if column.variant in settings_lib.INPUT_COLUMNS:
      images = (
          stroke_set.sources_NxHxWx3
          if column.variant == "source"
          else stroke_set.strokes_NxHxWx3
      )
      cells.append(images_lib.to_uint8(images[rows]))
      notes.append("input")
      continue
    setting = schema.find_setting(results, column.variant, column.knob)
    if setting is None:
      cells.append(None)
      notes.append(
          "skipped" if column.variant in results["skipped"] else "not run"
      )
      continue
    outputs = outputs_lib.load_outputs(
        os.path.join(results_dir, setting["outputs"]),
        stroke_set,
        seed=results["seed"],
        batch_size=results["batch_size"],
    )
    cells.append(outputs["images"][rows])
    notes.append(
        ""
        if column.variant == "none"
        else f"{setting['knob_name']}={setting['knob']:g}"
    )
  return cells, notes


def _upscale(image_HxWx3: np.ndarray, factor: int) -> np.ndarray:
  return image_HxWx3.repeat(factor, axis=0).repeat(factor, axis=1)


def _placeholder(side: int, font) -> np.ndarray:
  image = Image.new("RGB", (side, side), (_PLACEHOLDER_GREY,) * 3)
  ImageDraw.Draw(image).text(
      (side / 2, side / 2), "n/a", fill=(0, 0, 0), font=font, anchor="mm"
  )
  return np.asarray(image)


def row_images(cells, row: int, factor: int, font) -> list[np.ndarray]:
  """Enlarged uint8 images of one example row, a placeholder where absent."""
  side = next(c for c in cells if c is not None).shape[1] * factor
  return [
      _placeholder(side, font)
      if column is None
      else _upscale(column[row], factor)
      for column in cells
  ]


def _wrap(draw, text: str, font, width: int) -> str:
  """Greedy word wrap of each line of `text` to `width` pixels."""
  if "\n" in text:
    return "\n".join(
        _wrap(draw, part, font, width) for part in text.split("\n")
    )
  lines, line = [], ""
  for word in text.split():
    candidate = f"{line} {word}".strip()
    if line and draw.textlength(candidate, font=font) > width:
      lines.append(line)
      line = word
    else:
      line = candidate
  return "\n".join(lines + [line])


def titled_grid(rows_of_images, titles, row_labels, font) -> Image.Image:
  """Rows of equal-size images under wrapped column titles, rows labelled."""
  side = rows_of_images[0][0].shape[0]
  scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
  titles = [_wrap(scratch, t, font, side) for t in titles]
  labels = [_wrap(scratch, t, font, side) for t in row_labels]
  title_h = (
      max(scratch.multiline_textbbox((0, 0), t, font=font)[3] for t in titles)
      + 2 * _PAD
  )
  label_w = (
      max(scratch.multiline_textbbox((0, 0), t, font=font)[2] for t in labels)
      + 2 * _PAD
  )
  num_cols = len(titles)
  width = label_w + num_cols * (side + _PAD) + _PAD
  height = title_h + len(rows_of_images) * (side + _PAD) + _PAD
  canvas = Image.new("RGB", (width, height), (255, 255, 255))
  draw = ImageDraw.Draw(canvas)
  for c, title in enumerate(titles):
    left = label_w + c * (side + _PAD) + _PAD
    draw.multiline_text(
        (left + side / 2, title_h - _PAD),
        title,
        font=font,
        fill=(0, 0, 0),
        anchor="md",
        align="center",
    )
  for r, (images, label) in enumerate(zip(rows_of_images, labels)):
    top = title_h + r * (side + _PAD)
    draw.multiline_text(
        (_PAD, top + side / 2), label, font=font, fill=(0, 0, 0), anchor="lm"
    )
    for c, image in enumerate(images):
      canvas.paste(
          Image.fromarray(image), (label_w + c * (side + _PAD) + _PAD, top)
      )
  return canvas


def render_examples(
    results: schema.Results,
    results_dir: str,
    stroke_set: stroke_sets.StrokeSet,
    output_dir: str,
    *,
    per_mode: int,
    cell_px: int,
) -> tuple[Image.Image, list[list[str]], list[str], list[str]]:
  """The example rows: a strip per stroke and a PNG per cell in `output_dir`.

  Args:
    results: a study's results; its outputs are under `results_dir`.
    stroke_set: the study's strokes.
    output_dir: where strips and cells go.
    per_mode: example strokes per stroke mode.
    cell_px: the smallest displayed image side (pixel repetition).

  Returns:
    (the titled grid of all rows, cell PNG paths per row, row labels, a
    note per column (`column_cells`)).
  """
  rows = pick_rows(stroke_set, per_mode)
  if not rows:
    raise ValueError(f"No strokes to show (examples_per_mode={per_mode}).")
  cells, notes = column_cells(results, results_dir, stroke_set, rows)
  factor = max(1, math.ceil(cell_px / stroke_set.image_size))
  font = ImageFont.load_default(size=_FONT_SIZE)
  columns = settings_lib.comparison_columns()
  rows_of_images, cell_paths, row_labels = [], [], []
  for r, index in enumerate(rows):
    images = row_images(cells, r, factor, font)
    stroke_id, mode = stroke_set.ids[index], stroke_set.modes[index]
    row_labels.append(f"{mode} {stroke_id}")
    rows_of_images.append(images)
    strip = images_lib.grid(
        images_lib.to_float(np.stack(images)), num_cols=len(images)
    )
    images_lib.save_png(
        strip, os.path.join(output_dir, f"strip_{mode}_{stroke_id}.png")
    )
    cell_paths.append(
        [
            images_lib.save_png(
                images_lib.to_float(image),
                os.path.join(
                    output_dir, "cells", stroke_id, f"{slug(column.title)}.png"
                ),
            )
            for column, image in zip(columns, images)
        ]
    )
  titles = [
      c.title if n in ("", "input") else f"{c.title}\n{n}"
      for c, n in zip(columns, notes)
  ]
  return (
      titled_grid(rows_of_images, titles, row_labels, font),
      cell_paths,
      row_labels,
      notes,
  )
