"""Primitive layers shared by every network, with PyTorch's numerics where they matter."""

import jax
import jax.numpy as jnp
from flax import linen as nn


class BatchNorm(nn.Module):
    """BatchNorm over all axes but the last, with PyTorch semantics.

    Training normalises with the biased batch variance and updates the running variance with the
    unbiased one, `running = (1 - momentum) * running + momentum * batch` (PyTorch's convention;
    flax's own BatchNorm uses the complement and the biased variance).
    """

    epsilon: float = 1e-5
    momentum: float = 0.1
    scale_init: nn.initializers.Initializer = nn.initializers.ones

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        features = x.shape[-1]
        scale = self.param("scale", self.scale_init, (features,))
        bias = self.param("bias", nn.initializers.zeros, (features,))
        running_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,))
        running_var = self.variable("batch_stats", "var", jnp.ones, (features,))
        if train:
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(x, axes)
            var = jnp.mean(jnp.square(x - mean), axes)
            count = x.size // features
            if not self.is_initializing():
                unbiased = var * (count / max(count - 1, 1))
                running_mean.value = (1 - self.momentum) * running_mean.value + self.momentum * mean
                running_var.value = (
                    1 - self.momentum
                ) * running_var.value + self.momentum * unbiased
        else:
            mean, var = running_mean.value, running_var.value
        return (x - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias


def instance_norm(x: jax.Array, epsilon: float = 1e-5) -> jax.Array:
    """Normalises each sample and channel over H and W (biased variance, no affine)."""
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + epsilon)


def glu(x: jax.Array) -> jax.Array:
    """Gated linear unit on the last axis: first half times sigmoid of the second half."""
    a, b = jnp.split(x, 2, axis=-1)
    return a * jax.nn.sigmoid(b)


def resize_bilinear(x: jax.Array, height: int, width: int) -> jax.Array:
    """Bilinear NHWC resize matching PyTorch's `interpolate(align_corners=False)`, no antialias."""
    shape = (x.shape[0], height, width, x.shape[3])
    return jax.image.resize(x, shape, method="bilinear", antialias=False)


def padding(pad: int | tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Turns a PyTorch conv padding (one int or (pad_h, pad_w)) into flax's explicit pairs."""
    pad_h, pad_w = (pad, pad) if isinstance(pad, int) else pad
    return ((pad_h, pad_h), (pad_w, pad_w))
