"""Sharpness maps, the 2-means sharp-region split and the Naive Sharpness Loss (spec §6.4, §6.7)."""

import jax
import jax.numpy as jnp
from jax import lax

from jaxmani.losses.adversarial import clamped_log
from jaxmani.masks.filters import box_blur, laplacian, to_grey

SHARP_FLOOR = 0.5 / 255.0  # the seed's SharpDetector raises smaller |Laplacian| values to this
SHARP_BOX_SIZE = 5  # the seed's SharpDetector box mean, zero padding 2


def sharpness_map(images: jax.Array) -> jax.Array:
    """|Laplacian| of the grey (channel-mean) image with replicate padding, shape (B,H,W,1)."""
    return jnp.abs(laplacian(to_grey(images), padding="replicate"))


def _cluster_mean(flat: jax.Array, members: jax.Array, fallback: jax.Array) -> jax.Array:
    """Per-row mean of `flat` over `members`, `fallback` for rows with no member."""
    count = jnp.sum(members, axis=1, keepdims=True)
    total = jnp.sum(jnp.where(members, flat, 0.0), axis=1, keepdims=True)
    return jnp.where(count > 0, total / jnp.maximum(count, 1), fallback)


def _refine_threshold(flat: jax.Array, threshold: jax.Array) -> jax.Array:
    """One 2-means step: the midpoint of the means above and at-or-below the threshold."""
    above = flat > threshold
    high = _cluster_mean(flat, above, threshold)
    low = _cluster_mean(flat, ~above, threshold)
    return 0.5 * (high + low)


def two_means_split(values: jax.Array, iterations: int = 20) -> jax.Array:
    """Per-image 1-D 2-means of (B,H,W,1) values by iterative thresholding; 1 = sharp cluster.

    The threshold starts at the image mean and moves to the midpoint of the two cluster means
    `iterations` times (Lloyd's algorithm in 1-D). An empty cluster keeps the threshold as its
    mean, so a constant image gives all zeros and no NaN. No gradient flows through the labels.
    """
    flat = lax.stop_gradient(values).reshape(values.shape[0], -1)
    start = jnp.mean(flat, axis=1, keepdims=True)
    threshold = lax.fori_loop(0, iterations, lambda _, t: _refine_threshold(flat, t), start)
    return (flat > threshold).astype(values.dtype).reshape(values.shape)


def sharp_region(real: jax.Array) -> jax.Array:
    """NSL target: the 2-means sharp cluster (1) of the real image's sharpness map, (B,H,W,1)."""
    return two_means_split(sharpness_map(real))


def _log_tanh(x: jax.Array) -> jax.Array:
    """log(tanh(x)) for x >= 0: -inf at 0, with a zero (not NaN) gradient there."""
    positive = x > 0
    return jnp.where(positive, jnp.log(jnp.tanh(jnp.where(positive, x, 1.0))), -jnp.inf)


def _log_one_minus_tanh(x: jax.Array) -> jax.Array:
    """log(1 - tanh(x)) = log 2 - softplus(2x), exact where 1 - tanh(x) rounds to 0."""
    return jnp.log(2.0) - jax.nn.softplus(2.0 * x)


def _tanh_bce_terms(x: jax.Array, log_clamp: bool) -> tuple[jax.Array, jax.Array]:
    """(log p, log(1 - p)) of p = tanh(x), PyTorch-clamped at -100 or exact."""
    if log_clamp:
        prob = jnp.tanh(x)
        return clamped_log(prob), clamped_log(1.0 - prob)
    return _log_tanh(x), _log_one_minus_tanh(x)


def _weighted_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    """sum(weights * values) / sum(weights), 0 when all weights are 0."""
    total = jnp.sum(weights)
    weighted = jnp.sum(jnp.where(weights > 0, weights * values, 0.0))
    return jnp.where(total > 0, weighted / jnp.where(total > 0, total, 1.0), 0.0)


def naive_sharpness_loss(
    fake: jax.Array,
    sharp_label: jax.Array,
    gamma: float,
    seed_form: bool = False,
    log_clamp: bool = True,
) -> jax.Array:
    """Naive Sharpness Loss without alpha: BCE(sharp_label, tanh(gamma * |Lap(grey(fake))|)).

    The paper's form averages over all pixels, with targets 0 and 1. `seed_form=True` is the seed's
    variant: only pixels with sharp_label 1 count, with target 1, averaged over the sharp pixels of
    the whole batch (0 if there are none). `log_clamp=True` clamps each log at -100 as PyTorch's
    BCELoss does; `log_clamp=False` uses exact logs, which are infinite for a sharp-labelled pixel
    whose Laplacian is exactly 0 (that pixel then has a zero gradient).
    """
    log_prob, log_not_prob = _tanh_bce_terms(gamma * sharpness_map(fake), log_clamp)
    if seed_form:
        return _weighted_mean(-log_prob, sharp_label)
    sharp_term = jnp.where(sharp_label > 0, sharp_label * log_prob, 0.0)
    smooth_term = jnp.where(sharp_label < 1, (1.0 - sharp_label) * log_not_prob, 0.0)
    return -jnp.mean(sharp_term + smooth_term)


def sharp_channel(images: jax.Array) -> jax.Array:
    """The seed's SharpDetector map (4th D channel): 1 where the local sharpness beats the mean.

    grey -> |Laplacian| with zero padding -> floored at 0.5/255 -> 5x5 box mean with zero padding
    -> 1.0 where above the per-image spatial mean. Shape (B,H,W,1), no gradient.
    """
    response = jnp.abs(laplacian(to_grey(lax.stop_gradient(images)), padding="zero"))
    smoothed = box_blur(jnp.maximum(response, SHARP_FLOOR), SHARP_BOX_SIZE, channel_mix=False)
    above = smoothed > jnp.mean(smoothed, axis=(1, 2), keepdims=True)
    return above.astype(images.dtype)
