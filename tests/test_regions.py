"""Tests for maskgit_edit.editing (pixel <-> token glue)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from maskgit_edit import regions

IMAGE_SIZE = 32
LATENT_SIZE = 8  # f = 4 px per token side.


def _images(batch=2, seed=0):
  rng = np.random.default_rng(seed)
  shape = (batch, IMAGE_SIZE, IMAGE_SIZE, 3)
  return (
      rng.random(shape, dtype=np.float32),
      rng.random(shape, dtype=np.float32),
  )


def _empty_mask(batch=1):
  return np.zeros((batch, IMAGE_SIZE, IMAGE_SIZE), bool)


# --- pixel <-> token masks -------------------------------------------------


def test_single_pixel_marks_only_its_token():
  mask_BxHxW = _empty_mask()
  mask_BxHxW[0, 13, 6] = True  # Pixel (13, 6) lies in token (3, 1).
  token_mask = regions.pixel_to_token_mask(mask_BxHxW, LATENT_SIZE)
  expected = np.zeros((1, LATENT_SIZE, LATENT_SIZE), bool)
  expected[0, 3, 1] = True
  np.testing.assert_array_equal(token_mask, expected)


def test_patch_aligned_mask_marks_exactly_those_tokens():
  mask_BxHxW = _empty_mask()
  mask_BxHxW[0, 8:16, 4:20] = True  # Token rows 2..3, token columns 1..4.
  token_mask = regions.pixel_to_token_mask(mask_BxHxW, LATENT_SIZE)
  expected = np.zeros((1, LATENT_SIZE, LATENT_SIZE), bool)
  expected[0, 2:4, 1:5] = True
  np.testing.assert_array_equal(token_mask, expected)


def test_mask_straddling_patch_edge_marks_both_tokens():
  mask_BxHxW = _empty_mask()
  mask_BxHxW[0, 0, 3:5] = True  # Last pixel of token 0, first of token 1.
  token_mask = regions.pixel_to_token_mask(mask_BxHxW, LATENT_SIZE)
  assert np.argwhere(token_mask[0]).tolist() == [[0, 0], [0, 1]]


def test_dilation_grows_single_token_to_3x3():
  mask_BxHxW = _empty_mask()
  mask_BxHxW[0, 17, 17] = True  # Token (4, 4).
  token_mask = regions.pixel_to_token_mask(mask_BxHxW, LATENT_SIZE, dilation=1)
  expected = np.zeros((1, LATENT_SIZE, LATENT_SIZE), bool)
  expected[0, 3:6, 3:6] = True
  np.testing.assert_array_equal(token_mask, expected)


def test_dilation_is_clipped_at_corners():
  mask_BxHxW = _empty_mask(batch=2)
  mask_BxHxW[0, 0, 0] = True  # Token (0, 0).
  mask_BxHxW[1, -1, -1] = True  # Token (7, 7).
  token_mask = regions.pixel_to_token_mask(mask_BxHxW, LATENT_SIZE, dilation=1)
  expected = np.zeros((2, LATENT_SIZE, LATENT_SIZE), bool)
  expected[0, :2, :2] = True
  expected[1, -2:, -2:] = True
  np.testing.assert_array_equal(token_mask, expected)


def test_token_pixel_token_round_trip():
  rng = np.random.default_rng(1)
  token_mask = rng.random((3, LATENT_SIZE, LATENT_SIZE)) < 0.3
  pixel_mask = regions.token_to_pixel_mask(token_mask, IMAGE_SIZE)
  assert pixel_mask.shape == (3, IMAGE_SIZE, IMAGE_SIZE)
  # Each token covers exactly its own 4x4 patch.
  np.testing.assert_array_equal(
      pixel_mask[:, 4:8, 8:12],
      np.broadcast_to(token_mask[:, 1:2, 2:3], (3, 4, 4)),
  )
  np.testing.assert_array_equal(
      regions.pixel_to_token_mask(pixel_mask, LATENT_SIZE), token_mask
  )


def test_token_mask_rejects_non_divisible_size():
  with pytest.raises(ValueError, match='30.*8'):
    regions.pixel_to_token_mask(np.zeros((1, 30, 30), bool), LATENT_SIZE)
  with pytest.raises(ValueError, match='30.*8'):
    regions.token_to_pixel_mask(np.zeros((1, 8, 8), bool), 30)


def test_token_mask_rejects_non_square_and_negative_dilation():
  with pytest.raises(ValueError, match='32x16'):
    regions.pixel_to_token_mask(np.zeros((1, 32, 16), bool), LATENT_SIZE)
  with pytest.raises(ValueError, match='dilation'):
    regions.pixel_to_token_mask(_empty_mask(), LATENT_SIZE, dilation=-1)


# --- validation --------------------------------------------------------------


def test_validate_classifies_masks():
  source, stroke = _images(batch=3)
  mask_BxHxW = _empty_mask(batch=3)
  mask_BxHxW[1, 5, 5] = True
  mask_BxHxW[2] = True
  kinds = regions.validate_edit_inputs(source, stroke, mask_BxHxW, LATENT_SIZE)
  assert kinds == [
      regions.MaskKind.EMPTY,
      regions.MaskKind.PARTIAL,
      regions.MaskKind.FULL,
  ]
  # No stroke image is fine (pure inpainting); 0/1 integer masks are too.
  assert (
      regions.validate_edit_inputs(
          source, None, mask_BxHxW.astype(np.uint8), LATENT_SIZE
      )
      == kinds
  )


def test_mask_coverage():
  mask_BxHxW = _empty_mask(batch=2)
  mask_BxHxW[1, :8] = True
  np.testing.assert_allclose(regions.mask_coverage(mask_BxHxW), [0.0, 0.25])


@pytest.mark.parametrize(
    'stroke_shape, mask_shape, match',
    [
        ((2, 32, 32, 3), (2, 16, 16), r'mask shape \(2, 16, 16\)'),
        ((2, 32, 32, 3), (1, 32, 32), r'mask shape \(1, 32, 32\)'),
        ((2, 16, 16, 3), (2, 32, 32), r'stroke shape \(2, 16, 16, 3\)'),
    ],
)
def test_validate_rejects_size_mismatch(stroke_shape, mask_shape, match):
  source, _ = _images()
  with pytest.raises(ValueError, match=match):
    regions.validate_edit_inputs(
        source, np.zeros(stroke_shape), np.zeros(mask_shape, bool), LATENT_SIZE
    )


def test_validate_rejects_bad_geometry():
  with pytest.raises(ValueError, match='30.*8'):
    regions.validate_edit_inputs(
        np.zeros((1, 30, 30, 3)), None, np.zeros((1, 30, 30), bool), LATENT_SIZE
    )
  with pytest.raises(ValueError, match='32x16'):
    regions.validate_edit_inputs(
        np.zeros((1, 32, 16, 3)), None, np.zeros((1, 32, 16), bool), LATENT_SIZE
    )
  with pytest.raises(ValueError, match=r'\[B, H, W, 3\]'):
    regions.validate_edit_inputs(
        np.zeros((32, 32, 3)), None, np.zeros((32, 32), bool), LATENT_SIZE
    )


def test_validate_rejects_non_boolean_mask():
  source, _ = _images(batch=1)
  mask_BxHxW = np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
  mask_BxHxW[0, 0, 0] = 255
  with pytest.raises(ValueError, match='boolean-like.*255'):
    regions.validate_edit_inputs(source, None, mask_BxHxW, LATENT_SIZE)


# --- compositing -------------------------------------------------------------


def _stroke_and_region(dilation=1):
  """A stroke mask and the pixel region of the tokens it touches."""
  stroke_mask = _empty_mask(batch=2)
  stroke_mask[0, 10:15, 9:21] = True
  stroke_mask[1, 0:3, 0:6] = True  # Touches the image corner.
  token_mask = regions.pixel_to_token_mask(stroke_mask, LATENT_SIZE, dilation)
  return stroke_mask, regions.token_to_pixel_mask(token_mask, IMAGE_SIZE)


def test_hard_composite_keeps_outside_exactly():
  source, generated = _images()
  _, region = _stroke_and_region()
  out = regions.composite(source, generated, region, mode='hard')
  np.testing.assert_array_equal(out[~region], source[~region])
  np.testing.assert_array_equal(out[region], generated[region])


def test_feather_composite_is_exact_outside_region_and_on_stroke():
  source, generated = _images()
  stroke_mask, region = _stroke_and_region()
  out = regions.composite(
      source,
      generated,
      region,
      mode='feather',
      sigma_px=2.0,
      core_mask_BxHxW=stroke_mask,
  )
  np.testing.assert_array_equal(out[~region], source[~region])
  np.testing.assert_array_equal(out[stroke_mask], generated[stroke_mask])
  # Between the stroke and the region boundary the images are blended.
  band = region & ~stroke_mask
  assert not np.allclose(out[band], source[band])
  assert not np.allclose(out[band], generated[band])


def test_feather_weights_ramp_inside_region():
  region = _empty_mask()
  region[0, :, :16] = True  # Left half; the seam is the column 15 | 16.
  weights = regions.feather(region, sigma_px=2.0)
  assert weights.dtype == np.float32
  assert weights.min() == 0 and weights.max() <= 1
  np.testing.assert_array_equal(weights[~region], 0)
  row = weights[0, 16]
  # Rises monotonically away from the seam, near 0 next to it.
  assert np.all(np.diff(row[:16]) <= 0)
  assert 0 < row[15] < 0.3
  # The image border is not a seam (edge-replicated blur): no fade there.
  assert weights[0, 0, 4] > 0.99


def test_feather_zero_sigma_is_hard_mask():
  _, region = _stroke_and_region()
  np.testing.assert_array_equal(
      regions.feather(region, 0.0), region.astype(np.float32)
  )
  with pytest.raises(ValueError, match='sigma_px'):
    regions.feather(region, -1.0)


def test_composite_works_on_jax_arrays_and_under_jit():
  source, generated = _images()
  stroke_mask, region = _stroke_and_region()
  expected = regions.composite(
      source,
      generated,
      region,
      mode='feather',
      sigma_px=2.0,
      core_mask_BxHxW=stroke_mask,
  )

  @jax.jit
  def composite_jax(source, generated, region, stroke_mask):
    return regions.composite(
        source,
        generated,
        region,
        mode='feather',
        sigma_px=2.0,
        core_mask_BxHxW=stroke_mask,
    )

  out = composite_jax(
      jnp.asarray(source),
      jnp.asarray(generated),
      jnp.asarray(region),
      jnp.asarray(stroke_mask),
  )
  assert isinstance(out, jax.Array)
  np.testing.assert_allclose(np.asarray(out), expected, atol=1e-6)
  hard = regions.composite(
      jnp.asarray(source), jnp.asarray(generated), jnp.asarray(region)
  )
  np.testing.assert_array_equal(np.asarray(hard)[~region], source[~region])


def test_composite_rejects_unknown_mode_and_shapes():
  source, generated = _images()
  _, region = _stroke_and_region()
  with pytest.raises(ValueError, match="'soft'"):
    regions.composite(source, generated, region, mode='soft')
  with pytest.raises(ValueError, match='sigma_px'):
    regions.composite(source, generated, region, mode='feather')
  with pytest.raises(ValueError, match=r'generated shape \(2, 32, 32, 2\)'):
    regions.composite(source, generated[..., :2], region)
  with pytest.raises(ValueError, match=r'mask shape \(2, 16, 16\)'):
    regions.composite(source, generated, region[:, :16, :16])


# --- files and demo masks ----------------------------------------------------


def _save(path, array, mode=None):
  Image.fromarray(array, mode=mode).save(path)
  return path


def test_load_edit_triplet_round_trip(tmp_path):
  rng = np.random.default_rng(2)
  source_u8 = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
  stroke_u8 = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
  mask_rgba = np.zeros((16, 16, 4), np.uint8)
  mask_rgba[2:5, 3:9] = (255, 0, 0, 255)  # Opaque red paint.
  mask_rgba[10, 10] = (255, 255, 255, 0)  # Transparent: not painted.
  source, stroke, mask = regions.load_edit_triplet(
      _save(tmp_path / 'source.png', source_u8),
      _save(tmp_path / 'stroke.png', stroke_u8),
      _save(tmp_path / 'mask.png', mask_rgba),
  )
  assert source.dtype == stroke.dtype == np.float32
  np.testing.assert_allclose(source, source_u8 / 255, atol=1e-6)
  np.testing.assert_allclose(stroke, stroke_u8 / 255, atol=1e-6)
  expected = np.zeros((16, 16), bool)
  expected[2:5, 3:9] = True
  np.testing.assert_array_equal(mask, expected)


def test_load_edit_triplet_grayscale_mask_and_resize(tmp_path):
  image_u8 = np.full((16, 16, 3), 200, np.uint8)
  mask_u8 = np.zeros((16, 16), np.uint8)
  mask_u8[:8, :8] = 1  # Any non-zero value counts.
  source, stroke, mask = regions.load_edit_triplet(
      _save(tmp_path / 'source.png', image_u8),
      _save(tmp_path / 'stroke.png', image_u8),
      _save(tmp_path / 'mask.png', mask_u8),
      image_size=8,
  )
  assert source.shape == stroke.shape == (8, 8, 3)
  np.testing.assert_allclose(source, 200 / 255, atol=1e-6)
  expected = np.zeros((8, 8), bool)
  expected[:4, :4] = True
  np.testing.assert_array_equal(mask, expected)


def test_load_edit_triplet_errors_name_files(tmp_path):
  source = _save(tmp_path / 'source.png', np.zeros((16, 16, 3), np.uint8))
  stroke = _save(tmp_path / 'stroke.png', np.zeros((16, 16, 3), np.uint8))
  small_mask = _save(tmp_path / 'mask.png', np.zeros((8, 12), np.uint8))
  with pytest.raises(ValueError, match=r'mask\.png is 12x8'):
    regions.load_edit_triplet(source, stroke, small_mask)
  with pytest.raises(FileNotFoundError, match=r'stroke.*missing\.png'):
    regions.load_edit_triplet(source, tmp_path / 'missing.png', small_mask)


def test_box_masks():
  box = regions.centre_box(8, fraction=0.5)
  assert box == (2, 2, 6, 6)
  inpaint = regions.box_mask(8, box)
  assert inpaint.sum() == 16 and inpaint[2:6, 2:6].all()
  ring = regions.outpaint_mask(8, box)
  np.testing.assert_array_equal(ring, ~inpaint)
  assert ring[0].all() and ring[:, -1].all()
  with pytest.raises(ValueError, match='outside'):
    regions.box_mask(8, (0, 0, 9, 4))
