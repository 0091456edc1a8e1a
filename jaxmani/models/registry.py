"""Builds every network from a config, with example inputs for initialisation and benchmarks."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from jaxmani.errors import UserError
from jaxmani.models.blocks import IMAGE_SIZES
from jaxmani.models.discriminator import Discriminator
from jaxmani.models.generator import Generator
from jaxmani.models.image_encoder import (
    SMALL_BLOCKS,
    SMALL_POOLS,
    ImageEncoder,
    SmallImageEncoder,
)
from jaxmani.models.inception import InceptionV3
from jaxmani.models.text_encoder import TextEncoder
from jaxmani.models.vgg import VGG16Features

INCEPTION_REGION_SIZE = 17  # Region grid of the Inception image encoder (Mixed_6e at 299x299).
VGG_CHANNELS = 128  # Channels of VGG16 relu2_2.
INCEPTION_SIZE = 299  # Input side of every Inception-v3.
IMAGE_ENCODERS = ("inception", "small")  # Choices of config.model.image.encoder.

# Values of config.train.dtype: the computation dtype of G and D.
COMPUTE_DTYPES = ("float32", "bfloat16")
# Networks counted by `jaxmani info`, in its order.
GAN_NETWORKS = ("generator", "discriminator", "text_encoder", "image_encoder", "vgg")
# Every network `jaxmani convert` can produce.
NETWORKS = (*GAN_NETWORKS, "inception", "fid_inception")


def create_network(
    name: str, config: ml_collections.ConfigDict, bn_axis_name: str | None = None
) -> nn.Module:
    """Returns the linen module `name` sized by `config`.

    Args:
      name: one of NETWORKS.
      config: the run configuration (config.model, config.compat, config.data.image_size and
        config.train.dtype, the computation dtype of G and D; their parameters stay float32).
      bn_axis_name: pmap/shard_map axis over which the BatchNorms of the generator and the
        discriminator take global-batch statistics in train mode; None = per call.
    """
    check_network_name(name)
    check_model_config(config)
    model, compat, size = config.model, config.compat, config.data.image_size
    if name == "generator":
        return Generator(
            gf_dim=model.g.gf_dim,
            z_dim=model.g.z_dim,
            condition_dim=model.g.condition_dim,
            embedding_dim=model.embedding_dim,
            r_num=model.g.r_num,
            image_size=size,
            attention_mask_other_sample=compat.attention_mask_other_sample,
            channel_attention_batch_padding=compat.channel_attention_batch_padding,
            skip_init_bn_at_batch_one=compat.skip_init_bn_at_batch_one,
            nearest_scale_index=compat.nearest_scale_index,
            ca_noise_at_eval=compat.ca_noise_at_eval,
            bn_axis_name=bn_axis_name,
            dtype=jnp.dtype(config.train.dtype),
        )
    if name == "discriminator":
        return Discriminator(
            df_dim=model.d.df_dim,
            embedding_dim=model.embedding_dim,
            in_channels=4 if model.d.sharp_channel else 3,
            image_size=size,
            bn_axis_name=bn_axis_name,
            dtype=jnp.dtype(config.train.dtype),
        )
    if name == "text_encoder":
        return TextEncoder(
            vocab_size=model.text.vocab_size,
            word_dim=model.text.word_dim,
            hidden_dim=model.embedding_dim,
            dropout=model.text.dropout,
        )
    if name == "image_encoder":
        if model.image.encoder == "inception":
            return ImageEncoder(embedding_dim=model.embedding_dim)
        return SmallImageEncoder(
            embedding_dim=model.embedding_dim, width=model.image.width, pool=model.image.pool
        )
    if name == "vgg":
        return VGG16Features()
    if name == "inception":
        return InceptionV3(variant="torchvision", num_classes=1000)
    return InceptionV3(variant="fid", num_classes=1008)


def check_model_config(config: ml_collections.ConfigDict) -> None:
    """Raises a UserError when the image size or the image encoder is not one jaxmani builds."""
    if config.data.image_size not in IMAGE_SIZES:
        raise UserError(
            f"config.data.image_size={config.data.image_size}: the networks build for "
            f"{', '.join(map(str, IMAGE_SIZES))}"
        )
    if config.model.image.encoder not in IMAGE_ENCODERS:
        raise UserError(
            f"config.model.image.encoder={config.model.image.encoder!r}: choose one of "
            f"{', '.join(IMAGE_ENCODERS)}"
        )
    if config.model.image.pool not in SMALL_POOLS:
        raise UserError(
            f"config.model.image.pool={config.model.image.pool!r}: choose one of "
            f"{', '.join(SMALL_POOLS)}"
        )


def region_size(config: ml_collections.ConfigDict) -> int:
    """Side of the image encoder's region grid: 17 (Inception) or image_size / 8 (small)."""
    if config.model.image.encoder == "inception":
        return INCEPTION_REGION_SIZE
    return config.data.image_size // 2**SMALL_BLOCKS


def check_network_name(name: str) -> None:
    """Raises a UserError naming the valid networks when `name` is not one of them."""
    if name not in NETWORKS:
        raise UserError(f"unknown network {name!r}; choose one of {', '.join(NETWORKS)}")


def example_inputs(
    name: str, config: ml_collections.ConfigDict, batch_size: int
) -> dict[str, jax.Array]:
    """Returns zero-valued keyword inputs of the right shapes for network `name`.

    The generator gets the configured image encoder's region grid and VGG features at S/2.
    """
    check_network_name(name)
    model, size, b = config.model, config.data.image_size, batch_size
    words = config.data.words_num
    image = jnp.zeros((b, size, size, 3), jnp.float32)
    if name == "generator":
        region = region_size(config)
        return {
            "z": jnp.zeros((b, model.g.z_dim)),
            "sent_emb": jnp.zeros((b, model.embedding_dim)),
            "words_emb": jnp.zeros((b, words, model.embedding_dim)),
            "mask": jnp.zeros((b, words), bool),
            "cnn_code": jnp.zeros((b, model.embedding_dim)),
            "region_features": jnp.zeros((b, region, region, model.embedding_dim)),
            "vgg_features": jnp.zeros((b, size // 2, size // 2, VGG_CHANNELS)),
        }
    if name == "discriminator":
        channels = 4 if model.d.sharp_channel else 3
        return {
            "images": jnp.zeros((b, size, size, channels)),
            "sent_emb": jnp.zeros((b, model.embedding_dim)),
        }
    if name == "text_encoder":
        return {"tokens": jnp.ones((b, words), jnp.int32), "lengths": jnp.full((b,), words)}
    if name in ("image_encoder", "vgg"):
        return {"images": image}
    return {"x": jnp.zeros((b, INCEPTION_SIZE, INCEPTION_SIZE, 3))}


def apply_fn(name: str) -> Callable[..., Any] | None:
    """Returns the `method` that runs network `name` fully (None means `__call__`)."""
    return Discriminator.logits if name == "discriminator" else None


def init_variables(
    name: str, config: ml_collections.ConfigDict, rng: jax.Array, batch_size: int = 2
) -> dict[str, Any]:
    """Initialises network `name` on example inputs (eval mode; G gets a 'noise' stream).

    The init runs compiled: op by op, the bird-sized networks take minutes on a CPU.
    """
    module = create_network(name, config)
    inputs = example_inputs(name, config, batch_size)
    train_kw = {} if name in ("image_encoder", "vgg") else {"train": False}
    if name == "generator":
        inputs["ca_eps"] = jnp.zeros((batch_size, config.model.g.condition_dim))

    def init(rng: jax.Array) -> dict[str, Any]:
        return module.init({"params": rng}, **inputs, **train_kw, method=apply_fn(name))

    return jax.jit(init)(rng)


def abstract_variables(name: str, config: ml_collections.ConfigDict) -> dict[str, Any]:
    """Shapes and dtypes of network `name`'s variables, without allocating them."""
    return jax.eval_shape(lambda rng: init_variables(name, config, rng), jax.random.key(0))


def count_params(variables: dict[str, Any]) -> int:
    """Number of trainable parameters (the 'params' collection only)."""
    return sum(int(leaf.size) for leaf in jax.tree_util.tree_leaves(variables.get("params", {})))
