"""Spatial and channel attention against loop-based NumPy references, both masking modes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmani.models import attention
from tests.models import reference as ref


def padding_mask(lengths: list[int], num_words: int) -> np.ndarray:
    """(B, T) bool mask, True at positions >= the caption length."""
    return np.arange(num_words)[None, :] >= np.asarray(lengths)[:, None]


def random_array(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Seeded N(0, 1) float32 array."""
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def numpy_spatial_attention(
    h: np.ndarray, words: np.ndarray, kernel: np.ndarray, mask: np.ndarray, other_sample: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Spatial attention one (sample, location) row at a time, with the baseline's mask tiling."""
    batch, height, width, channels = h.shape
    locations = height * width
    source = words.astype(np.float64) @ kernel
    query = h.reshape(batch, locations, channels).astype(np.float64)
    context = np.zeros_like(query)
    weights = np.zeros((batch, locations, words.shape[1]))
    for b in range(batch):
        for q in range(locations):
            owner = (b * locations + q) % batch if other_sample else b
            weights[b, q] = ref.softmax(source[b] @ query[b, q], ~mask[owner])
            context[b, q] = weights[b, q] @ source[b]
    return context.reshape(h.shape), weights.reshape(batch, height, width, -1)


def numpy_channel_attention(
    context: np.ndarray,
    words: np.ndarray,
    kernel: np.ndarray,
    mask: np.ndarray,
    batch_padding: bool,
) -> np.ndarray:
    """Channel attention one (sample, channel) row at a time."""
    batch, height, width, channels = context.shape
    source = words.astype(np.float64) @ kernel
    flat = context.reshape(batch, height * width, channels).astype(np.float64)
    out = np.zeros_like(flat)
    for b in range(batch):
        valid = ~mask.all(axis=0) if batch_padding else ~mask[b]
        for c in range(channels):
            weights = ref.softmax(source[b] @ flat[b, :, c], valid)
            out[b, :, c] = source[b].T @ weights
    return out.reshape(context.shape)


@pytest.mark.parametrize(("locations", "multiplier"), [(1024, 4), (4096, 6)])
def test_spatial_padding_mask_follows_the_spec_examples(locations: int, multiplier: int) -> None:
    owner_mask = jnp.eye(10, dtype=bool)
    tiled = attention.spatial_padding_mask(owner_mask, locations, other_sample=True)
    b, q = np.arange(10)[:, None], np.arange(locations)[None, :]
    np.testing.assert_array_equal(np.argmax(tiled, axis=-1), (multiplier * b + q) % 10)
    own = attention.spatial_padding_mask(owner_mask, locations, other_sample=False)
    np.testing.assert_array_equal(np.argmax(own, axis=-1)[:, 0], np.arange(10))


@pytest.mark.parametrize("mask_other_sample", [False, True])
def test_spatial_attention_matches_numpy(mask_other_sample: bool) -> None:
    h, words = random_array((3, 2, 2, 4), 0), random_array((3, 5, 6), 1)
    mask = padding_mask([5, 2, 3], 5)
    module = attention.SpatialAttention(4, mask_other_sample)
    variables = ref.random_variables(module, h, words, mask)
    context, weights = module.apply(variables, h, words, mask)
    kernel = np.asarray(variables["params"]["conv_context"]["kernel"], np.float64)
    expected = numpy_spatial_attention(h, words, kernel, mask, mask_other_sample)
    np.testing.assert_allclose(context, expected[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(weights, expected[1], rtol=1e-4, atol=1e-6)
    other = numpy_spatial_attention(h, words, kernel, mask, not mask_other_sample)
    assert np.abs(other[0] - expected[0]).max() > 1e-2


@pytest.mark.parametrize("batch_padding", [False, True])
def test_channel_attention_matches_numpy(batch_padding: bool) -> None:
    context, words = random_array((2, 3, 3, 4), 2), random_array((2, 6, 5), 3)
    mask = padding_mask([4, 2], 6)
    module = attention.ChannelAttention(3, batch_padding)
    variables = ref.random_variables(module, context, words, mask)
    out = module.apply(variables, context, words, mask)
    kernel = np.asarray(variables["params"]["conv_context"]["kernel"], np.float64)
    expected = numpy_channel_attention(context, words, kernel, mask, batch_padding)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    other = numpy_channel_attention(context, words, kernel, mask, not batch_padding)
    assert np.abs(other - expected).max() > 1e-2


@pytest.mark.parametrize("upstream", [False, True])
def test_masked_attention_has_finite_gradients(upstream: bool) -> None:
    h, words = random_array((2, 3, 3, 4), 4), random_array((2, 5, 6), 5)
    mask = padding_mask([5, 1], 5)
    spatial = attention.SpatialAttention(4, mask_other_sample=upstream)
    channel = attention.ChannelAttention(3, batch_padding=upstream)
    spatial_vars = ref.random_variables(spatial, h, words, mask)
    channel_vars = ref.random_variables(channel, h, words, mask)

    def loss(h: jax.Array, words: jax.Array) -> jax.Array:
        context, weights = spatial.apply(spatial_vars, h, words, mask)
        out = channel.apply(channel_vars, context, words, mask)
        return jnp.sum(out**2) + jnp.sum(weights**2)

    grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(h, words)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
    padded_grad = np.abs(np.asarray(grads[1][1, 1:])).max()
    assert padded_grad > 1e-4 if upstream else padded_grad == 0.0
