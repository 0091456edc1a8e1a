"""Binary cross-entropy on discriminator logits, clean or as PyTorch's BCELoss computes it."""

import jax
import jax.numpy as jnp
import optax

TORCH_LOG_FLOOR = -100.0  # PyTorch's BCELoss clamps each log term at -100.


def binary_cross_entropy(logits: jax.Array, labels: jax.Array, log_clamp: bool) -> jax.Array:
    """Mean BCE between sigmoid(logits) and labels in [0, 1].

    log_clamp=True reproduces the baseline (`config.compat.bce_log_clamp`): sigmoid first, then
    logs clamped at -100 in float32, so a saturated sigmoid gives a loss of at most 100 and zero
    gradient. log_clamp=False is the numerically stable form on logits.
    """
    if not log_clamp:
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))
    probs = jax.nn.sigmoid(logits)
    return -jnp.mean(labels * clamped_log(probs) + (1.0 - labels) * clamped_log(1.0 - probs))


def clamped_log(x: jax.Array) -> jax.Array:
    """max(log(x), -100) for x >= 0, with a zero (not NaN) gradient where x == 0."""
    positive = x > 0
    safe = jnp.where(positive, x, 1.0)
    return jnp.where(positive, jnp.maximum(jnp.log(safe), TORCH_LOG_FLOOR), TORCH_LOG_FLOOR)
