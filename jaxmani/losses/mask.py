"""MAE-mask background loss (paper §II-B, spec §6.1) and the choice of its background mask."""

import jax
import jax.numpy as jnp

from jaxmani.masks.hm import hm_mask

MASK_SOURCES = ("fcn", "gt", "hm", "hm_adaptive")


def mae_mask_loss(real: jax.Array, fake: jax.Array, mask: jax.Array) -> jax.Array:
    """mean(|real - fake| * mask) over all B*H*W*C elements; mask (B,H,W,1), 1 = background."""
    return jnp.mean(jnp.abs(real - fake) * mask)


def _dataset_mask(source: str, real: jax.Array, dataset_mask: jax.Array | None) -> jax.Array:
    """The batch's precomputed mask, checked against the image shape."""
    if dataset_mask is None:
        raise ValueError(f"mask source {source!r} needs the batch's precomputed mask, got None")
    expected = (*real.shape[:-1], 1)
    if dataset_mask.shape != expected:
        raise ValueError(f"dataset mask must have shape {expected}, got {dataset_mask.shape}")
    return dataset_mask.astype(real.dtype)


def background_mask(
    source: str,
    real: jax.Array,
    fake: jax.Array,
    dataset_mask: jax.Array | None,
    threshold: float,
) -> jax.Array:
    """Background mask (B,H,W,1), 1 = keep, without gradient, from one of MASK_SOURCES.

    "fcn" and "gt" return the batch's precomputed mask (FCN-ResNet101 or toy ground truth);
    "hm" computes the histogram-matching mask of (real, fake) with the fixed `threshold` on the
    0..255 scale and "hm_adaptive" with a per-image Otsu threshold (`threshold` unused). Images
    are in [-1, 1]; hm_mask maps them to 0..255 itself.
    """
    if source in ("fcn", "gt"):
        mask = _dataset_mask(source, real, dataset_mask)
    elif source == "hm":
        mask = hm_mask(real, fake, threshold=threshold)
    elif source == "hm_adaptive":
        mask = hm_mask(real, fake, adaptive=True)
    else:
        raise ValueError(f"mask source must be one of {MASK_SOURCES}, got {source!r}")
    return jax.lax.stop_gradient(mask)
