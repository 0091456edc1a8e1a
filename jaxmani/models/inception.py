"""Inception-v3 in two variants: torchvision's ImageNet network and pytorch-fid's FID network.

Submodule names are torchvision's, so a PyTorch state dict maps onto the params one to one.
"""

from typing import Literal

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxmani.models.layers import BatchNorm, Conv, max_pool, padding

PoolKind = Literal["avg_include_pad", "avg_exclude_pad", "max"]
Variant = Literal["torchvision", "fid"]


def pool_3x3(x: jax.Array, kind: PoolKind) -> jax.Array:
    """3x3 stride-1 pool with padding 1 (the pool branch of InceptionA, C and E)."""
    pad = padding(1)
    if kind == "max":
        return nn.max_pool(x, (3, 3), strides=(1, 1), padding=pad)
    include = kind == "avg_include_pad"
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=pad, count_include_pad=include)


def max_pool_3x3_s2(x: jax.Array) -> jax.Array:
    """3x3 stride-2 max-pool without padding (PyTorch floor mode)."""
    return max_pool(x, 3, 2)


class BasicConv2d(nn.Module):
    """Conv without bias, BatchNorm (eps 1e-3), ReLU."""

    features: int
    kernel: int | tuple[int, int]
    strides: int = 1
    pad: int | tuple[int, int] = 0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Applies conv, BN and ReLU to an NHWC map."""
        kernel = (self.kernel, self.kernel) if isinstance(self.kernel, int) else self.kernel
        x = Conv(
            self.features,
            kernel,
            strides=(self.strides, self.strides),
            padding=padding(self.pad),
            use_bias=False,
            name="conv",
        )(x)
        return nn.relu(BatchNorm(epsilon=1e-3, dtype=x.dtype, name="bn")(x, train))


class InceptionA(nn.Module):
    """Mixed_5b-5d: 1x1, 5x5, double 3x3 and pool branches."""

    pool_features: int
    pool: PoolKind

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Returns the concatenated branches (64 + 64 + 96 + pool_features channels)."""
        b1 = BasicConv2d(64, 1, name="branch1x1")(x, train)
        b5 = BasicConv2d(48, 1, name="branch5x5_1")(x, train)
        b5 = BasicConv2d(64, 5, pad=2, name="branch5x5_2")(b5, train)
        b3 = BasicConv2d(64, 1, name="branch3x3dbl_1")(x, train)
        b3 = BasicConv2d(96, 3, pad=1, name="branch3x3dbl_2")(b3, train)
        b3 = BasicConv2d(96, 3, pad=1, name="branch3x3dbl_3")(b3, train)
        bp = BasicConv2d(self.pool_features, 1, name="branch_pool")(pool_3x3(x, self.pool), train)
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    """Mixed_6a: grid reduction 35 -> 17."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Returns the concatenated branches (384 + 96 + input channels)."""
        b3 = BasicConv2d(384, 3, strides=2, name="branch3x3")(x, train)
        bd = BasicConv2d(64, 1, name="branch3x3dbl_1")(x, train)
        bd = BasicConv2d(96, 3, pad=1, name="branch3x3dbl_2")(bd, train)
        bd = BasicConv2d(96, 3, strides=2, name="branch3x3dbl_3")(bd, train)
        return jnp.concatenate([b3, bd, max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
    """Mixed_6b-6e: factorised 7x7 branches with c7 inner channels."""

    channels_7x7: int
    pool: PoolKind

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Returns the concatenated branches (4 x 192 channels)."""
        c7 = self.channels_7x7
        b1 = BasicConv2d(192, 1, name="branch1x1")(x, train)
        b7 = BasicConv2d(c7, 1, name="branch7x7_1")(x, train)
        b7 = BasicConv2d(c7, (1, 7), pad=(0, 3), name="branch7x7_2")(b7, train)
        b7 = BasicConv2d(192, (7, 1), pad=(3, 0), name="branch7x7_3")(b7, train)
        bd = BasicConv2d(c7, 1, name="branch7x7dbl_1")(x, train)
        bd = BasicConv2d(c7, (7, 1), pad=(3, 0), name="branch7x7dbl_2")(bd, train)
        bd = BasicConv2d(c7, (1, 7), pad=(0, 3), name="branch7x7dbl_3")(bd, train)
        bd = BasicConv2d(c7, (7, 1), pad=(3, 0), name="branch7x7dbl_4")(bd, train)
        bd = BasicConv2d(192, (1, 7), pad=(0, 3), name="branch7x7dbl_5")(bd, train)
        bp = BasicConv2d(192, 1, name="branch_pool")(pool_3x3(x, self.pool), train)
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    """Mixed_7a: grid reduction 17 -> 8."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Returns the concatenated branches (320 + 192 + input channels)."""
        b3 = BasicConv2d(192, 1, name="branch3x3_1")(x, train)
        b3 = BasicConv2d(320, 3, strides=2, name="branch3x3_2")(b3, train)
        b7 = BasicConv2d(192, 1, name="branch7x7x3_1")(x, train)
        b7 = BasicConv2d(192, (1, 7), pad=(0, 3), name="branch7x7x3_2")(b7, train)
        b7 = BasicConv2d(192, (7, 1), pad=(3, 0), name="branch7x7x3_3")(b7, train)
        b7 = BasicConv2d(192, 3, strides=2, name="branch7x7x3_4")(b7, train)
        return jnp.concatenate([b3, b7, max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
    """Mixed_7b-7c: expanded filter bank with split 1x3 / 3x1 convs."""

    pool: PoolKind

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Returns the concatenated branches (320 + 768 + 768 + 192 = 2048 channels)."""
        b1 = BasicConv2d(320, 1, name="branch1x1")(x, train)
        b3 = BasicConv2d(384, 1, name="branch3x3_1")(x, train)
        b3 = jnp.concatenate(
            [
                BasicConv2d(384, (1, 3), pad=(0, 1), name="branch3x3_2a")(b3, train),
                BasicConv2d(384, (3, 1), pad=(1, 0), name="branch3x3_2b")(b3, train),
            ],
            axis=-1,
        )
        bd = BasicConv2d(448, 1, name="branch3x3dbl_1")(x, train)
        bd = BasicConv2d(384, 3, pad=1, name="branch3x3dbl_2")(bd, train)
        bd = jnp.concatenate(
            [
                BasicConv2d(384, (1, 3), pad=(0, 1), name="branch3x3dbl_3a")(bd, train),
                BasicConv2d(384, (3, 1), pad=(1, 0), name="branch3x3dbl_3b")(bd, train),
            ],
            axis=-1,
        )
        bp = BasicConv2d(192, 1, name="branch_pool")(pool_3x3(x, self.pool), train)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


def pool_kinds(variant: Variant) -> tuple[PoolKind, PoolKind]:
    """Pool of the A/C/E(7b) blocks and of Mixed_7c for a variant."""
    if variant == "torchvision":
        return "avg_include_pad", "avg_include_pad"
    if variant == "fid":
        return "avg_exclude_pad", "max"
    raise ValueError(f"unknown Inception variant {variant!r}; use 'torchvision' or 'fid'")


class InceptionV3(nn.Module):
    """Inception-v3 trunk up to Mixed_7c, global mean pool and an optional `fc` classifier.

    No resize or input normalisation happens inside; callers feed (B,299,299,3) images.
    """

    variant: Variant = "torchvision"
    num_classes: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        """Returns "mixed_6e" (B,17,17,768), "pool" (B,2048) and, with num_classes, "logits"."""
        pool, last_pool = pool_kinds(self.variant)
        x = BasicConv2d(32, 3, strides=2, name="Conv2d_1a_3x3")(x, train)
        x = BasicConv2d(32, 3, name="Conv2d_2a_3x3")(x, train)
        x = BasicConv2d(64, 3, pad=1, name="Conv2d_2b_3x3")(x, train)
        x = max_pool_3x3_s2(x)
        x = BasicConv2d(80, 1, name="Conv2d_3b_1x1")(x, train)
        x = BasicConv2d(192, 3, name="Conv2d_4a_3x3")(x, train)
        x = max_pool_3x3_s2(x)
        x = InceptionA(32, pool, name="Mixed_5b")(x, train)
        x = InceptionA(64, pool, name="Mixed_5c")(x, train)
        x = InceptionA(64, pool, name="Mixed_5d")(x, train)
        x = InceptionB(name="Mixed_6a")(x, train)
        x = InceptionC(128, pool, name="Mixed_6b")(x, train)
        x = InceptionC(160, pool, name="Mixed_6c")(x, train)
        x = InceptionC(160, pool, name="Mixed_6d")(x, train)
        mixed_6e = InceptionC(192, pool, name="Mixed_6e")(x, train)
        x = InceptionD(name="Mixed_7a")(mixed_6e, train)
        x = InceptionE(pool, name="Mixed_7b")(x, train)
        x = InceptionE(last_pool, name="Mixed_7c")(x, train)
        outputs = {"mixed_6e": mixed_6e, "pool": jnp.mean(x, axis=(1, 2))}
        if self.num_classes is not None:
            outputs["logits"] = nn.Dense(self.num_classes, name="fc")(outputs["pool"])
        return outputs
