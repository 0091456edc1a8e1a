"""Tests for jaxmani.masks.filters against scipy.ndimage and torchvision oracles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jaxmani.masks import filters


def _images(seed: int, shape: tuple[int, ...] = (2, 9, 11, 3)) -> np.ndarray:
    """Seeded random float32 images in [-1, 1]."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(np.float32)


def _per_plane(fn, images: np.ndarray) -> np.ndarray:
    """Applies a 2-D numpy function to every (image, channel) plane of an NHWC array."""
    out = np.empty(images.shape, np.float64)
    for b in range(images.shape[0]):
        for c in range(images.shape[-1]):
            out[b, :, :, c] = fn(images[b, :, :, c].astype(np.float64))
    return out


def test_to_grey_is_channel_mean():
    images = _images(0)
    grey = filters.to_grey(jnp.asarray(images))
    assert grey.shape == (2, 9, 11, 1)
    np.testing.assert_allclose(grey[..., 0], images.mean(axis=-1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("padding", "mode"), [("zero", "constant"), ("replicate", "nearest")])
def test_laplacian_matches_scipy_convolve(padding, mode):
    images = _images(1, (2, 8, 7, 2))
    kernel = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float64)
    expected = _per_plane(lambda p: ndimage.convolve(p, kernel, mode=mode, cval=0.0), images)
    result = filters.laplacian(jnp.asarray(images), padding)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)


def test_laplacian_of_linear_ramp_is_zero_inside_and_not_at_zero_border():
    ramp = np.broadcast_to(np.arange(6, dtype=np.float32)[None, None, :, None], (1, 5, 6, 1))
    replicate = np.asarray(filters.laplacian(jnp.asarray(ramp), "replicate"))
    zero = np.asarray(filters.laplacian(jnp.asarray(ramp), "zero"))
    np.testing.assert_array_equal(replicate[0, :, 1:-1, 0], 0.0)
    np.testing.assert_array_equal(replicate[0, :, -1, 0], -1.0)
    np.testing.assert_array_equal(zero[0, 0, 1:-1, 0], -np.arange(1, 5, dtype=np.float32))


def test_laplacian_rejects_unknown_padding():
    with pytest.raises(ValueError, match="padding"):
        filters.laplacian(jnp.zeros((1, 4, 4, 1)), "reflect")


@pytest.mark.parametrize("kernel_size", [3, 5, 9])
def test_box_blur_matches_uniform_filter(kernel_size):
    images = _images(2, (2, 12, 10, 3))
    expected = _per_plane(
        lambda p: ndimage.uniform_filter(p, size=kernel_size, mode="constant", cval=0.0), images
    )
    result = filters.box_blur(jnp.asarray(images), kernel_size, channel_mix=False)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel_size", [5, 9])
def test_box_blur_channel_mix_is_seed_cross_channel_conv(kernel_size):
    images = _images(3, (2, 12, 12, 3))
    box = _per_plane(
        lambda p: ndimage.uniform_filter(p, size=kernel_size, mode="constant", cval=0.0), images
    )
    expected = np.repeat(box.mean(axis=-1, keepdims=True), 3, axis=-1)
    result = filters.box_blur(jnp.asarray(images), kernel_size, channel_mix=True)
    assert result.shape == images.shape
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)


def test_box_blur_of_constant_darkens_only_the_border():
    ones = jnp.ones((1, 7, 7, 1))
    result = np.asarray(filters.box_blur(ones, 3, channel_mix=False))[0, :, :, 0]
    np.testing.assert_allclose(result[1:-1, 1:-1], 1.0, rtol=1e-6)
    np.testing.assert_allclose(result[0, 0], 4.0 / 9.0, rtol=1e-6)
    np.testing.assert_allclose(result[0, 3], 6.0 / 9.0, rtol=1e-6)


def test_box_blur_rejects_even_kernel():
    with pytest.raises(ValueError, match="odd"):
        filters.box_blur(jnp.zeros((1, 8, 8, 3)), 4, channel_mix=False)


_jit_gaussian_blur = jax.jit(filters.gaussian_blur, static_argnums=(1,))


def _torchvision_taps(kernel_size: int, sigma: float) -> np.ndarray:
    """The normalised 1-D Gaussian taps torchvision builds for GaussianBlur."""
    x = np.linspace(-(kernel_size // 2), kernel_size // 2, kernel_size)
    taps = np.exp(-0.5 * (x / sigma) ** 2)
    return taps / taps.sum()


@pytest.mark.parametrize(("kernel_size", "sigma"), [(5, 1.0), (3, 0.7), (9, 2.0)])
def test_gaussian_blur_matches_scipy_mirror_correlation(kernel_size, sigma):
    images = _images(4, (2, 13, 11, 3)) * 127.5 + 127.5
    taps = _torchvision_taps(kernel_size, sigma)

    def blur(plane: np.ndarray) -> np.ndarray:
        rows = ndimage.correlate1d(plane, taps, axis=0, mode="mirror")
        return ndimage.correlate1d(rows, taps, axis=1, mode="mirror")

    result = _jit_gaussian_blur(jnp.asarray(images), kernel_size, sigma)
    np.testing.assert_allclose(result, _per_plane(blur, images), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize(("kernel_size", "sigma"), [(5, 1.0), (7, 1.5)])
def test_gaussian_blur_matches_torchvision(kernel_size, sigma):
    torch = pytest.importorskip("torch")
    transforms = pytest.importorskip("torchvision.transforms")
    images = _images(5, (2, 16, 12, 3)) * 127.5 + 127.5
    blur = transforms.GaussianBlur(kernel_size, sigma=sigma)
    expected = blur(torch.from_numpy(images).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    result = _jit_gaussian_blur(jnp.asarray(images), kernel_size, sigma)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-3)


def _binary(seed: int, shape: tuple[int, ...] = (2, 10, 9, 2)) -> np.ndarray:
    """Seeded random {0, 1} float32 maps, mostly ones so erosion has work to do."""
    return (np.random.default_rng(seed).uniform(size=shape) < 0.8).astype(np.float32)


@pytest.mark.parametrize(("size", "origin"), [(2, (1, 1)), (2, (0, 0)), (3, (1, 1)), (3, (0, 2))])
def test_erode_matches_scipy_minimum_filter(size, origin):
    binary = _binary(6)
    scipy_origin = (origin[0] - size // 2, origin[1] - size // 2)
    expected = _per_plane(
        lambda p: ndimage.minimum_filter(
            p, size=size, mode="constant", cval=np.inf, origin=scipy_origin
        ),
        binary,
    )
    np.testing.assert_array_equal(filters.erode(jnp.asarray(binary), size, origin), expected)


@pytest.mark.parametrize("size", [3, 7])
def test_dilate_matches_scipy_maximum_filter(size):
    binary = 1.0 - _binary(7)
    expected = _per_plane(
        lambda p: ndimage.maximum_filter(p, size=size, mode="constant", cval=-np.inf), binary
    )
    np.testing.assert_array_equal(filters.dilate(jnp.asarray(binary), size), expected)


def test_erode_default_origin_is_kornia_2x2_window():
    block = np.zeros((1, 7, 7, 1), np.float32)
    block[0, 2:5, 2:5, 0] = 1.0
    expected = np.zeros_like(block)
    expected[0, 3:5, 3:5, 0] = 1.0
    np.testing.assert_array_equal(filters.erode(jnp.asarray(block), 2), expected)


def test_morphology_ignores_pixels_outside_the_image():
    ones = jnp.ones((1, 5, 6, 1))
    np.testing.assert_array_equal(filters.erode(ones, 2), 1.0)
    np.testing.assert_array_equal(filters.erode(ones, 3, (0, 0)), 1.0)
    np.testing.assert_array_equal(filters.dilate(jnp.zeros((1, 5, 6, 1)), 7), 0.0)


def test_erode_rejects_origin_outside_window():
    with pytest.raises(ValueError, match="origin"):
        filters.erode(jnp.ones((1, 4, 4, 1)), 2, (2, 0))


def test_filters_are_jittable_and_deterministic():
    images = jnp.asarray(_images(8, (2, 10, 10, 3)))
    binary = jnp.asarray(_binary(9, (2, 10, 10, 1)))
    cases = [
        (lambda x: filters.laplacian(filters.to_grey(x), "replicate"), images),
        (lambda x: filters.box_blur(x, 5, channel_mix=True), images),
        (lambda x: filters.gaussian_blur(x, 5, 1.0), images),
        (lambda x: filters.dilate(filters.erode(x, 2), 7), binary),
    ]
    for fn, x in cases:
        jitted = jax.jit(fn)
        first = np.asarray(jitted(x))
        np.testing.assert_array_equal(first, np.asarray(jitted(x)))
        np.testing.assert_allclose(first, np.asarray(fn(x)), rtol=1e-6, atol=1e-6)
