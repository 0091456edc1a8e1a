"""DAMSM image encoders: the baseline's Inception-v3 one and a small CNN for toy data.

Both map [-1,1] images to region features (B, R, R, embedding_dim) and a global code
(B, embedding_dim) through the projections `emb_features` (1x1 conv, no bias) and `emb_cnn_code`
(Dense).
"""

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax.typing import Dtype

from jaxmani.models.inception import InceptionV3
from jaxmani.models.layers import Conv, dtypes, padding, resize_bilinear

INCEPTION_SIZE = 299
SMALL_BLOCKS = 3  # Stride-2 blocks of the small encoder: its region grid is the image side / 8.
# How the small encoder may pool its last block into the code (SmallImageEncoder.pool).
SMALL_POOLS = {"mean": jnp.mean, "max": jnp.max}
LEAKY_SLOPE = 0.2


class ImageEncoder(nn.Module):
    """CNN_ENCODER: 17x17 region features and a global code from an Inception-v3 trunk."""

    embedding_dim: int = 256

    @nn.compact
    def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Encodes (B,H,W,3) images with the trunk's BatchNorm in eval mode.

        Returns:
            region features (B,17,17,embedding_dim) and the code (B,embedding_dim).
        """
        x = resize_bilinear(images, INCEPTION_SIZE, INCEPTION_SIZE)
        trunk = InceptionV3(variant="torchvision", name="trunk")(x, train=False)
        region = Conv(self.embedding_dim, (1, 1), use_bias=False, name="emb_features")(
            trunk["mixed_6e"]
        )
        code = nn.Dense(self.embedding_dim, name="emb_cnn_code")(trunk["pool"])
        return region, code


class SmallImageEncoder(nn.Module):
    """A small DAMSM image encoder: S/8 x S/8 region features and a global code from S x S images.

    Three conv3x3 stride-2 blocks (`conv1`..`conv3`, widths `width`, 2 `width`, 4 `width`, with
    bias) each followed by LeakyReLU 0.2, then the two projections: `emb_features` on the last
    block, `emb_cnn_code` on its spatial mean or maximum (`pool`). It has no BatchNorm or dropout,
    so the one call serves training and inference and needs no mutable collections.

    The maximum lets a bird's colour reach the code however little of the image it covers; the
    mean mixes it with the background's colours (README, "The demo").
    """

    embedding_dim: int = 256
    width: int = 64
    pool: str = "mean"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Encodes (B, S, S, 3) images, S a multiple of 8.

        Returns:
            region features (B, S/8, S/8, embedding_dim) and the code (B, embedding_dim).
        """
        factor = 2**SMALL_BLOCKS
        if images.shape[1] % factor or images.shape[2] % factor:
            raise ValueError(
                f"SmallImageEncoder needs image sides divisible by {factor}, got {images.shape}"
            )
        kw = dtypes(self)
        x = images
        for i in range(SMALL_BLOCKS):
            conv = Conv(
                self.width * 2**i,
                (3, 3),
                strides=(2, 2),
                padding=padding(1),
                name=f"conv{i + 1}",
                **kw,
            )
            x = nn.leaky_relu(conv(x), LEAKY_SLOPE)
        region = Conv(self.embedding_dim, (1, 1), use_bias=False, name="emb_features", **kw)(x)
        pooled = SMALL_POOLS[self.pool](x, axis=(1, 2))
        code = nn.Dense(self.embedding_dim, name="emb_cnn_code", **kw)(pooled)
        return region, code
