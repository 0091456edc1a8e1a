"""The discriminator D_NET64/128/256 (BASELINE_SPEC §3.6, §3.7) as a linen module (NHWC).

The backbone downsamples S x S images to 4x4 with one block per halving, as AttnGAN's D_NET64,
D_NET128 and D_NET256 do; at S = 256 it is D_NET256 with the upstream parameter tree. The heads
return logits; the baseline applies the sigmoid inside, jaxmani applies it in the loss.
"""

import math

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax.typing import Dtype

from jaxmani.models.blocks import (
    KERNEL_INIT,
    LEAKY_SLOPE,
    Block3x3LeakyRelu,
    DownBlock,
    batch_norm,
    check_image_size,
    conv4x4_down,
)
from jaxmani.models.layers import Conv, dtypes

OUT_KERNEL = 4
S16_SIZE = 64  # The image side at which img_code_s16 alone reaches the 4x4 head input.


def uniform_bias_init(fan_in: int) -> nn.initializers.Initializer:
    """PyTorch's default conv bias init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Dtype = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def outlogits_conv(in_features: int, dtype: Dtype, param_dtype: Dtype) -> Conv:
    """Returns the head conv `outlogits`: 4x4 stride 4 to one channel, PyTorch bias init."""
    return Conv(
        1,
        (OUT_KERNEL, OUT_KERNEL),
        strides=(OUT_KERNEL, OUT_KERNEL),
        padding="VALID",
        kernel_init=KERNEL_INIT,
        bias_init=uniform_bias_init(in_features * OUT_KERNEL * OUT_KERNEL),
        dtype=dtype,
        param_dtype=param_dtype,
        name="outlogits",
    )


def tail_blocks(image_size: int) -> tuple[tuple[str, str, int], ...]:
    """(name, kind, width in df_dim) of the blocks after img_code_s16, down to 4x4 at 8 df_dim.

    One "down" block (DownBlock, doubling the width) per halving below S/16, then as many "3x3"
    blocks (Block3x3LeakyRelu, halving it) back to 8 df_dim: nothing at 64; img_code_s32 and
    img_code_s32_1 at 128; img_code_s32, img_code_s64, img_code_s64_1 and img_code_s64_2 at 256.
    """
    halvings = round(math.log2(image_size // S16_SIZE))
    downs = [(f"img_code_s{32 * 2**i}", "down", 16 * 2**i) for i in range(halvings)]
    last = downs[-1][0] if downs else ""
    ups = [(f"{last}_{j + 1}", "3x3", 8 * 2 ** (halvings - 1 - j)) for j in range(halvings)]
    return (*downs, *ups)


class ImgCodeS16(nn.Module):
    """Four stride-2 4x4 convs (S -> S/16, 8 df_dim); BatchNorm after all but the first."""

    df_dim: int
    bn_axis_name: str | None = None
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Maps (B, S, S, C) images to (B, S/16, S/16, 8 * df_dim)."""
        kw = dtypes(self)
        x = nn.leaky_relu(conv4x4_down(self.df_dim, "conv1", **kw)(x), LEAKY_SLOPE)
        for index, multiple in ((2, 2), (3, 4), (4, 8)):
            x = conv4x4_down(multiple * self.df_dim, f"conv{index}", **kw)(x)
            x = batch_norm(f"bn{index}", self.bn_axis_name, **kw)(x, train)
            x = nn.leaky_relu(x, LEAKY_SLOPE)
        return x


class UncondHead(nn.Module):
    """UNCOND_DNET: logits from the image features alone."""

    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        """Returns logits (B,)."""
        conv = outlogits_conv(features.shape[-1], **dtypes(self))
        return conv(features).reshape(features.shape[0])


class CondHead(nn.Module):
    """COND_DNET: logits from the image features joined with the tiled sentence embedding."""

    features: int
    bn_axis_name: str | None = None
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, features: jax.Array, sent_emb: jax.Array, train: bool) -> jax.Array:
        """Returns logits (B,)."""
        batch, height, width, _ = features.shape
        sentence = jnp.broadcast_to(
            sent_emb[:, None, None, :], (batch, height, width, sent_emb.shape[-1])
        )
        h = jnp.concatenate([features, sentence], axis=-1)
        h = Block3x3LeakyRelu(self.features, self.bn_axis_name, name="jointConv", **dtypes(self))(
            h, train
        )
        return outlogits_conv(h.shape[-1], **dtypes(self))(h).reshape(batch)


class Discriminator(nn.Module):
    """A shared backbone (B, S, S, C) -> (B, 4, 4, 8 df) for S in {64, 128, 256}, two logit heads.

    Every call is its own BatchNorm batch, in train mode whenever `train` is True; with
    `bn_axis_name` the batch is the global one across that pmap/shard_map axis. Use
    `method=Discriminator.logits` in `init` to create the variables of the heads as well.
    """

    df_dim: int = 64
    embedding_dim: int = 256
    in_channels: int = 3
    image_size: int = 256
    bn_axis_name: str | None = None
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    def setup(self) -> None:
        """Declares the backbone for `image_size` and the two heads under their PyTorch names."""
        check_image_size(self.image_size, "Discriminator")
        kw = {"bn_axis_name": self.bn_axis_name, **dtypes(self)}
        self.img_code_s16 = ImgCodeS16(self.df_dim, **kw)
        for name, kind, multiple in tail_blocks(self.image_size):
            block = DownBlock if kind == "down" else Block3x3LeakyRelu
            setattr(self, name, block(multiple * self.df_dim, **kw))
        self.UNCOND_DNET = UncondHead(**dtypes(self))
        self.COND_DNET = CondHead(8 * self.df_dim, **kw)

    def __call__(self, images: jax.Array, train: bool) -> jax.Array:
        """Maps images (B, S, S, in_channels) to features (B, 4, 4, 8 * df_dim)."""
        size = self.image_size
        if images.shape[1:] != (size, size, self.in_channels):
            raise ValueError(
                f"Discriminator expects {size}x{size} images with {self.in_channels} channels, "
                f"got shape {images.shape}"
            )
        x = self.img_code_s16(images, train)
        for name, _, _ in tail_blocks(size):
            x = getattr(self, name)(x, train)
        return x

    def cond_logits(self, features: jax.Array, sent_emb: jax.Array, train: bool) -> jax.Array:
        """Conditional (image, sentence) logits (B,)."""
        if sent_emb.shape[-1] != self.embedding_dim:
            raise ValueError(f"sent_emb has width {sent_emb.shape[-1]}, not {self.embedding_dim}")
        return self.COND_DNET(features, sent_emb, train)

    def uncond_logits(self, features: jax.Array) -> jax.Array:
        """Unconditional logits (B,)."""
        return self.UNCOND_DNET(features)

    def logits(
        self, images: jax.Array, sent_emb: jax.Array, train: bool
    ) -> tuple[jax.Array, jax.Array]:
        """Backbone and both heads in one call: (conditional logits, unconditional logits)."""
        features = self(images, train)
        return self.cond_logits(features, sent_emb, train), self.uncond_logits(features)
