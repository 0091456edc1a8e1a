"""Perceptual loss: mean squared difference of feature maps, closed form and torch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmani.losses.perceptual import perceptual_loss


def test_perceptual_loss_is_mean_squared_difference():
    real = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    fake = jnp.array([[1.0, 0.0], [6.0, 4.0]])
    assert float(jax.jit(perceptual_loss)(real, fake)) == pytest.approx((4.0 + 9.0) / 4.0)
    grad = jax.grad(perceptual_loss, argnums=1)(real, fake)
    np.testing.assert_allclose(grad, 2.0 * (fake - real) / 4.0)


def test_perceptual_loss_matches_torch_mse():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(2, 2, 4, 4, 8)).astype(np.float32)
    expected = torch.nn.functional.mse_loss(torch.from_numpy(fake), torch.from_numpy(real))
    np.testing.assert_allclose(perceptual_loss(real, fake), expected.item(), rtol=1e-6)
