"""Gradient Manipulation: the custom-VJP identity and its two weight maps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmani.losses import sharpness
from jaxmani.losses.gradient import gm_weights, scale_gradient
from jaxmani.losses.mask import mae_mask_loss


def _images(seed: int, shape=(2, 6, 5, 3)) -> jax.Array:
    """Seeded random float32 images in [-1, 1]."""
    return jnp.asarray(np.random.default_rng(seed).uniform(-1.0, 1.0, shape), jnp.float32)


def test_forward_is_identity_and_weights_get_no_gradient():
    x, weights = _images(0), jnp.full((2, 6, 5, 1), 3.0)
    np.testing.assert_array_equal(jax.jit(scale_gradient)(x, weights), x)
    grad_weights = jax.grad(lambda w: jnp.sum(scale_gradient(x, w) ** 2))(weights)
    np.testing.assert_array_equal(grad_weights, 0.0)


def test_gradient_is_scaled_by_hand_made_weights():
    x = jnp.array([[[[1.0, -2.0, 0.5]], [[3.0, 0.0, -1.0]]]])  # (1, 2, 1, 3)
    weights = jnp.array([[[[2.0]], [[0.5]]]])  # (1, 2, 1, 1): one weight per pixel

    def f(v):
        return jnp.sum(v**3)

    expected = np.array([[[[6.0, 24.0, 1.5]], [[13.5, 0.0, 1.5]]]])  # weight * 3 v^2
    grad = jax.jit(jax.grad(lambda v: f(scale_gradient(v, weights))))(x)
    np.testing.assert_allclose(grad, expected, rtol=1e-6)
    np.testing.assert_allclose(grad, weights * jax.grad(f)(x), rtol=1e-6)


def test_scaling_composes_under_a_sum_of_losses():
    fake, real = _images(1), _images(2)
    weights = 1.5 + 0.5 * _images(3, (2, 6, 5, 1))
    mask = (_images(4, (2, 6, 5, 1)) > 0).astype(jnp.float32)
    label = jax.jit(sharpness.sharp_region)(real)

    def losses(x):
        return (
            25.0 * mae_mask_loss(real, x, mask)
            + sharpness.naive_sharpness_loss(x, label, 0.1)
            + jnp.mean(jnp.tanh(x) ** 2)
        )

    def wrapped(x):
        return losses(scale_gradient(x, weights))

    grads = jax.jit(lambda x: (jax.grad(wrapped)(x), jax.grad(losses)(x)))(fake)
    np.testing.assert_allclose(grads[0], weights * grads[1], rtol=1e-5, atol=1e-8)
    assert not np.allclose(grads[0], grads[1])
    values = jax.jit(lambda x: (wrapped(x), losses(x)))(fake)
    np.testing.assert_array_equal(values[0], values[1])


def test_region_weights_are_k_inside_the_images_own_sharp_region():
    images = _images(5, (2, 8, 8, 3)).at[:, :, :4].set(0.1)
    region = jax.jit(sharpness.sharp_region)(images)
    weights = jax.jit(gm_weights, static_argnames="mode")(images, "region", 1.5)
    assert weights.shape == (2, 8, 8, 1)
    np.testing.assert_array_equal(weights, np.where(region > 0, 1.5, 1.0))
    assert 0 < float(region.sum()) < region.size


def test_seed_weights_are_one_plus_tanh_of_sharpness():
    images = jnp.zeros((1, 5, 5, 3)).at[0, 2, 2].set(0.25)  # |Lap| = 1 at centre, 0.25 at sides
    weights = np.asarray(jax.jit(gm_weights, static_argnames="mode")(images, "seed", 1.5))[
        0, ..., 0
    ]
    expected = np.ones((5, 5))
    expected[2, 2] = 1.0 + np.tanh(1.0)
    expected[[1, 3, 2, 2], [2, 2, 1, 3]] = 1.0 + np.tanh(0.25)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)


@pytest.mark.parametrize("mode", ["region", "seed"])
def test_weights_carry_no_gradient(mode):
    images = _images(6)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(gm_weights(x, mode, 1.5))))(images)
    np.testing.assert_array_equal(grad, 0.0)


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="region"):
        gm_weights(_images(7), "paper", 1.5)
