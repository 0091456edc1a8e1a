"""Gradient Manipulation (paper §II-C, spec §6.6): identity forward, scaled cotangent backward."""

import jax
import jax.numpy as jnp
from jax import lax

from jaxmani.losses.sharpness import sharpness_map, two_means_split

GM_MODES = ("region", "seed")


@jax.custom_vjp
def scale_gradient(x: jax.Array, weights: jax.Array) -> jax.Array:
    """Identity on x whose backward multiplies x's cotangent by `weights` (broadcastable to x)."""
    return x


def _scale_gradient_fwd(x: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Forward pass: identity, keeping the weights for the backward pass."""
    return x, weights


def _scale_gradient_bwd(weights: jax.Array, cotangent: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Backward pass: scaled cotangent for x, zero cotangent for the weights."""
    return (cotangent * weights).astype(cotangent.dtype), jnp.zeros_like(weights)


scale_gradient.defvjp(_scale_gradient_fwd, _scale_gradient_bwd)


def gm_weights(images: jax.Array, mode: str, k: float) -> jax.Array:
    """Per-pixel gradient scale (B,H,W,1) for the generated `images`, without gradient.

    "region" (paper): k inside the 2-means sharp region of the images' own sharpness map, 1
    elsewhere. "seed" (the seed's GradientManipulator): 1 + tanh(|Lap(grey)|), `k` unused.
    """
    sharpness = sharpness_map(lax.stop_gradient(images))
    if mode == "region":
        return jnp.where(two_means_split(sharpness) > 0, k, 1.0).astype(images.dtype)
    if mode == "seed":
        return 1.0 + jnp.tanh(sharpness)
    raise ValueError(f"gradient manipulation mode must be one of {GM_MODES}, got {mode!r}")
