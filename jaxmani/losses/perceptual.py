"""Perceptual (VGG relu2_2 feature) loss of the generator (spec §4.2)."""

import jax
import jax.numpy as jnp


def perceptual_loss(real_features: jax.Array, fake_features: jax.Array) -> jax.Array:
    """Mean squared difference of two feature maps over all elements (weight applied by caller)."""
    return jnp.mean(jnp.square(real_features - fake_features))
