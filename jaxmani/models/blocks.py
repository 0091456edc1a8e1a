"""GAN building blocks of the generator and discriminator (NHWC, PyTorch numerics).

Every convolution is bias-free with an orthogonal kernel and every BatchNorm scale starts at
N(1, 0.02), as the baseline's `weights_init` does. Submodule names mirror the PyTorch ones so that a
converter can map a state dict onto them.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxmani.models.layers import BatchNorm, glu, instance_norm, padding

KERNEL_INIT = nn.initializers.orthogonal()
LEAKY_SLOPE = 0.2
IMG_UP_SCALE = 1.9


def bn_scale_init(
    key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32
) -> jax.Array:
    """Draws BatchNorm scales from N(1, 0.02)."""
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def conv3x3(features: int, name: str) -> nn.Conv:
    """Returns a 3x3, stride 1, padding 1 convolution without bias."""
    return nn.Conv(
        features, (3, 3), padding=padding(1), use_bias=False, kernel_init=KERNEL_INIT, name=name
    )


def conv4x4_down(features: int, name: str) -> nn.Conv:
    """Returns a 4x4, stride 2, padding 1 convolution without bias (halves H and W)."""
    return nn.Conv(
        features,
        (4, 4),
        strides=(2, 2),
        padding=padding(1),
        use_bias=False,
        kernel_init=KERNEL_INIT,
        name=name,
    )


def batch_norm(name: str) -> BatchNorm:
    """Returns a PyTorch-style BatchNorm (eps 1e-5, momentum 0.1) with N(1, 0.02) scales."""
    return BatchNorm(scale_init=bn_scale_init, name=name)


def upsample_nearest2x(x: jax.Array) -> jax.Array:
    """Nearest-neighbour x2 upsampling of an NHWC tensor: output i takes input i // 2."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def img_up_indices(in_size: int, nearest_scale_index: bool) -> np.ndarray:
    """Source indices of PyTorch's nearest upsampling by 1.9 (output size floor(1.9 * in)).

    Args:
      in_size: input length along one spatial axis.
      nearest_scale_index: True uses the given scale like PyTorch >= 1.6,
        min(floor(i * float32(1 / 1.9)), in - 1); False uses the size ratio floor(i * in / out)
        like PyTorch <= 1.5.

    Returns:
      An int array of length floor(1.9 * in_size).
    """
    out_size = math.floor(in_size * IMG_UP_SCALE)
    positions = np.arange(out_size)
    if nearest_scale_index:
        scaled = positions.astype(np.float32) * np.float32(1.0 / IMG_UP_SCALE)
        return np.minimum(np.floor(scaled).astype(np.int64), in_size - 1)
    return positions * in_size // out_size


class UpBlock(nn.Module):
    """Nearest x2 upsampling, conv3x3 to 2 * out_features, instance norm and GLU."""

    out_features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = conv3x3(2 * self.out_features, "conv")(upsample_nearest2x(x))
        return glu(instance_norm(x))


class ImgUpBlock(nn.Module):
    """Nearest x1.9 upsampling (17 -> 32) by an index gather, conv3x3, instance norm and GLU."""

    out_features: int
    nearest_scale_index: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        rows = img_up_indices(x.shape[1], self.nearest_scale_index)
        cols = img_up_indices(x.shape[2], self.nearest_scale_index)
        x = x[:, rows][:, :, cols]
        x = conv3x3(2 * self.out_features, "conv")(x)
        return glu(instance_norm(x))


class ResBlock(nn.Module):
    """Residual block: conv3x3 c -> 2c, IN, GLU, conv3x3 c -> c, IN, plus the input."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = glu(instance_norm(conv3x3(2 * self.features, "conv1")(x)))
        return instance_norm(conv3x3(self.features, "conv2")(h)) + x


class ACM(nn.Module):
    """Affine combination: x * conv_weight(h) + conv_bias(h) with h = conv(image features)."""

    features: int
    hidden: int = 128

    @nn.compact
    def __call__(self, x: jax.Array, img: jax.Array) -> jax.Array:
        h = conv3x3(self.hidden, "conv")(img)
        return x * conv3x3(self.features, "conv_weight")(h) + conv3x3(self.features, "conv_bias")(h)


class DownBlock(nn.Module):
    """Conv 4x4 stride 2 padding 1 (no bias), BatchNorm and LeakyReLU 0.2."""

    out_features: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = batch_norm("bn")(conv4x4_down(self.out_features, "conv")(x), train)
        return nn.leaky_relu(x, LEAKY_SLOPE)


class Block3x3LeakyRelu(nn.Module):
    """Conv3x3 (no bias), BatchNorm and LeakyReLU 0.2."""

    out_features: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = batch_norm("bn")(conv3x3(self.out_features, "conv")(x), train)
        return nn.leaky_relu(x, LEAKY_SLOPE)
