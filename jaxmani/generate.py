"""The one forward pass of the manipulation model: frozen encoders, then the generator.

Training, evaluation, the demo and the editing API all call `encode` and `generate`. The frozen
networks (text encoder, DAMSM image encoder, VGG16 relu2_2) always run in eval mode; the generator
runs in train mode (batch statistics, which it returns updated) or eval mode.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from jaxmani.models import registry
from jaxmani.models.layers import norm_dtype

FROZEN_NETWORKS = ("text_encoder", "image_encoder", "vgg")


@dataclasses.dataclass(frozen=True)
class Networks:
    """The linen modules of one configuration (static: safe to close over in jit)."""

    generator: nn.Module
    text_encoder: nn.Module
    image_encoder: nn.Module
    vgg: nn.Module


def create_networks(config: ml_collections.ConfigDict) -> Networks:
    """Builds the generator and the frozen networks of `config`."""
    return Networks(
        **{name: registry.create_network(name, config) for name in ("generator", *FROZEN_NETWORKS)}
    )


@dataclasses.dataclass(frozen=True)
class Encoded:
    """Frozen-network features of a batch of (image, caption) pairs."""

    words: jax.Array  # (B, T, E) word features; zero at padding.
    sentence: jax.Array  # (B, E) sentence embedding.
    mask: jax.Array  # (B, T) bool, True = padding.
    region: jax.Array  # (B, R, R, E) DAMSM region features of the image.
    code: jax.Array  # (B, E) DAMSM global image code.
    vgg: jax.Array  # (B, S/2, S/2, 128) VGG16 relu2_2 features of the image.


jax.tree_util.register_dataclass(
    Encoded, data_fields=[f.name for f in dataclasses.fields(Encoded)], meta_fields=[]
)


def broadcast_images(features: jax.Array, batch: int) -> jax.Array:
    """Repeats image features of one image for `batch` captions (upstream tiles the code)."""
    if features.shape[0] == batch:
        return features
    if features.shape[0] != 1:
        raise ValueError(f"{features.shape[0]} images for {batch} captions: give 1 or {batch}")
    return jnp.broadcast_to(features, (batch, *features.shape[1:]))


def encode(
    networks: Networks,
    frozen: dict[str, Any],
    images: jax.Array,
    captions: jax.Array,
    lengths: jax.Array,
) -> Encoded:
    """Runs the frozen networks on images (N, S, S, 3) and captions (B, T) with N in {1, B}.

    Every output is gradient-free (the baseline detaches the text embeddings; the image features
    of a real image need no gradient either).
    """
    words, sentence = networks.text_encoder.apply(frozen["text_encoder"], captions, lengths)
    region, code = networks.image_encoder.apply(frozen["image_encoder"], images)
    vgg = networks.vgg.apply(frozen["vgg"], images)
    batch = captions.shape[0]
    encoded = Encoded(
        words=words,
        sentence=sentence,
        mask=captions == 0,
        region=broadcast_images(region, batch),
        code=broadcast_images(code, batch),
        vgg=broadcast_images(vgg, batch),
    )
    return jax.lax.stop_gradient(encoded)


def recaption(
    networks: Networks,
    frozen: dict[str, Any],
    encoded: Encoded,
    captions: jax.Array,
    lengths: jax.Array,
) -> Encoded:
    """`encoded` with the text features of `captions` (B, T) in place of its own (same images)."""
    words, sentence = networks.text_encoder.apply(frozen["text_encoder"], captions, lengths)
    text = {"words": words, "sentence": sentence, "mask": captions == 0}
    return dataclasses.replace(encoded, **jax.lax.stop_gradient(text))


def generate(
    networks: Networks,
    g_variables: dict[str, Any],
    encoded: Encoded,
    z: jax.Array,
    *,
    train: bool,
    noise_rng: jax.Array | None = None,
    ca_eps: jax.Array | None = None,
) -> tuple[dict[str, jax.Array], dict[str, Any]]:
    """Runs G on encoded inputs; returns its outputs and the updated `batch_stats` (train mode).

    Outputs: `image` (B, S, S, 3) tanh, `attention` (B, S/4, S/4, T), `mu`, `logvar`, in float32
    (float64 for a float64 G) whatever G's computation dtype. In eval mode the returned
    batch_stats are the given ones.
    """
    rngs = {} if noise_rng is None else {"noise": noise_rng}
    outputs, updates = networks.generator.apply(
        g_variables,
        z=z,
        sent_emb=encoded.sentence,
        words_emb=encoded.words,
        mask=encoded.mask,
        cnn_code=encoded.code,
        region_features=encoded.region,
        vgg_features=encoded.vgg,
        train=train,
        ca_eps=ca_eps,
        rngs=rngs,
        mutable=["batch_stats"] if train else [],
    )
    batch_stats = updates["batch_stats"] if train else g_variables["batch_stats"]
    outputs = {key: value.astype(norm_dtype(value.dtype)) for key, value in outputs.items()}
    return outputs, batch_stats


def edit(
    networks: Networks,
    g_variables: dict[str, Any],
    frozen: dict[str, Any],
    images: jax.Array,
    captions: jax.Array,
    lengths: jax.Array,
    z: jax.Array,
    ca_eps: jax.Array | None = None,
    noise_rng: jax.Array | None = None,
) -> dict[str, jax.Array]:
    """G in eval mode on N in {1, B} images and B captions (evaluation, editing, the demo):
    G's outputs (`image`, `attention`, ...) and the captions' DAMSM `sentence` embedding."""
    encoded = encode(networks, frozen, images, captions, lengths)
    outputs, _ = generate(
        networks, g_variables, encoded, z, train=False, noise_rng=noise_rng, ca_eps=ca_eps
    )
    return {**outputs, "sentence": encoded.sentence}


def sample_z(rng: jax.Array, batch: int, config: ml_collections.ConfigDict) -> jax.Array:
    """Generator noise z ~ N(0, 1) of shape (batch, z_dim)."""
    return jax.random.normal(rng, (batch, config.model.g.z_dim))
