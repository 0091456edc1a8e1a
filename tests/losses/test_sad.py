"""SAD blurred reals: box, Gaussian and seed filters against scipy; random kernel sizes."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jaxmani.losses.sad import SAD_FILTERS, blur_reals

KEY = jax.random.key(0)


def _images(seed: int = 0) -> np.ndarray:
    """Seeded random float32 images in [-1, 1]."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (2, 13, 11, 3)).astype(np.float32)


def _blur(filter: str, kernel_size: int, kernel_size_max: int = 0, sigma: float = 1.5):
    """blur_reals with static options, jitted."""
    return jax.jit(
        functools.partial(
            blur_reals,
            filter=filter,
            kernel_size=kernel_size,
            kernel_size_max=kernel_size_max,
            sigma=sigma,
        )
    )


def _per_plane(fn, images: np.ndarray) -> np.ndarray:
    """Applies a 2-D filter to every (image, channel) plane."""
    out = np.empty(images.shape, np.float64)
    for b in range(images.shape[0]):
        for c in range(images.shape[-1]):
            out[b, :, :, c] = fn(images[b, :, :, c].astype(np.float64))
    return out


@pytest.mark.parametrize("kernel_size", [5, 9])
def test_box_filter_is_per_channel_zero_padded_mean(kernel_size):
    images = _images(1)
    box = functools.partial(ndimage.uniform_filter, size=kernel_size, mode="constant", cval=0.0)
    result = _blur("box", kernel_size)(jnp.asarray(images), KEY)
    np.testing.assert_allclose(result, _per_plane(box, images), rtol=1e-5, atol=1e-6)


def test_seed_filter_is_grey_zero_padded_mean():
    images = _images(2)
    grey = images.mean(axis=-1, keepdims=True)
    box = functools.partial(ndimage.uniform_filter, size=9, mode="constant", cval=0.0)
    expected = np.broadcast_to(_per_plane(box, grey), images.shape)
    result = _blur("seed", 9)(jnp.asarray(images), KEY)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)


def test_gaussian_filter_is_normalised_reflect_padded_gaussian():
    images = _images(3)
    # scipy's "mirror" is torchvision's reflect padding; truncate gives a radius of kernel_size // 2
    gauss = functools.partial(ndimage.gaussian_filter, sigma=1.5, mode="mirror", truncate=2 / 1.5)
    result = _blur("gaussian", 5, sigma=1.5)(jnp.asarray(images), KEY)
    np.testing.assert_allclose(result, _per_plane(gauss, images), rtol=1e-5, atol=1e-6)


def test_random_kernel_size_is_one_of_the_odd_candidates_and_repeatable():
    images = jnp.asarray(_images(4))
    fixed = {k: np.asarray(_blur("box", k)(images, KEY)) for k in (3, 5, 7)}
    drawn = _blur("box", 3, kernel_size_max=7)
    seen = set()
    for seed in range(12):
        key = jax.random.key(seed)
        result = np.asarray(drawn(images, key))
        matches = [k for k, expected in fixed.items() if np.array_equal(result, expected)]
        assert len(matches) == 1
        seen.add(matches[0])
        np.testing.assert_array_equal(drawn(images, key), result)
    assert seen == {3, 5, 7}


def test_blur_carries_no_gradient():
    images = jnp.asarray(_images(5))
    blur = functools.partial(blur_reals, filter="box", kernel_size=3, kernel_size_max=5, sigma=1.0)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(blur(x, KEY))))(images)
    np.testing.assert_array_equal(grad, 0.0)


@pytest.mark.parametrize(
    ("filter", "kernel_size", "kernel_size_max", "message"),
    [
        ("box", 4, 0, "kernel_size"),
        ("box", 0, 0, "kernel_size"),
        ("gaussian", -3, 0, "kernel_size"),
        ("seed", 5, 8, "kernel_size_max"),
        ("median", 5, 0, "box"),
    ],
)
def test_bad_options_are_rejected(filter, kernel_size, kernel_size_max, message):
    assert SAD_FILTERS == ("box", "gaussian", "seed")
    with pytest.raises(ValueError, match=message):
        blur_reals(
            jnp.zeros((1, 8, 8, 3)),
            KEY,
            filter=filter,
            kernel_size=kernel_size,
            kernel_size_max=kernel_size_max,
            sigma=1.0,
        )
