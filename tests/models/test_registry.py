"""The registry builds every network at 64, 128 and 256 from a config; the configs' sizes."""

import jax
import pytest

from configs import bird, default, parity_lightweight, parity_seed, tiny
from jaxmani.errors import UserError
from jaxmani.models import registry
from jaxmani.models.image_encoder import ImageEncoder, SmallImageEncoder

SIZES = (64, 128, 256)


def tiny_config(image_size: int, encoder: str = "small"):
    """The tiny config at `image_size` with the given DAMSM image encoder."""
    config = tiny.get_config()
    config.data.image_size = image_size
    config.model.image.encoder = encoder
    return config


@pytest.mark.parametrize("encoder", ["small", "inception"])
@pytest.mark.parametrize("image_size", SIZES)
def test_generator_inputs_follow_the_image_encoder_and_the_size(
    image_size: int, encoder: str
) -> None:
    config = tiny_config(image_size, encoder)
    inputs = registry.example_inputs("generator", config, batch_size=3)
    region = 17 if encoder == "inception" else image_size // 8
    assert inputs["region_features"].shape == (3, region, region, 16)
    assert inputs["vgg_features"].shape == (3, image_size // 2, image_size // 2, 128)
    encoder_inputs = registry.example_inputs("image_encoder", config, batch_size=3)
    if encoder == "small":
        region_features, _ = jax.eval_shape(
            registry.create_network("image_encoder", config).apply,
            registry.abstract_variables("image_encoder", config),
            **encoder_inputs,
        )
        assert region_features.shape == inputs["region_features"].shape
    generator = registry.create_network("generator", config)
    outputs = jax.eval_shape(
        lambda v, x: generator.apply(v, **x, train=False),
        registry.abstract_variables("generator", config),
        inputs,
    )
    assert outputs["image"].shape == (3, image_size, image_size, 3)


@pytest.mark.parametrize("image_size", SIZES)
def test_discriminator_takes_the_configured_size(image_size: int) -> None:
    config = tiny_config(image_size)
    discriminator = registry.create_network("discriminator", config)
    assert discriminator.image_size == image_size
    cond, uncond = jax.eval_shape(
        lambda v, x: discriminator.apply(
            v, **x, train=False, method=registry.apply_fn("discriminator")
        ),
        registry.abstract_variables("discriminator", config),
        registry.example_inputs("discriminator", config, batch_size=2),
    )
    assert cond.shape == uncond.shape == (2,)


def test_image_encoder_choice_and_bn_axis_name() -> None:
    assert isinstance(registry.create_network("image_encoder", bird.get_config()), ImageEncoder)
    small = registry.create_network("image_encoder", tiny.get_config())
    assert isinstance(small, SmallImageEncoder) and small.width == 8 and small.pool == "mean"
    config = tiny.get_config()
    config.model.image.pool = "max"
    assert registry.create_network("image_encoder", config).pool == "max"
    for name in ("generator", "discriminator"):
        assert registry.create_network(name, tiny.get_config()).bn_axis_name is None
        module = registry.create_network(name, tiny.get_config(), bn_axis_name="batch")
        assert module.bn_axis_name == "batch"


def test_unsupported_size_or_encoder_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"image_size=96: the networks build for 64, 128, 256"):
        registry.create_network("generator", tiny_config(96))
    with pytest.raises(UserError, match="encoder='vit': choose one of inception, small"):
        registry.create_network("image_encoder", tiny_config(64, "vit"))
    config = tiny_config(64)
    config.model.image.pool = "median"
    with pytest.raises(UserError, match="pool='median': choose one of mean, max"):
        registry.create_network("image_encoder", config)


def test_config_sizes_and_parity_switches() -> None:
    for module, size, encoder in (
        (default, 64, "small"),
        (tiny, 64, "small"),
        (bird, 256, "inception"),
    ):
        config = module.get_config()
        assert (config.data.image_size, config.model.image.encoder) == (size, encoder)
    assert bird.get_config().data.name == "cub_birds"
    seed, lightweight = parity_seed.get_config(), parity_lightweight.get_config()
    assert all(seed.compat.values())
    assert {name for name, on in lightweight.compat.items() if not on} == {
        "skip_init_bn_at_batch_one"
    }
    assert seed.data.image_size == lightweight.data.image_size == 256
