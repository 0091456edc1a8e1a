"""toy_birds' paired-edit terms (not methods of the paper): G's edit under the ground-truth edit
caption against the ground-truth edit, over the whole image and over the pixels it recolours."""

import jax
import jax.numpy as jnp


def paired_edit_loss(edit: jax.Array, target: jax.Array) -> jax.Array:
    """mean(|edit - target|) over all B*H*W*C elements."""
    return jnp.mean(jnp.abs(edit - target))


def recoloured_pixels(target: jax.Array, real: jax.Array) -> jax.Array:
    """(B, H, W, 1) 1.0 where the ground-truth edit differs from the real image in any channel."""
    return jnp.any(target != real, axis=-1, keepdims=True).astype(real.dtype)


def edited_region_loss(edit: jax.Array, target: jax.Array, real: jax.Array) -> jax.Array:
    """mean(|edit - target|) over each image's recoloured pixels (0 for an image the edit leaves
    unchanged), then over the batch: the few pixels an edit changes weigh as much as the rest."""
    region = recoloured_pixels(target, real)
    error = jnp.sum(jnp.abs(edit - target) * region, axis=(1, 2, 3))
    count = edit.shape[-1] * jnp.sum(region, axis=(1, 2, 3))
    return jnp.mean(error / jnp.maximum(count, 1.0))
