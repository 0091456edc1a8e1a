"""Primitive layers shared by every network, with PyTorch's numerics where they matter.

Modules take `dtype` (computation) and `param_dtype` (storage, float32 by default); norms and
softmaxes compute in at least float32 whatever `dtype` is.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax.typing import Dtype


def norm_dtype(dtype: Dtype) -> jnp.dtype:
    """The dtype norms and softmaxes compute in: float32, or float64 for float64 inputs."""
    return jnp.promote_types(dtype, jnp.float32)


def dtypes(module: nn.Module) -> dict[str, Any]:
    """The `dtype` and `param_dtype` of `module`, as keyword arguments for its submodules."""
    return {"dtype": module.dtype, "param_dtype": module.param_dtype}


def batch_moments(x: jax.Array, axis_name: str | None) -> tuple[jax.Array, jax.Array, int]:
    """Mean, biased variance and sample count per channel over all axes but the last.

    With `axis_name` (a pmap or shard_map axis of equal shards) the statistics are those of the
    global batch: the mean is averaged over the axis first, then the squared deviations from it.
    """
    axes = tuple(range(x.ndim - 1))
    count = x.size // x.shape[-1]
    mean = jnp.mean(x, axes)
    if axis_name is not None:
        mean = jax.lax.pmean(mean, axis_name)
    var = jnp.mean(jnp.square(x - mean), axes)
    if axis_name is not None:
        var = jax.lax.pmean(var, axis_name)
        count *= jax.lax.axis_size(axis_name)
    return mean, var, count


class BatchNorm(nn.Module):
    """BatchNorm over all axes but the last, with PyTorch semantics.

    Training normalises with the biased batch variance and updates the running variance with the
    unbiased one, `running = (1 - momentum) * running + momentum * batch` (PyTorch's convention;
    flax's own BatchNorm uses the complement and the biased variance). With `axis_name`, training
    uses the statistics of the global batch across that pmap/shard_map axis.
    """

    epsilon: float = 1e-5
    momentum: float = 0.1
    scale_init: nn.initializers.Initializer = nn.initializers.ones
    axis_name: str | None = None
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Normalises `x` with batch statistics (train) or the running ones (eval)."""
        features = x.shape[-1]
        scale = self.param("scale", self.scale_init, (features,), self.param_dtype)
        bias = self.param("bias", nn.initializers.zeros, (features,), self.param_dtype)
        running_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,))
        running_var = self.variable("batch_stats", "var", jnp.ones, (features,))
        compute = norm_dtype(x.dtype)
        x = x.astype(compute)
        if train:
            initializing = self.is_initializing()
            mean, var, count = batch_moments(x, None if initializing else self.axis_name)
            if not initializing:
                unbiased = var * (count / max(count - 1, 1))
                running_mean.value = (1 - self.momentum) * running_mean.value + self.momentum * mean
                running_var.value = (
                    1 - self.momentum
                ) * running_var.value + self.momentum * unbiased
        else:
            mean, var = running_mean.value, running_var.value
        y = (x - mean) * jax.lax.rsqrt(var + self.epsilon) * scale.astype(compute)
        return (y + bias.astype(compute)).astype(self.dtype)


def instance_norm(x: jax.Array, epsilon: float = 1e-5) -> jax.Array:
    """Normalises each sample and channel over H and W (biased variance, no affine)."""
    y = x.astype(norm_dtype(x.dtype))
    mean = jnp.mean(y, axis=(1, 2), keepdims=True)
    var = jnp.mean(jnp.square(y - mean), axis=(1, 2), keepdims=True)
    return ((y - mean) * jax.lax.rsqrt(var + epsilon)).astype(x.dtype)


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
