"""Discriminator D_NET256: parameter tree, a full NumPy forward of both heads, BatchNorm stats."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxmani.models.discriminator import Discriminator, uniform_bias_init
from tests.models import reference as ref


def bird_variable_shapes(in_channels: int) -> dict:
    """Abstract variables of the bird-sized D (no memory is allocated)."""
    model = Discriminator(in_channels=in_channels)
    init = functools.partial(model.init, train=True, method=Discriminator.logits)
    images = jax.ShapeDtypeStruct((2, 256, 256, in_channels), jnp.float32)
    sent_emb = jax.ShapeDtypeStruct((2, 256), jnp.float32)
    return jax.eval_shape(init, jax.random.key(0), images, sent_emb)


def numpy_block(x: np.ndarray, params: dict, stats: dict, stride: int, pad: int) -> tuple:
    """Conv, train-mode BatchNorm and LeakyReLU; also returns the expected new running stats."""
    pre = ref.conv2d(x, params["conv"]["kernel"], stride, pad)
    out = ref.leaky_relu(ref.batch_norm(pre, params["bn"], None))
    return out, ref.updated_stats(pre, stats)


def numpy_discriminator(images: np.ndarray, sent_emb: np.ndarray, variables: dict) -> tuple:
    """Backbone and both heads of D in float64; returns logits, features and expected stats."""
    params, stats = ref.to_numpy(variables["params"]), variables["batch_stats"]
    s16, s16_stats = params["img_code_s16"], stats["img_code_s16"]
    x = ref.leaky_relu(ref.conv2d(images, s16["conv1"]["kernel"], 2, 1))
    new_stats = {"img_code_s16": {}}
    for i in (2, 3, 4):
        layer = {"conv": s16[f"conv{i}"], "bn": s16[f"bn{i}"]}
        x, new_stats["img_code_s16"][f"bn{i}"] = numpy_block(x, layer, s16_stats[f"bn{i}"], 2, 1)
    for name, stride, pad in (
        ("img_code_s32", 2, 1),
        ("img_code_s64", 2, 1),
        ("img_code_s64_1", 1, 1),
        ("img_code_s64_2", 1, 1),
    ):
        x, block_stats = numpy_block(x, params[name], stats[name]["bn"], stride, pad)
        new_stats[name] = {"bn": block_stats}
    features = x
    batch = features.shape[0]
    sentence = np.broadcast_to(sent_emb[:, None, None, :], (batch, 4, 4, sent_emb.shape[-1]))
    joint, joint_stats = numpy_block(
        np.concatenate([features, sentence], -1),
        params["COND_DNET"]["jointConv"],
        stats["COND_DNET"]["jointConv"]["bn"],
        1,
        1,
    )
    new_stats["COND_DNET"] = {"jointConv": {"bn": joint_stats}}

    def outlogits(h: np.ndarray, head: str) -> np.ndarray:
        conv = params[head]["outlogits"]
        return np.einsum("bhwc,hwc->b", h, conv["kernel"][..., 0]) + conv["bias"][0]

    return outlogits(joint, "COND_DNET"), outlogits(features, "UNCOND_DNET"), features, new_stats


def test_bird_parameter_tree_matches_the_pytorch_state_dict() -> None:
    variables = bird_variable_shapes(3)
    params = traverse_util.flatten_dict(variables["params"], sep="/")
    stats = traverse_util.flatten_dict(variables["batch_stats"], sep="/")
    assert sum(int(np.prod(p.shape)) for p in params.values()) == 71_858_946
    assert sum(int(np.prod(s.shape)) for s in stats.values()) == 2 * 6016
    expected = {
        "img_code_s16/conv1/kernel": (4, 4, 3, 64),
        "img_code_s16/conv4/kernel": (4, 4, 256, 512),
        "img_code_s16/bn2/scale": (128,),
        "img_code_s32/conv/kernel": (4, 4, 512, 1024),
        "img_code_s64/bn/bias": (2048,),
        "img_code_s64_1/conv/kernel": (3, 3, 2048, 1024),
        "img_code_s64_2/conv/kernel": (3, 3, 1024, 512),
        "UNCOND_DNET/outlogits/kernel": (4, 4, 512, 1),
        "UNCOND_DNET/outlogits/bias": (1,),
        "COND_DNET/jointConv/conv/kernel": (3, 3, 768, 512),
        "COND_DNET/outlogits/bias": (1,),
    }
    assert {name: params[name].shape for name in expected} == expected
    four = traverse_util.flatten_dict(bird_variable_shapes(4)["params"], sep="/")
    assert four["img_code_s16/conv1/kernel"].shape == (4, 4, 4, 64)


def test_wrong_channel_count_is_reported() -> None:
    images = jax.ShapeDtypeStruct((1, 256, 256, 4), jnp.float32)
    init = functools.partial(Discriminator(df_dim=2).init, train=True)
    with pytest.raises(ValueError, match="3 channels"):
        jax.eval_shape(init, jax.random.key(0), images)


def test_outlogits_bias_init_is_pytorch_uniform() -> None:
    values = np.asarray(uniform_bias_init(64)(jax.random.key(0), (20000,)))
    assert values.min() >= -0.125
    assert values.max() <= 0.125
    assert values.min() < -0.12
    assert values.max() > 0.12
    assert abs(values.mean()) < 0.005


def test_tiny_forward_matches_numpy_in_train_mode() -> None:
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(3, 256, 256, 3)).astype(np.float32)
    sent_emb = rng.normal(size=(3, 16)).astype(np.float32)
    model = Discriminator(df_dim=4, embedding_dim=16)
    variables = ref.random_variables(model, images, sent_emb, train=False, method=model.logits)

    def run(module: Discriminator, images: jax.Array, sent_emb: jax.Array) -> tuple:
        features = module(images, train=True)
        cond = module.cond_logits(features, sent_emb, train=True)
        return cond, module.uncond_logits(features), features

    def forward(variables: dict, images: jax.Array, sent_emb: jax.Array) -> tuple:
        return model.apply(variables, images, sent_emb, method=run, mutable=["batch_stats"])

    (cond, uncond, features), state = jax.jit(forward, compiler_options=ref.FAST_COMPILE)(
        variables, images, sent_emb
    )
    expected_cond, expected_uncond, expected_features, expected_stats = numpy_discriminator(
        images, sent_emb, variables
    )
    assert features.shape == (3, 4, 4, 32)
    assert cond.shape == uncond.shape == (3,)
    np.testing.assert_allclose(features, expected_features, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(cond, expected_cond, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(uncond, expected_uncond, rtol=1e-3, atol=1e-4)
    got = traverse_util.flatten_dict(state["batch_stats"], sep="/")
    want = traverse_util.flatten_dict(expected_stats, sep="/")
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-3, atol=1e-5, err_msg=name)


def variable_and_output_shapes(image_size: int, df_dim: int = 2, **kwargs: object) -> tuple:
    """Abstract variables and (features, cond, uncond) shapes of a small D at `image_size`."""
    model = Discriminator(df_dim=df_dim, embedding_dim=8, image_size=image_size, **kwargs)
    images = jax.ShapeDtypeStruct((2, image_size, image_size, 3), jnp.float32)
    sent_emb = jax.ShapeDtypeStruct((2, 8), jnp.float32)

    def init(images: jax.Array, sent_emb: jax.Array) -> dict:
        return model.init(jax.random.key(0), images, sent_emb, train=True, method=model.logits)

    variables = jax.eval_shape(init, images, sent_emb)

    def run(module: Discriminator, images: jax.Array, sent_emb: jax.Array) -> tuple:
        features = module(images, train=True)
        cond = module.cond_logits(features, sent_emb, train=True)
        return features, cond, module.uncond_logits(features)

    def apply(variables: dict, images: jax.Array, sent_emb: jax.Array) -> tuple:
        return model.apply(variables, images, sent_emb, method=run, mutable=["batch_stats"])[0]

    return variables, jax.eval_shape(apply, variables, images, sent_emb)


@pytest.mark.parametrize(
    ("image_size", "tail"),
    [
        (64, {}),
        (128, {"img_code_s32": (4, 4, 16, 32), "img_code_s32_1": (3, 3, 32, 16)}),
        (
            256,
            {
                "img_code_s32": (4, 4, 16, 32),
                "img_code_s64": (4, 4, 32, 64),
                "img_code_s64_1": (3, 3, 64, 32),
                "img_code_s64_2": (3, 3, 32, 16),
            },
        ),
    ],
)
def test_every_size_downsamples_to_4x4_with_one_block_per_halving(
    image_size: int, tail: dict
) -> None:
    variables, (features, cond, uncond) = variable_and_output_shapes(image_size)
    params = variables["params"]
    assert set(params) == {"img_code_s16", "UNCOND_DNET", "COND_DNET", *tail}
    assert {name: params[name]["conv"]["kernel"].shape for name in tail} == tail
    assert set(variables["batch_stats"]) == {"img_code_s16", "COND_DNET", *tail}
    assert params["img_code_s16"]["conv4"]["kernel"].shape == (4, 4, 8, 16)
    assert params["COND_DNET"]["jointConv"]["conv"]["kernel"].shape == (3, 3, 24, 16)
    assert features.shape == (2, 4, 4, 16)
    assert cond.shape == uncond.shape == (2,)


def test_unsupported_and_mismatched_image_sizes_are_reported() -> None:
    with pytest.raises(ValueError, match="image sizes 64, 128, 256, not 32"):
        variable_and_output_shapes(32)
    model = Discriminator(df_dim=2, image_size=64)
    images = jax.ShapeDtypeStruct((1, 128, 128, 3), jnp.float32)
    init = functools.partial(model.init, train=True)
    with pytest.raises(ValueError, match="expects 64x64 images with 3 channels"):
        jax.eval_shape(init, jax.random.key(0), images)


def test_bfloat16_forward_keeps_float32_params_and_returns_bfloat16() -> None:
    model = Discriminator(df_dim=2, embedding_dim=8, image_size=64, dtype=jnp.bfloat16)
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    sent_emb = rng.normal(size=(2, 8)).astype(np.float32)
    abstract = jax.eval_shape(
        lambda x, s: model.init(jax.random.key(0), x, s, train=True, method=model.logits),
        images,
        sent_emb,
    )
    assert {leaf.dtype for leaf in jax.tree.leaves(abstract)} == {jnp.dtype(jnp.float32)}
    variables = ref.random_variables(model, images, sent_emb, train=False, method=model.logits)

    def forward(variables: dict, images: jax.Array, sent_emb: jax.Array) -> tuple:
        return model.apply(
            variables, images, sent_emb, train=True, method=model.logits, mutable=["batch_stats"]
        )

    (cond, uncond), state = jax.jit(forward, compiler_options=ref.FAST_COMPILE)(
        variables, images, sent_emb
    )
    assert cond.dtype == uncond.dtype == jnp.bfloat16
    assert bool(jnp.all(jnp.isfinite(cond.astype(jnp.float32))))
    assert {leaf.dtype for leaf in jax.tree.leaves(state)} == {jnp.dtype(jnp.float32)}
