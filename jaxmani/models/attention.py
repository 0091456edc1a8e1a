"""Word-level spatial and channel attention of the generator (NHWC).

Masks are (B, T) booleans with True marking padding. Both modules can reproduce the baseline's
masking quirks (BASELINE_SPEC §3.5, §7.4) through a boolean attribute; the default is the clean
form. Both take `dtype` (computation) and `param_dtype` (storage); softmaxes run in at least
float32.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax.typing import Dtype

from jaxmani.models.blocks import KERNEL_INIT
from jaxmani.models.layers import norm_dtype


def spatial_padding_mask(mask: jax.Array, num_locations: int, other_sample: bool) -> jax.Array:
    """Padding mask for every (sample, location, word) of spatial attention.

    Args:
      mask: (B, T) bool, True = padding.
      num_locations: H * W of the query feature map.
      other_sample: False gives location q of sample b its own mask; True gives it the mask of
        sample (b * H * W + q) mod B, as the baseline's tiling does.

    Returns:
      (B, 1, T) when other_sample is False, else (B, H * W, T).
    """
    if not other_sample:
        return mask[:, None, :]
    batch = mask.shape[0]
    rows = np.arange(batch)[:, None] * num_locations + np.arange(num_locations)[None, :]
    return jnp.take(mask, rows % batch, axis=0)


def channel_padding_mask(mask: jax.Array, batch_padding: bool) -> jax.Array:
    """Padding mask of channel attention, broadcastable to (B, C, T).

    Args:
      mask: (B, T) bool, True = padding.
      batch_padding: True masks only the columns that are padding in every sample (the baseline's
        word tensor ends at the longest caption of the batch); False masks each sample's own
        padding.
    """
    if batch_padding:
        return jnp.all(mask, axis=0)[None, None, :]
    return mask[:, None, :]


class SpatialAttention(nn.Module):
    """Attends every location of a feature map over the words; returns context and attention."""

    features: int
    mask_other_sample: bool = False
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(
        self, h: jax.Array, words: jax.Array, mask: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Returns the word context per location (B, H, W, C) and the attention (B, H, W, T)."""
        batch, height, width, channels = h.shape
        if channels != self.features:
            raise ValueError(f"SpatialAttention expects {self.features} channels, got {channels}")
        source = nn.Dense(
            self.features,
            use_bias=False,
            kernel_init=KERNEL_INIT,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="conv_context",
        )(words)
        query = h.reshape(batch, height * width, channels).astype(self.dtype)
        logits = jnp.einsum("bqc,btc->bqt", query, source)
        padded = spatial_padding_mask(mask, height * width, self.mask_other_sample)
        attention = jax.nn.softmax(logits.astype(norm_dtype(logits.dtype)), axis=-1, where=~padded)
        attention = attention.astype(self.dtype)
        context = jnp.einsum("bqt,btc->bqc", attention, source)
        return context.reshape(h.shape), attention.reshape(batch, height, width, -1)


class ChannelAttention(nn.Module):
    """Attends every channel of a size x size feature map over the words (softmax over words)."""

    size: int
    batch_padding: bool = False
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, context: jax.Array, words: jax.Array, mask: jax.Array) -> jax.Array:
        """Returns the channel-attended word features (B, size, size, C)."""
        batch, height, width, channels = context.shape
        if (height, width) != (self.size, self.size):
            raise ValueError(f"ChannelAttention expects {self.size}^2 maps, got {height}x{width}")
        source = nn.Dense(
            self.size * self.size,
            use_bias=False,
            kernel_init=KERNEL_INIT,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="conv_context",
        )(words)
        flat = context.reshape(batch, height * width, channels).astype(self.dtype)
        logits = jnp.einsum("bqc,btq->bct", flat, source)
        padded = channel_padding_mask(mask, self.batch_padding)
        weights = jax.nn.softmax(logits.astype(norm_dtype(logits.dtype)), axis=-1, where=~padded)
        weights = weights.astype(self.dtype)
        out = jnp.einsum("btq,bct->bqc", source, weights)
        return out.reshape(context.shape)
