"""The 256x256 discriminator D_NET256 (BASELINE_SPEC §3.6) as a linen module (NHWC).

The heads return logits; the baseline applies the sigmoid inside, jaxmani applies it in the loss.
"""

import math

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxmani.models.blocks import (
    KERNEL_INIT,
    LEAKY_SLOPE,
    Block3x3LeakyRelu,
    DownBlock,
    batch_norm,
    conv4x4_down,
)

OUT_KERNEL = 4


def uniform_bias_init(fan_in: int) -> nn.initializers.Initializer:
    """PyTorch's default conv bias init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def outlogits_conv(in_features: int) -> nn.Conv:
    """Returns the head conv `outlogits`: 4x4 stride 4 to one channel, PyTorch bias init."""
    return nn.Conv(
        1,
        (OUT_KERNEL, OUT_KERNEL),
        strides=(OUT_KERNEL, OUT_KERNEL),
        padding="VALID",
        kernel_init=KERNEL_INIT,
        bias_init=uniform_bias_init(in_features * OUT_KERNEL * OUT_KERNEL),
        name="outlogits",
    )


class ImgCodeS16(nn.Module):
    """Four stride-2 4x4 convs (256 -> 16 pixels); BatchNorm after all but the first."""

    df_dim: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = nn.leaky_relu(conv4x4_down(self.df_dim, "conv1")(x), LEAKY_SLOPE)
        for index, multiple in ((2, 2), (3, 4), (4, 8)):
            x = conv4x4_down(multiple * self.df_dim, f"conv{index}")(x)
            x = nn.leaky_relu(batch_norm(f"bn{index}")(x, train), LEAKY_SLOPE)
        return x


class UncondHead(nn.Module):
    """UNCOND_DNET: logits from the image features alone."""

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        return outlogits_conv(features.shape[-1])(features).reshape(features.shape[0])


class CondHead(nn.Module):
    """COND_DNET: logits from the image features joined with the tiled sentence embedding."""

    features: int

    @nn.compact
    def __call__(self, features: jax.Array, sent_emb: jax.Array, train: bool) -> jax.Array:
        batch, height, width, _ = features.shape
        sentence = jnp.broadcast_to(
            sent_emb[:, None, None, :], (batch, height, width, sent_emb.shape[-1])
        )
        h = jnp.concatenate([features, sentence], axis=-1)
        h = Block3x3LeakyRelu(self.features, name="jointConv")(h, train)
        return outlogits_conv(h.shape[-1])(h).reshape(batch)


class Discriminator(nn.Module):
    """D_NET256: a shared backbone (B, 256, 256, C) -> (B, 4, 4, 8 df) and two logit heads.

    Every call is its own BatchNorm batch, in train mode whenever `train` is True. Use
    `method=Discriminator.logits` in `init` to create the variables of the heads as well.
    """

    df_dim: int = 64
    embedding_dim: int = 256
    in_channels: int = 3

    def setup(self) -> None:
        """Declares the backbone and the two heads under their PyTorch names."""
        self.img_code_s16 = ImgCodeS16(self.df_dim)
        self.img_code_s32 = DownBlock(16 * self.df_dim)
        self.img_code_s64 = DownBlock(32 * self.df_dim)
        self.img_code_s64_1 = Block3x3LeakyRelu(16 * self.df_dim)
        self.img_code_s64_2 = Block3x3LeakyRelu(8 * self.df_dim)
        self.UNCOND_DNET = UncondHead()
        self.COND_DNET = CondHead(8 * self.df_dim)

    def __call__(self, images: jax.Array, train: bool) -> jax.Array:
        """Maps images (B, 256, 256, in_channels) to features (B, 4, 4, 8 * df_dim)."""
        if images.shape[-1] != self.in_channels:
            raise ValueError(
                f"Discriminator expects {self.in_channels} channels, got {images.shape}"
            )
        x = self.img_code_s16(images, train)
        x = self.img_code_s32(x, train)
        x = self.img_code_s64(x, train)
        x = self.img_code_s64_1(x, train)
        return self.img_code_s64_2(x, train)

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
