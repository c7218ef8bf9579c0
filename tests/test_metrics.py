"""Tests for maskgit_edit.metrics."""

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
import scipy.stats

from maskgit_edit import feature_distances
from maskgit_edit import intervals
from maskgit_edit import metrics
from maskgit_edit import swd as swd_lib


def _textured_images(num_images, size=32, seed=0):
  """Random images with edges and texture: rectangles on a smooth field."""
  rng = np.random.default_rng(seed)
  field = scipy.ndimage.gaussian_filter(
      rng.uniform(size=(num_images, size, size, 3)), sigma=(0, 3, 3, 0)
  )
  images = 0.5 + 4.0 * (field - field.mean())
  for image in images:
    for _ in range(4):
      y, x = rng.integers(0, size - 4, size=2)
      h, w = rng.integers(3, size // 2, size=2)
      image[y : y + h, x : x + w] = rng.uniform(size=3)
  images += rng.normal(scale=0.03, size=images.shape)
  return np.clip(images, 0.0, 1.0)


def _blur(images, sigma):
  return scipy.ndimage.gaussian_filter(images, sigma=(0, sigma, sigma, 0))


# ---------------------------------------------------------------------------
# Pixel metrics.


def test_psnr_hand_value_and_single_image():
  a = np.zeros((2, 2, 1))
  b = a.copy()
  b[0, 0, 0] = 0.1  # MSE = 0.01 / 4.
  expected = 10 * np.log10(1 / 0.0025)
  np.testing.assert_allclose(metrics.psnr(a, b), expected)
  assert np.ndim(metrics.psnr(a, b)) == 0
  np.testing.assert_allclose(
      metrics.psnr(a[None] * 255, b[None] * 255, max_val=255.0), [expected]
  )


def test_psnr_identical_images_is_inf_or_capped():
  a = np.full((2, 4, 4, 3), 0.3)
  b = a.copy()
  b[1, 0, 0, 0] = 0.4
  with np.errstate(all="raise"):
    values = metrics.psnr(a, b)
  assert values[0] == np.inf and np.isfinite(values[1])
  capped = metrics.psnr(a, b, cap=60.0)
  np.testing.assert_allclose(capped, [60.0, values[1]])


def test_psnr_mask_restricts_to_masked_pixels():
  a = np.zeros((1, 2, 2, 3))
  b = a.copy()
  b[0, 0, 0] = 0.5  # Error only at pixel (0, 0), all channels.
  mask = np.array([[True, True], [False, False]])
  # Masked MSE: 3 * 0.25 over 2 pixels * 3 channels.
  np.testing.assert_allclose(
      metrics.psnr(a, b, mask=mask), [10 * np.log10(1 / 0.125)]
  )
  assert metrics.psnr(a, b, mask=~mask)[0] == np.inf
  with pytest.raises(ValueError, match="empty mask"):
    metrics.psnr(a, b, mask=np.zeros((2, 2), bool))


def test_l2_distance_hand_values():
  a = np.zeros((2, 2, 2, 1))
  b = np.zeros((2, 2, 2, 1))
  b[0, 0, 0, 0] = 0.3
  b[0, 1, 1, 0] = 0.4
  b[1, 0, 1, 0] = 1.0
  np.testing.assert_allclose(metrics.l2_distance(a, b), [0.5, 1.0])
  mask_NxHxW = np.array(
      [[[True, False], [False, False]], [[True, False], [False, True]]]
  )
  np.testing.assert_allclose(
      metrics.l2_distance(a, b, mask=mask_NxHxW), [0.3, 0.0]
  )
  # A [H, W] mask is shared by the batch.
  np.testing.assert_allclose(
      metrics.l2_distance(a, b, mask=np.array([[False, True], [True, True]])),
      [0.4, 1.0],
  )


def test_l2_distance_sums_channels():
  a = np.zeros((3, 3, 3))
  b = np.zeros((3, 3, 3))
  b[1, 1] = [0.1, 0.2, 0.2]
  np.testing.assert_allclose(metrics.l2_distance(a, b), 0.3)


def test_faithfulness_and_preservation():
  source = np.zeros((1, 2, 2, 1))
  output = source.copy()
  output[0, 0, 0, 0] = 0.6  # inside the edit
  output[0, 1, 1, 0] = 0.1  # outside the edit
  stroke = np.zeros_like(source)
  stroke[0, 0, 0, 0] = 1.0
  edit_mask = np.array([[True, True], [False, False]])
  faith = metrics.faithfulness(output, stroke, stroke_mask=edit_mask)
  np.testing.assert_allclose(faith["l2"], [np.sqrt(0.16 + 0.01)])
  np.testing.assert_allclose(faith["l2_stroke"], [0.4])
  kept = metrics.preservation(output, source, edit_mask)
  np.testing.assert_allclose(kept["l2"], [0.1])
  np.testing.assert_allclose(kept["psnr"], [10 * np.log10(1 / (0.01 / 2))])
  capped = metrics.preservation(source, source, edit_mask, psnr_cap=50.0)
  np.testing.assert_allclose(capped["psnr"], [50.0])


def test_preservation_rejects_full_edit_mask():
  images = np.zeros((2, 2, 2, 3))
  mask = np.ones((2, 2, 2), bool)
  mask[0, 0, 0] = False  # Only the second image is fully edited.
  with pytest.raises(ValueError, match="whole image"):
    metrics.preservation(images, images, mask)


@pytest.mark.parametrize("fn", [metrics.psnr, metrics.l2_distance])
def test_pixel_metrics_reject_bad_inputs(fn):
  a = np.zeros((2, 4, 4, 3))
  with pytest.raises(ValueError, match=r"\(2, 4, 4, 3\) and \(2, 4, 5, 3\)"):
    fn(a, np.zeros((2, 4, 5, 3)))
  with pytest.raises(ValueError, match=r"Mask shape \(3, 4, 4\)"):
    fn(a, a, mask=np.ones((3, 4, 4), bool))
  with pytest.raises(ValueError, match="bool"):
    fn(a, a, mask=np.ones((4, 4)))
  with pytest.raises(ValueError, match="at least one image"):
    fn(a[:0], a[:0])
  with pytest.raises(ValueError, match=r"Mask shape \(1, 4, 4\)"):
    fn(a[0], a[0], mask=np.ones((1, 4, 4), bool))


def test_edge_mask_marks_both_sides_of_jumps_above_threshold():
  images = np.zeros((1, 4, 6, 3))
  images[:, :, 3:, 1] = 0.5  # a vertical edge between columns 2 and 3
  images[:, :, :, 2] = np.linspace(0, 0.25, 6)  # a gentle ramp: no edge
  expected = np.zeros((1, 4, 6), bool)
  expected[:, :, 2:4] = True
  np.testing.assert_array_equal(metrics.edge_mask(images), expected)
  assert not metrics.edge_mask(images, threshold=0.6).any()
  with pytest.raises(ValueError, match="Expected images"):
    metrics.edge_mask(images[0])


# ---------------------------------------------------------------------------
# Sliced Wasserstein distance.

_SWD_KWARGS = dict(num_descriptors=64, num_projections=256)


@pytest.fixture(scope="module")
def image_sets():
  images = _textured_images(64, seed=0)
  return images[:32], images[32:]


def test_swd_of_a_set_with_itself_is_zero(image_sets):
  images, _ = image_sets
  result = swd_lib.swd(images, images, rng_seed=3, **_SWD_KWARGS)
  assert len(result["per_level"]) == 2  # 32 px and 16 px.
  assert result["per_level"] == [0.0, 0.0] and result["mean"] == 0.0


def test_swd_grows_with_blur(image_sets):
  images, held_out = image_sets
  same_distribution = swd_lib.swd(images, held_out, **_SWD_KWARGS)["mean"]
  shifted = [
      swd_lib.swd(images, _blur(held_out, sigma), **_SWD_KWARGS)["mean"]
      for sigma in (1.0, 2.0, 4.0)
  ]
  assert 0 < same_distribution < shifted[0] < shifted[1] < shifted[2]
  assert shifted[0] > 1.15 * same_distribution


def test_swd_grows_with_noise(image_sets):
  images, held_out = image_sets
  rng = np.random.default_rng(1)
  noise = rng.normal(size=held_out.shape)
  shifted = [
      swd_lib.swd(images, held_out + scale * noise, **_SWD_KWARGS)["mean"]
      for scale in (0.05, 0.1, 0.2)
  ]
  assert shifted[0] < shifted[1] < shifted[2]


def test_swd_descriptors_reused_match_swd(image_sets):
  images, held_out = image_sets
  position_seed, direction_seed = np.random.SeedSequence(5).spawn(2)
  desc = [
      swd_lib.swd_descriptors(
          x,
          np.random.default_rng(position_seed),
          num_descriptors=64,
          batch_size=5,
      )
      for x in (images, held_out)
  ]
  assert [d.shape for d in desc[0]] == [(32 * 64, 147)] * 2
  assert desc[0][0].dtype == np.float32
  # Per-set normalisation: each channel has zero mean and unit std.
  channels = desc[0][1].reshape(-1, 7, 7, 3)
  np.testing.assert_allclose(
      channels.mean(axis=(0, 1, 2), dtype=np.float64), 0, atol=1e-5
  )
  np.testing.assert_allclose(
      channels.std(axis=(0, 1, 2), dtype=np.float64), 1, atol=1e-5
  )
  from_desc = swd_lib.swd_from_descriptors(
      *desc, rng=np.random.default_rng(direction_seed), num_projections=256
  )
  direct = swd_lib.swd(images, held_out, rng_seed=5, **_SWD_KWARGS)
  np.testing.assert_allclose(
      from_desc["per_level"], direct["per_level"], rtol=1e-6
  )


def test_swd_one_dimensional_matches_scipy_wasserstein():
  rng = np.random.default_rng(0)
  a = rng.normal(size=50)
  b = rng.normal(loc=0.7, scale=2.0, size=37)  # Unequal set sizes.
  result = swd_lib.swd_from_descriptors(
      [a[:, None]], [b[:, None]], num_projections=3
  )
  np.testing.assert_allclose(
      result["per_level"],
      [1e3 * scipy.stats.wasserstein_distance(a, b)],
      rtol=1e-10,
  )


def test_swd_handles_unequal_set_sizes(image_sets):
  images, held_out = image_sets
  result = swd_lib.swd(images, held_out[:10], **_SWD_KWARGS)
  assert np.isfinite(result["mean"]) and result["mean"] > 0


def test_swd_level_count_and_small_images():
  assert swd_lib.swd_num_levels(256, 256) == 5
  assert swd_lib.swd_num_levels(32, 48) == 2
  assert swd_lib.swd_num_levels(64, 64, min_resolution=8) == 4
  images = _textured_images(4, size=64)
  result = swd_lib.swd(
      images, images[::-1], num_descriptors=8, num_projections=8
  )
  assert len(result["per_level"]) == 3
  with pytest.raises(ValueError, match="smaller than min_resolution"):
    swd_lib.swd_descriptors(np.zeros((2, 8, 8, 3)))
  with pytest.raises(ValueError, match="non-empty image set"):
    swd_lib.swd_descriptors(np.zeros((0, 32, 32, 3)))
  with pytest.raises(ValueError, match="same, non-zero number of levels"):
    swd_lib.swd(images, images[:, :32, :32])


def test_laplacian_pyramid_of_constant_image():
  images = np.full((2, 32, 32, 3), 0.7)
  levels = swd_lib.laplacian_pyramid(images, num_levels=3)
  assert [level.shape for level in levels] == [
      (2, 32, 32, 3),
      (2, 16, 16, 3),
      (2, 8, 8, 3),
  ]
  np.testing.assert_allclose(levels[0], 0.0, atol=1e-12)
  np.testing.assert_allclose(levels[1], 0.0, atol=1e-12)
  np.testing.assert_allclose(levels[2], 0.7)


# ---------------------------------------------------------------------------
# Token NLL.


def test_token_nll_hand_values():
  logits = np.zeros((2, 3, 4))
  logits[0, 0] = [np.log(3.0), 0.0, 0.0, 0.0]  # p(token 0) = 3 / 6.
  tokens = np.array([[0, 1, 2], [3, 3, 3]])
  mask = np.array([[True, False, True], [False, True, False]])
  expected = [(np.log(2.0) + np.log(4.0)) / 2, np.log(4.0)]
  np.testing.assert_allclose(metrics.token_nll(logits, tokens, mask), expected)


def test_token_nll_rejects_bad_inputs():
  logits = np.zeros((2, 3, 4))
  tokens = np.zeros((2, 3), int)
  mask = np.ones((2, 3), bool)
  with pytest.raises(ValueError, match="at least one masked"):
    metrics.token_nll(logits, tokens, mask & np.array([[True], [False]]))
  with pytest.raises(ValueError, match=r"\(2, 3, 4\) and \(2, 2\)"):
    metrics.token_nll(logits, tokens[:, :2], mask)
  with pytest.raises(ValueError, match=r"\[0, 4\)"):
    metrics.token_nll(logits, tokens + 4, mask)
  with pytest.raises(ValueError, match="bool mask"):
    metrics.token_nll(logits, tokens, mask.astype(int))


# ---------------------------------------------------------------------------
# FID / KID.


def test_frechet_distance_diagonal_closed_form():
  mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
  s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
  expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
  np.testing.assert_allclose(
      feature_distances.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)),
      expected,
  )
  np.testing.assert_allclose(
      feature_distances.frechet_distance(0.0, 4.0, 1.0, 1.0),
      1.0 + 4.0 + 1.0 - 2.0 * 2.0,
  )


def test_frechet_distance_matches_sqrtm_formula():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(2, 6, 6))
  sigma1, sigma2 = a @ a.T + 0.1 * np.eye(6), b @ b.T
  mu1, mu2 = rng.normal(size=(2, 6))
  covmean = scipy.linalg.sqrtm(sigma1 @ sigma2).real
  expected = (
      np.sum((mu1 - mu2) ** 2)
      + np.trace(sigma1)
      + np.trace(sigma2)
      - 2 * np.trace(covmean)
  )
  np.testing.assert_allclose(
      feature_distances.frechet_distance(mu1, sigma1, mu2, sigma2),
      expected,
      rtol=1e-8,
  )
  with pytest.raises(ValueError, match="sigma2"):
    feature_distances.frechet_distance(mu1, sigma1, mu2, sigma2[:5, :5])


def test_fid_from_features_self_and_known_gaussians():
  rng = np.random.default_rng(0)
  features = rng.normal(size=(200, 8))
  assert abs(feature_distances.fid_from_features(features, features)) < 1e-8
  # Large samples of N(0, I) and N(1, 4 I) in 2-D: FID -> 2 * 1 + 2 * 1.
  f1 = rng.normal(size=(20000, 2))
  f2 = 1.0 + 2.0 * rng.normal(size=(20000, 2))
  np.testing.assert_allclose(
      feature_distances.fid_from_features(f1, f2), 4.0, atol=0.1
  )
  with pytest.raises(ValueError, match="dimension"):
    feature_distances.fid_from_features(features, features[:, :4])
  with pytest.raises(ValueError, match="N >= 2"):
    feature_distances.fid_from_features(features[:1], features)


def test_fid_and_kid_with_a_feature_function():
  images = _textured_images(12, size=16, seed=1)

  def mean_colour(batch):
    return batch.mean(axis=(1, 2))

  expected = feature_distances.fid_from_features(
      mean_colour(images), mean_colour(images[::-1] * 0.5)
  )
  np.testing.assert_allclose(
      feature_distances.fid(
          images, images[::-1] * 0.5, mean_colour, batch_size=5
      ),
      expected,
  )
  assert expected > 0
  kid_mean, _ = feature_distances.kid(
      images,
      images * 0.5,
      mean_colour,
      batch_size=5,
      num_subsets=5,
      subset_size=6,
  )
  assert kid_mean > 0


def test_kid_same_and_shifted_distributions():
  rng = np.random.default_rng(0)
  f1, f2 = rng.normal(size=(2, 400, 16))
  same_mean, same_std = feature_distances.kid_from_features(
      f1, f2, num_subsets=20, subset_size=200
  )
  shifted_mean, _ = feature_distances.kid_from_features(
      f1, f2 + 0.5, num_subsets=20, subset_size=200
  )
  assert abs(same_mean) < 0.02 and same_std > 0
  assert shifted_mean > 10 * max(abs(same_mean), same_std)
  with pytest.raises(ValueError, match="subset_size"):
    feature_distances.kid_from_features(f1, f2[:50], subset_size=100)


# ---------------------------------------------------------------------------
# Reporting.


def test_mean_ci_hand_computation():
  mean, half_width = intervals.mean_ci([1.0, 2.0, 3.0, 4.0])
  # t_{0.975, 3} = 3.182446; sample std = sqrt(5 / 3).
  assert mean == 2.5
  np.testing.assert_allclose(
      half_width, 3.182446 * np.sqrt(5 / 3) / 2, rtol=1e-6
  )
  _, narrower = intervals.mean_ci([1.0, 2.0, 3.0, 4.0], confidence=0.5)
  assert narrower < half_width


def test_mean_ci_rejects_bad_inputs():
  with pytest.raises(ValueError, match="at least 2"):
    intervals.mean_ci([1.0])
  with pytest.raises(ValueError, match="not finite"):
    intervals.mean_ci([1.0, np.inf])


def test_cluster_bootstrap_resamples_whole_clusters():
  rng = np.random.default_rng(0)
  values = rng.normal(size=30)
  single = intervals.cluster_bootstrap_ci(values, np.arange(30), rng=1)
  # Each value twice in its cluster: the same clusters, so the same interval.
  doubled = intervals.cluster_bootstrap_ci(
      np.repeat(values, 2), np.repeat(np.arange(30), 2), rng=1
  )
  np.testing.assert_allclose(doubled, single)
  # Treating the duplicates as independent would narrow it.
  naive = intervals.cluster_bootstrap_ci(
      np.repeat(values, 2), np.arange(60), rng=1
  )
  assert naive[2] - naive[1] < 0.8 * (single[2] - single[1])
  assert single[1] < single[0] < single[2]
  with pytest.raises(ValueError, match="finite"):
    intervals.cluster_bootstrap_ci([1.0, np.nan], [0, 1])
  with pytest.raises(ValueError, match="one shape"):
    intervals.cluster_bootstrap_ci([1.0, 2.0], [0, 1, 2])
