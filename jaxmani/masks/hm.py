"""Histogram-matching (HM) background mask of the seed's Image Comparing method (spec §6.2)."""

import jax
import jax.numpy as jnp

from jaxmani.masks.filters import dilate, erode, gaussian_blur

_BLUR_KERNEL_SIZE = 5
_BLUR_SIGMA = 1.0
_OTSU_BINS = 256
_OTSU_RANGE = 255.0


def match_histograms(source: jax.Array, reference: jax.Array) -> jax.Array:
    """Exact sort-based histogram matching of `source` to `reference`, per image and channel.

    The k-th smallest reference value is written where the k-th smallest source value is; ties in
    the source are ordered by a stable argsort (raster order). Both arrays are (B,H,W,C).
    """
    if source.shape != reference.shape:
        raise ValueError(f"shapes differ: {source.shape} vs {reference.shape}")
    batch, height, width, channels = source.shape
    src = jnp.moveaxis(source, -1, 1).reshape(batch, channels, height * width)
    ref = jnp.moveaxis(reference, -1, 1).reshape(batch, channels, height * width)
    order = jnp.argsort(src, axis=-1, stable=True)
    matched = jnp.put_along_axis(
        jnp.zeros_like(ref), order, jnp.sort(ref, axis=-1), axis=-1, inplace=False
    )
    return jnp.moveaxis(matched.reshape(batch, channels, height, width), 1, -1)


def _safe_divide(numerator: jax.Array, denominator: jax.Array) -> jax.Array:
    """numerator / denominator, 0 where the denominator is 0."""
    nonzero = denominator > 0
    return jnp.where(nonzero, numerator / jnp.where(nonzero, denominator, 1.0), 0.0)


def _otsu_single(values: jax.Array) -> jax.Array:
    """Otsu threshold (a bin centre) of one flat array, 256 bins on [0, 255]."""
    width = _OTSU_RANGE / _OTSU_BINS
    bins = jnp.clip(jnp.floor(values / width), 0, _OTSU_BINS - 1).astype(jnp.int32)
    probs = jnp.bincount(bins, length=_OTSU_BINS) / values.size
    centres = (jnp.arange(_OTSU_BINS, dtype=jnp.float32) + 0.5) * width
    weight_low = jnp.cumsum(probs)[:-1]
    mass_low = jnp.cumsum(probs * centres)[:-1]
    weight_high = 1.0 - weight_low
    mass_high = jnp.sum(probs * centres) - mass_low
    mean_gap = _safe_divide(mass_low, weight_low) - _safe_divide(mass_high, weight_high)
    between_var = jnp.where(
        (weight_low > 0) & (weight_high > 0), weight_low * weight_high * mean_gap**2, 0.0
    )
    return centres[jnp.argmax(between_var)]


def otsu_threshold(values: jax.Array) -> jax.Array:
    """Per-image Otsu threshold of (B, ...) values on the 0..255 scale (256 bins), shape (B,).

    Pixels with a value above the threshold form the upper class, as in skimage.
    """
    return jax.vmap(_otsu_single)(values.reshape(values.shape[0], -1))


def hm_mask(
    real: jax.Array,
    fake: jax.Array,
    *,
    threshold: float = 32.5,
    adaptive: bool = False,
    adaptive_floor: float = 1.0,
    suppress_above: float = 160.0,
    erosion_size: int = 2,
    dilation_size: int = 7,
) -> jax.Array:
    """HM background mask (B,H,W,1) for images in [-1, 1]: 1 = background to keep, 0 = changed.

    Both images go to 0..255, the real one is histogram-matched to the fake one and floored, both
    are Gaussian-blurred (k5, sigma 1), and a pixel is changed when the blurred absolute difference
    of any channel lies in (threshold, suppress_above]. The binary map is eroded, then dilated,
    then inverted. `adaptive=True` replaces `threshold` by the per-image Otsu threshold of the
    channel-max difference, raised to at least `adaptive_floor` (flooring alone moves values by
    less than one grey level, which Otsu would otherwise split). No gradient flows through the mask.
    """
    real_255 = (jax.lax.stop_gradient(real).astype(jnp.float32) + 1.0) * 127.5
    fake_255 = (jax.lax.stop_gradient(fake).astype(jnp.float32) + 1.0) * 127.5
    matched = jnp.floor(match_histograms(real_255, fake_255))
    diff = jnp.abs(
        gaussian_blur(matched, _BLUR_KERNEL_SIZE, _BLUR_SIGMA)
        - gaussian_blur(fake_255, _BLUR_KERNEL_SIZE, _BLUR_SIGMA)
    )
    diff = jnp.where(diff > suppress_above, 0.0, diff)
    strongest = jnp.max(diff, axis=-1, keepdims=True)
    if adaptive:
        cut = jnp.maximum(otsu_threshold(strongest), adaptive_floor)[:, None, None, None]
    else:
        cut = threshold
    changed = (strongest > cut).astype(jnp.float32)
    changed = dilate(erode(changed, erosion_size), dilation_size)
    return 1.0 - changed
