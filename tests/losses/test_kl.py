"""KL term of the conditioning augmentation: closed form and gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmani.losses.kl import kl_loss


def test_kl_loss_closed_form():
    assert float(kl_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)))) == 0.0
    mu = jnp.array([[1.0, 0.0]])
    logvar = jnp.array([[0.0, np.log(4.0)]])
    # per element: 0.5 * (sigma^2 + mu^2 - 1 - log sigma^2), averaged over the 2 elements
    expected = 0.5 * ((1.0 + 1.0 - 1.0) + (4.0 - 1.0 - np.log(4.0))) / 2.0
    assert float(jax.jit(kl_loss)(mu, logvar)) == pytest.approx(expected, rel=1e-6)


def test_kl_loss_gradient():
    rng = np.random.default_rng(1)
    mu, logvar = jnp.asarray(rng.normal(size=(2, 3, 5)), jnp.float32)
    grad_mu, grad_logvar = jax.grad(kl_loss, argnums=(0, 1))(mu, logvar)
    np.testing.assert_allclose(grad_mu, mu / 15.0, rtol=1e-5)
    np.testing.assert_allclose(grad_logvar, 0.5 * (jnp.exp(logvar) - 1.0) / 15.0, rtol=1e-5)
