"""Tests for jaxmani.masks.hm: histogram matching, Otsu threshold and the HM mask."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jaxmani.masks import hm


def _match_reference(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """numpy restatement of spec §6.2 step 1 with a stable argsort."""
    out = np.empty(source.shape, np.float64)
    for b in range(source.shape[0]):
        for c in range(source.shape[-1]):
            order = np.argsort(source[b, :, :, c].ravel(), kind="stable")
            plane = np.empty(order.size, np.float64)
            plane[order] = np.sort(reference[b, :, :, c].ravel())
            out[b, :, :, c] = plane.reshape(source.shape[1:3])
    return out


def test_match_histograms_equals_skimage_for_distinct_values():
    exposure = pytest.importorskip("skimage.exposure")
    rng = np.random.default_rng(0)
    source = rng.uniform(0.0, 255.0, (2, 12, 10, 3)).astype(np.float32)
    reference = (rng.uniform(0.0, 1.0, (2, 12, 10, 3)) ** 2 * 200.0 + 20.0).astype(np.float32)
    result = np.asarray(hm.match_histograms(jnp.asarray(source), jnp.asarray(reference)))
    for b in range(2):
        expected = exposure.match_histograms(source[b], reference[b], channel_axis=-1)
        np.testing.assert_allclose(result[b], expected, rtol=1e-6)


def test_match_histograms_breaks_ties_in_raster_order():
    rng = np.random.default_rng(1)
    source = rng.integers(0, 4, (2, 6, 5, 3)).astype(np.float32)
    reference = rng.uniform(-1.0, 1.0, (2, 6, 5, 3)).astype(np.float32)
    result = hm.match_histograms(jnp.asarray(source), jnp.asarray(reference))
    np.testing.assert_array_equal(result, _match_reference(source, reference))


def test_match_histograms_keeps_each_reference_histogram_and_source_order():
    rng = np.random.default_rng(2)
    source = rng.normal(size=(3, 8, 8, 2)).astype(np.float32)
    reference = rng.exponential(size=(3, 8, 8, 2)).astype(np.float32)
    result = np.asarray(hm.match_histograms(jnp.asarray(source), jnp.asarray(reference)))
    flat = lambda x: np.moveaxis(x, -1, 1).reshape(3, 2, -1)  # noqa: E731
    np.testing.assert_array_equal(np.sort(flat(result)), np.sort(flat(reference)))
    np.testing.assert_array_equal(np.argsort(flat(result)), np.argsort(flat(source)))


def test_match_histograms_rejects_different_shapes():
    with pytest.raises(ValueError, match="shapes"):
        hm.match_histograms(jnp.zeros((1, 4, 4, 3)), jnp.zeros((1, 4, 5, 3)))


def test_otsu_threshold_matches_skimage():
    filters = pytest.importorskip("skimage.filters")
    rng = np.random.default_rng(3)
    low = rng.normal(40.0, 12.0, (3, 20, 20))
    high = rng.normal([[[150.0]], [[190.0]], [[110.0]]], 25.0, (3, 20, 20))
    values = np.where(rng.uniform(size=(3, 20, 20)) < [[[0.7]], [[0.4]], [[0.55]]], low, high)
    values = np.clip(values, 0.0, 255.0).astype(np.float32)
    values[:, 0, 0], values[:, 0, 1] = 0.0, 255.0
    result = np.asarray(jax.jit(hm.otsu_threshold)(jnp.asarray(values)))
    expected = [filters.threshold_otsu(values[b].astype(np.float64), nbins=256) for b in range(3)]
    np.testing.assert_allclose(result, expected, rtol=1e-6)
    assert len(set(np.round(result, 3))) == 3


def test_otsu_threshold_of_constant_image_is_first_bin_centre():
    result = jax.jit(hm.otsu_threshold)(jnp.zeros((2, 5, 5, 1)))
    np.testing.assert_allclose(result, [255.0 / 512.0] * 2, rtol=1e-6)


def _blur_reference(images: np.ndarray) -> np.ndarray:
    """torchvision GaussianBlur(5, 1) restated with scipy (reflect = scipy "mirror")."""
    taps = np.exp(-0.5 * np.arange(-2.0, 3.0) ** 2)
    taps /= taps.sum()
    rows = ndimage.correlate1d(images, taps, axis=1, mode="mirror")
    return ndimage.correlate1d(rows, taps, axis=2, mode="mirror")


def _hm_mask_reference(real: np.ndarray, fake: np.ndarray, suppress_above: float) -> np.ndarray:
    """numpy/scipy restatement of hm_mask's fixed-threshold path (spec §6.2 on the 0..255 scale)."""
    real_255 = ((real + np.float32(1.0)) * np.float32(127.5)).astype(np.float64)
    fake_255 = ((fake + np.float32(1.0)) * np.float32(127.5)).astype(np.float64)
    matched = np.floor(_match_reference(real_255, fake_255))
    diff = np.abs(_blur_reference(matched) - _blur_reference(fake_255))
    diff[diff > suppress_above] = 0.0
    changed = (diff > 32.5).any(axis=-1, keepdims=True).astype(np.float64)
    eroded = ndimage.minimum_filter(
        changed, size=(1, 2, 2, 1), mode="constant", cval=np.inf, origin=0
    )
    dilated = ndimage.maximum_filter(eroded, size=(1, 7, 7, 1), mode="constant", cval=-np.inf)
    return 1.0 - dilated


_jit_hm_mask = jax.jit(hm.hm_mask, static_argnames=("adaptive", "erosion_size", "dilation_size"))


def _reference_pair() -> tuple[np.ndarray, np.ndarray]:
    """Smooth random real images; the fakes differ by noise, a split square and a dimmed block."""
    rng = np.random.default_rng(4)
    real = ndimage.uniform_filter(rng.uniform(-1.0, 1.0, (2, 32, 32, 3)), size=(1, 3, 3, 1))
    real = np.clip(real * 2.0, -1.0, 1.0).astype(np.float32)
    fake = real.copy()
    fake[:, 2:10, 4:16, :] = rng.uniform(-1.0, 1.0, (2, 8, 12, 3))
    real[0, 14:30, 12:20, 0], real[0, 14:30, 20:28, 0] = 1.0, -1.0
    fake[0, 14:30, 12:20, 0], fake[0, 14:30, 20:28, 0] = -1.0, 1.0
    fake[1, 16:26, 14:26, :] = np.clip(real[1, 16:26, 14:26, :] * 0.2 - 0.95, -1.0, 1.0)
    return real, fake


def test_reference_pair_exercises_the_suppression():
    real, fake = _reference_pair()
    with_cut = _hm_mask_reference(real, fake, 160.0)
    assert not np.array_equal(with_cut, _hm_mask_reference(real, fake, np.inf))


@pytest.mark.parametrize("suppress_above", [160.0, np.inf])
def test_hm_mask_matches_numpy_scipy_reference(suppress_above):
    real, fake = _reference_pair()
    expected = _hm_mask_reference(real, fake, suppress_above)
    assert 0.0 < np.mean(expected) < 1.0
    result = _jit_hm_mask(jnp.asarray(real), jnp.asarray(fake), suppress_above=suppress_above)
    assert result.shape == (2, 32, 32, 1)
    assert result.dtype == jnp.float32
    np.testing.assert_array_equal(result, expected)


def test_hm_mask_of_identical_images_is_all_ones():
    real = jnp.asarray(np.random.default_rng(5).uniform(-1.0, 1.0, (1, 32, 32, 3)), jnp.float32)
    np.testing.assert_array_equal(_jit_hm_mask(real, real), 1.0)
    np.testing.assert_array_equal(_jit_hm_mask(real, real, adaptive=True), 1.0)
    noisy = _jit_hm_mask(real, real, adaptive=True, adaptive_floor=0.0)
    assert float(jnp.min(noisy)) == 0.0


def test_hm_mask_ignores_a_global_colour_shift():
    real = np.random.default_rng(6).uniform(-1.0, 0.4, (1, 32, 32, 3)).astype(np.float32)
    fake = real + np.float32(0.5)
    assert np.all(np.abs(fake - real) * 127.5 > 32.5)
    np.testing.assert_array_equal(_jit_hm_mask(jnp.asarray(real), jnp.asarray(fake)), 1.0)


def _split_square_pair(diff: float) -> tuple[jax.Array, jax.Array]:
    """Grey background with a square whose halves swap brightness between real and fake.

    Both images have the same histogram per channel, so matching leaves the real image unchanged
    and the difference is `diff` grey levels in channels 0 and 1 inside the square (rows 10..19,
    cols 8..21) and 0 elsewhere. Returned in [-1, 1].
    """
    real = np.full((1, 32, 32, 3), 100.0, np.float32)
    fake = real.copy()
    real[0, 10:20, 8:15, :2], real[0, 10:20, 15:22, :2] = 100.0 + diff / 2, 100.0 - diff / 2
    fake[0, 10:20, 8:15, :2], fake[0, 10:20, 15:22, :2] = 100.0 - diff / 2, 100.0 + diff / 2
    return jnp.asarray(real / 127.5 - 1.0), jnp.asarray(fake / 127.5 - 1.0)


def test_hm_mask_zeroes_exactly_the_eroded_then_dilated_square():
    real, fake = _split_square_pair(100.0)
    result = np.asarray(_jit_hm_mask(real, fake))[0, :, :, 0]
    expected = np.ones((32, 32))
    expected[10 + 1 - 3 : 19 + 3 + 1, 8 + 1 - 3 : 21 + 3 + 1] = 0.0
    np.testing.assert_array_equal(result, expected)


def test_hm_mask_drops_differences_above_suppress_above():
    real, fake = _split_square_pair(100.0)
    np.testing.assert_array_equal(_jit_hm_mask(real, fake, suppress_above=30.0), 1.0)


def test_adaptive_threshold_finds_a_change_the_fixed_threshold_misses():
    real, fake = _split_square_pair(24.0)
    np.testing.assert_array_equal(_jit_hm_mask(real, fake), 1.0)
    adaptive = np.asarray(_jit_hm_mask(real, fake, adaptive=True))[0, :, :, 0]
    np.testing.assert_array_equal(adaptive[10:20, 8:22], 0.0)
    np.testing.assert_array_equal(adaptive[:4], 1.0)
    np.testing.assert_array_equal(adaptive[:, -4:], 1.0)


def test_hm_mask_is_jittable_deterministic_and_gradient_free():
    real, fake = _split_square_pair(24.0)
    mask_fn = functools.partial(hm.hm_mask, adaptive=True)
    first = jax.jit(mask_fn)(real, fake)
    np.testing.assert_array_equal(first, jax.jit(mask_fn)(real, fake))
    np.testing.assert_array_equal(first, _jit_hm_mask(real, fake, adaptive=True))
    assert 0.0 < float(jnp.mean(first)) < 1.0
    grad = jax.jit(jax.grad(lambda f: jnp.sum(mask_fn(real, f) * f)))(fake)
    np.testing.assert_array_equal(grad, jnp.broadcast_to(first, fake.shape))
