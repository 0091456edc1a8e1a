"""GAN building blocks of the generator and discriminator (NHWC, PyTorch numerics).

Every convolution is bias-free with an orthogonal kernel and every BatchNorm scale starts at
N(1, 0.02), as the baseline's `weights_init` does. Submodule names mirror the PyTorch ones so that a
converter can map a state dict onto them. Every block takes `dtype` (computation) and
`param_dtype` (storage); every BatchNorm takes an optional pmap/shard_map `bn_axis_name`.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax.typing import Dtype

from jaxmani.models.layers import BatchNorm, Conv, dtypes, glu, instance_norm, padding

KERNEL_INIT = nn.initializers.orthogonal()
LEAKY_SLOPE = 0.2
IMG_UP_SCALE = 1.9
IMAGE_SIZES = (64, 128, 256)  # Image sides every GAN network builds for.


def check_image_size(image_size: int, network: str) -> None:
    """Raises ValueError unless `image_size` is one of IMAGE_SIZES."""
    if image_size not in IMAGE_SIZES:
        sizes = ", ".join(map(str, IMAGE_SIZES))
        raise ValueError(f"{network} builds for image sizes {sizes}, not {image_size}")


def bn_scale_init(key: jax.Array, shape: tuple[int, ...], dtype: Dtype = jnp.float32) -> jax.Array:
    """Draws BatchNorm scales from N(1, 0.02)."""
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def conv3x3(
    features: int, name: str, dtype: Dtype = jnp.float32, param_dtype: Dtype = jnp.float32
) -> Conv:
    """Returns a 3x3, stride 1, padding 1 convolution without bias."""
    return Conv(
        features,
        (3, 3),
        padding=padding(1),
        use_bias=False,
        kernel_init=KERNEL_INIT,
        dtype=dtype,
        param_dtype=param_dtype,
        name=name,
    )


def conv4x4_down(
    features: int, name: str, dtype: Dtype = jnp.float32, param_dtype: Dtype = jnp.float32
) -> Conv:
    """Returns a 4x4, stride 2, padding 1 convolution without bias (halves H and W)."""
    return Conv(
        features,
        (4, 4),
        strides=(2, 2),
        padding=padding(1),
        use_bias=False,
        kernel_init=KERNEL_INIT,
        dtype=dtype,
        param_dtype=param_dtype,
        name=name,
    )


def batch_norm(
    name: str,
    axis_name: str | None = None,
    dtype: Dtype = jnp.float32,
    param_dtype: Dtype = jnp.float32,
) -> BatchNorm:
    """Returns a PyTorch-style BatchNorm (eps 1e-5, momentum 0.1) with N(1, 0.02) scales."""
    return BatchNorm(
        scale_init=bn_scale_init,
        axis_name=axis_name,
        dtype=dtype,
        param_dtype=param_dtype,
        name=name,
    )


def upsample_nearest2x(x: jax.Array) -> jax.Array:
    """Nearest-neighbour x2 upsampling of an NHWC tensor: output i takes input i // 2."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def nearest_indices(in_size: int, out_size: int, nearest_scale_index: bool) -> np.ndarray:
    """Source indices of PyTorch's nearest resize from `in_size` to `out_size` along one axis.

    Args:
      in_size: input length.
      out_size: output length.
      nearest_scale_index: for the baseline's x1.9 upsampling (out_size = floor(1.9 * in_size),
        17 -> 32), True indexes with the scale like PyTorch >= 1.6,
        min(floor(i * float32(1 / 1.9)), in - 1). Otherwise, and for every other pair of sizes,
        the size ratio floor(i * in / out) is used (PyTorch <= 1.5, and any size-given resize);
        it is the identity when the sizes are equal.

    Returns:
      An int array of length out_size.
    """
    positions = np.arange(out_size)
    if nearest_scale_index and out_size == math.floor(in_size * IMG_UP_SCALE):
        scaled = positions.astype(np.float32) * np.float32(1.0 / IMG_UP_SCALE)
        return np.minimum(np.floor(scaled).astype(np.int64), in_size - 1)
    return positions * in_size // out_size


class UpBlock(nn.Module):
    """Nearest x2 upsampling, conv3x3 to 2 * out_features, instance norm and GLU."""

    out_features: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Doubles H and W of an NHWC map and maps it to `out_features` channels."""
        x = conv3x3(2 * self.out_features, "conv", **dtypes(self))(upsample_nearest2x(x))
        return glu(instance_norm(x))


class ImgUpBlock(nn.Module):
    """Nearest resize to size x size (x1.9, 17 -> 32 at 256) by a gather, conv3x3, IN, GLU."""

    out_features: int
    size: int
    nearest_scale_index: bool = False
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Resizes an NHWC map to `size` x `size` and maps it to `out_features` channels."""
        rows = nearest_indices(x.shape[1], self.size, self.nearest_scale_index)
        cols = nearest_indices(x.shape[2], self.size, self.nearest_scale_index)
        x = x[:, rows][:, :, cols]
        x = conv3x3(2 * self.out_features, "conv", **dtypes(self))(x)
        return glu(instance_norm(x))


class ResBlock(nn.Module):
    """Residual block: conv3x3 c -> 2c, IN, GLU, conv3x3 c -> c, IN, plus the input."""

    features: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Adds the two-conv residual to `x`."""
        h = glu(instance_norm(conv3x3(2 * self.features, "conv1", **dtypes(self))(x)))
        return instance_norm(conv3x3(self.features, "conv2", **dtypes(self))(h)) + x


class ACM(nn.Module):
    """Affine combination: x * conv_weight(h) + conv_bias(h) with h = conv(image features)."""

    features: int
    hidden: int = 128
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, img: jax.Array) -> jax.Array:
        """Modulates `x` by a scale and a shift computed from the image features `img`."""
        h = conv3x3(self.hidden, "conv", **dtypes(self))(img)
        weight = conv3x3(self.features, "conv_weight", **dtypes(self))(h)
        return x * weight + conv3x3(self.features, "conv_bias", **dtypes(self))(h)


class DownBlock(nn.Module):
    """Conv 4x4 stride 2 padding 1 (no bias), BatchNorm and LeakyReLU 0.2."""

    out_features: int
    bn_axis_name: str | None = None
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Halves H and W of an NHWC map."""
        x = conv4x4_down(self.out_features, "conv", **dtypes(self))(x)
        x = batch_norm("bn", self.bn_axis_name, **dtypes(self))(x, train)
        return nn.leaky_relu(x, LEAKY_SLOPE)


class Block3x3LeakyRelu(nn.Module):
    """Conv3x3 (no bias), BatchNorm and LeakyReLU 0.2."""

    out_features: int
    bn_axis_name: str | None = None
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Maps an NHWC map to `out_features` channels at the same size."""
        x = conv3x3(self.out_features, "conv", **dtypes(self))(x)
        x = batch_norm("bn", self.bn_axis_name, **dtypes(self))(x, train)
        return nn.leaky_relu(x, LEAKY_SLOPE)
