"""Windowed decoding: windows, true positions, exactness, compilations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_edit import edit
from maskgit_edit.benchmarking import timing
from maskgit_edit.decoding import windows
from maskgit_edit.models.transformer import Transformer

from conftest import pretrained_test_images

CompileCounter = timing.CompileCounter


def grid_mask(side, *boxes):
  mask = np.zeros((len(boxes), side, side), bool)
  for row, (top, bottom, left, right) in enumerate(boxes):
    mask[row, top:bottom, left:right] = True
  return mask


def test_windows_hold_the_grown_box_clip_at_borders_and_share_a_bucketed_size():
  # Top-left corner, bottom-right corner and the middle of an 8x8 grid.
  unknown = grid_mask(8, (0, 1, 0, 1), (7, 8, 6, 8), (3, 5, 3, 4))
  positions = windows.window_positions(unknown, ring=2)
  assert windows.window_size(unknown, 2) == (6, 5)  # The middle box, grown.
  for row, unknown_hxw in enumerate(unknown):
    inside = np.zeros(64, bool)
    inside[positions[row]] = True
    assert len(set(positions[row].tolist())) == 30
    assert inside[unknown_hxw.ravel()].all()
    grown = np.zeros((8, 8), bool)
    top, left, bottom, right = windows.grown_box(unknown_hxw, 2)
    grown[top:bottom, left:right] = True
    assert inside[grown.ravel()].all()
  assert positions[0, 0] == 0 and positions[1, -1] == 63  # Clipped corners.
  # 32x32 grids bucket sides to multiples of 4; a window never exceeds the grid.
  assert windows.window_size(grid_mask(32, (10, 13, 3, 9)), 1) == (8, 8)
  assert windows.window_size(grid_mask(32, (0, 32, 0, 1)), 4) == (32, 8)
  with pytest.raises(ValueError, match="ring"):
    windows.window_positions(unknown, -1)


def test_window_tokens_get_the_embeddings_of_their_grid_positions():
  # Without layers, each output depends on its own input and position only.
  model = Transformer(
      vocab_size=20,
      seq_len=17,
      hidden_size=16,
      num_layers=0,
      num_heads=2,
      intermediate_size=32,
      dropout_rate=0.0,
  )
  ids_1xL = jax.random.randint(jax.random.key(0), (1, 17), 0, 19)
  params = model.init(jax.random.key(1), ids_1xL)["params"]
  full = model.apply({"params": params}, ids_1xL)
  positions_1xW = jnp.array([[0, 5, 6, 9, 10, 16]])
  windowed = model.apply(
      {"params": params},
      jnp.take_along_axis(ids_1xL, positions_1xW, 1),
      position_ids_BxL=positions_1xW,
  )
  np.testing.assert_allclose(windowed, full[:, positions_1xW[0]], atol=1e-6)
  with pytest.raises(ValueError, match="position_ids_BxL"):
    model.apply(
        {"params": params},
        ids_1xL[:, :6],
        position_ids_BxL=positions_1xW[:, :5],
    )


@pytest.fixture(scope="module")
def editor():
  return edit.Editor.from_workdirs()


@pytest.fixture(scope="module")
def sources():
  return pretrained_test_images(4)


@pytest.mark.parametrize(
    "variant,knob",
    [("none", 0.0), ("sdedit", 0.5), ("self_fixed", 2.0), ("zero_shot", 0.5)],
)
def test_a_window_as_large_as_the_grid_is_the_full_decode(
    editor, sources, variant, knob
):
  images, labels = sources
  masks = np.zeros((4, 32, 32), bool)
  masks[:, 6:14, 4:12] = True
  strokes = np.where(masks[..., None], np.float32([0.2, 0.3, 0.9]), images)
  run = lambda window: editor.edit(
      images,
      masks,
      jax.random.key(3),
      strokes_BxHxWx3=strokes,
      labels_B=labels,
      variant=variant,
      knob=knob,
      window=window,
      return_history=True,
  )
  full, whole_window = run(None), run(8)
  for name in ("tokens", "history", "images"):
    np.testing.assert_array_equal(full[name], whole_window[name])


def test_windowed_edits_keep_the_rest_and_compile_once_per_size(
    editor, sources
):
  images, labels = sources

  def run(box, seed=0, knob=2.0):
    masks = np.zeros((4, 32, 32), bool)
    top, left = box
    masks[:, top : top + 6, left : left + 6] = True
    strokes = np.where(masks[..., None], np.float32([0.9, 0.9, 0.1]), images)
    return editor.edit(
        images,
        masks,
        jax.random.key(seed),
        strokes_BxHxWx3=strokes,
        labels_B=labels,
        variant="self_fixed",
        knob=knob,
        window=1,
    )

  first = run((12, 12))
  source_tokens = np.asarray(editor.tokenize(images))
  np.testing.assert_array_equal(
      first["tokens"][~first["edited"]], source_tokens[~first["edited"]]
  )
  with CompileCounter() as counter:
    # Same window size: new strokes, seeds and knobs reuse the program.
    run((16, 8), seed=1, knob=1.0)
    run((8, 16), seed=2)
  assert counter.count == 0
  with CompileCounter() as counter:
    run((0, 0))  # A corner clips the window: a new size, one compile.
    run((26, 0))
  assert counter.count <= 1
