"""KL divergence of the conditioning-augmentation Gaussian from N(0, I) (spec §4.2)."""

import jax
import jax.numpy as jnp


def kl_loss(mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """-0.5 * mean(1 + logvar - mu^2 - exp(logvar)) over all elements."""
    return -0.5 * jnp.mean(1.0 + logvar - jnp.square(mu) - jnp.exp(logvar))
