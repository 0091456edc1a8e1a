"""Generator G_NET: parameter tree, shapes at each size, padding invariance, BatchNorm, CA noise."""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxmani.models.generator import Generator, fc_code_to_nhwc
from tests.models import reference as ref

TINY = {"gf_dim": 4, "z_dim": 8, "condition_dim": 6, "embedding_dim": 16, "r_num": 1}
UPSTREAM_MASKING = (
    ("attention_mask_other_sample", True),
    ("channel_attention_batch_padding", True),
)


def tiny_inputs(lengths: list[int], num_words: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs for the tiny generator; word features are zero at padding positions."""
    rng = np.random.default_rng(seed)
    batch, emb = len(lengths), TINY["embedding_dim"]
    mask = np.arange(num_words)[None, :] >= np.asarray(lengths)[:, None]
    words = rng.normal(size=(batch, num_words, emb)) * ~mask[..., None]

    def normal(*shape: int) -> np.ndarray:
        return rng.normal(size=shape).astype(np.float32)

    return {
        "z": normal(batch, TINY["z_dim"]),
        "sent_emb": normal(batch, emb),
        "words_emb": words.astype(np.float32),
        "mask": mask,
        "cnn_code": normal(batch, emb),
        "region_features": normal(batch, 17, 17, emb),
        "vgg_features": normal(batch, 128, 128, 128),
    }


@functools.cache
def tiny_variables() -> dict:
    """Seeded random variables of the tiny generator (the tree does not depend on B or T)."""
    return ref.random_variables(Generator(**TINY), **tiny_inputs([2], 2), train=False)


@functools.cache
def jit_apply(flags: tuple[tuple[str, bool], ...], train: bool) -> Callable:
    """A compiled tiny-generator apply; in train mode it also returns the new batch stats."""
    model = Generator(**TINY, **dict(flags))
    mutable = ["batch_stats"] if train else False

    def apply(variables: dict, inputs: dict, ca_eps: jax.Array | None) -> object:
        return model.apply(variables, **inputs, train=train, ca_eps=ca_eps, mutable=mutable)

    return jax.jit(apply, compiler_options=ref.FAST_COMPILE)


def with_extra_padding(inputs: dict[str, np.ndarray], extra: int) -> dict[str, np.ndarray]:
    """Appends `extra` all-padding word columns filled with garbage features."""
    batch, _, emb = inputs["words_emb"].shape
    garbage = np.random.default_rng(9).normal(size=(batch, extra, emb)).astype(np.float32)
    return {
        **inputs,
        "words_emb": np.concatenate([inputs["words_emb"], garbage], axis=1),
        "mask": np.concatenate([inputs["mask"], np.ones((batch, extra), bool)], axis=1),
    }


def test_bird_parameter_tree_matches_the_pytorch_state_dict() -> None:
    structs = (
        jax.ShapeDtypeStruct((2, 100), jnp.float32),
        jax.ShapeDtypeStruct((2, 256), jnp.float32),
        jax.ShapeDtypeStruct((2, 18, 256), jnp.float32),
        jax.ShapeDtypeStruct((2, 18), jnp.bool_),
        jax.ShapeDtypeStruct((2, 256), jnp.float32),
        jax.ShapeDtypeStruct((2, 17, 17, 256), jnp.float32),
        jax.ShapeDtypeStruct((2, 128, 128, 128), jnp.float32),
    )
    init = functools.partial(Generator().init, train=False)
    variables = jax.eval_shape(init, jax.random.key(0), *structs)
    params = traverse_util.flatten_dict(variables["params"], sep="/")
    stats = traverse_util.flatten_dict(variables["batch_stats"], sep="/")
    assert sum(int(np.prod(p.shape)) for p in params.values()) == 15_809_840
    assert sum(int(np.prod(s.shape)) for s in stats.values()) == 2 * (16384 + 32)
    expected = {
        "ca_net/fc/kernel": (256, 400),
        "ca_net/fc/bias": (400,),
        "h_net1/fc/kernel": (456, 16384),
        "h_net1/fc_bn/scale": (16384,),
        "h_net1/upsample1/conv/kernel": (3, 3, 512, 512),
        "h_net1/upsample4/conv/kernel": (3, 3, 192, 64),
        "h_net1/residual_1/conv1/kernel": (3, 3, 192, 384),
        "h_net1/residual_1/conv2/kernel": (3, 3, 192, 192),
        "h_net1/ACM/conv/kernel": (3, 3, 32, 128),
        "h_net1/ACM/conv_weight/kernel": (3, 3, 128, 192),
        "h_net1/att/conv_context/kernel": (256, 64),
        "h_net1/channel_att/conv_context/kernel": (256, 1024),
        "imgUpSample1/conv/kernel": (3, 3, 256, 64),
        "imgUpSample2/conv/kernel": (4, 4, 128, 32),
        "imgUpSample2/bn/bias": (32,),
        "h_net3/att/conv_context/kernel": (256, 32),
        "h_net3/channel_att/conv_context/kernel": (256, 4096),
        "h_net3/ACM/conv_bias/kernel": (3, 3, 128, 96),
        "h_net3/upsample/conv/kernel": (3, 3, 96, 64),
        "h_net3/upsample2/conv/kernel": (3, 3, 32, 64),
        "imgUpSample4/conv/kernel": (3, 3, 32, 64),
        "ACM/conv_weight/kernel": (3, 3, 128, 32),
        "img_net/conv/kernel": (3, 3, 32, 3),
    }
    assert {name: params[name].shape for name in expected} == expected


def test_input_width_mismatch_is_reported() -> None:
    inputs = tiny_inputs([2], 2)
    inputs["cnn_code"] = np.zeros((1, 5), np.float32)
    with pytest.raises(ValueError, match="cnn_code"):
        jax.eval_shape(
            functools.partial(Generator(**TINY).init, train=False, **inputs), jax.random.key(0)
        )


def test_fc_code_is_reshaped_channel_major() -> None:
    x = np.arange(2 * 3 * 16).reshape(2, 48)
    b, h, w, c = np.indices((2, 4, 4, 3))
    np.testing.assert_array_equal(fc_code_to_nhwc(jnp.asarray(x), 3), x[b, c * 16 + h * 4 + w])


def test_extra_padding_columns_change_nothing_in_either_mode() -> None:
    base = tiny_inputs([4, 2], 4)
    extended = with_extra_padding(base, 2)
    images = []
    for flags in ((), UPSTREAM_MASKING):
        out = jit_apply(flags, False)(tiny_variables(), base, None)
        out_extended = jit_apply(flags, False)(tiny_variables(), extended, None)
        assert out["image"].shape == (2, 256, 256, 3)
        assert out["attention"].shape == (2, 64, 64, 4)
        assert out["mu"].shape == out["logvar"].shape == (2, 6)
        assert float(jnp.max(jnp.abs(out["image"]))) < 1.0
        np.testing.assert_allclose(out["attention"].sum(-1), 1.0, atol=1e-5)
        np.testing.assert_allclose(out_extended["image"], out["image"], atol=1e-5)
        np.testing.assert_allclose(out_extended["attention"][..., :4], out["attention"], atol=1e-6)
        np.testing.assert_array_equal(out_extended["attention"][..., 4:], 0.0)
        images.append(out["image"])
    assert float(jnp.max(jnp.abs(images[0] - images[1]))) > 1e-3


def test_train_mode_uses_injected_eps_and_updates_batch_norm_stats() -> None:
    inputs = tiny_inputs([4, 3, 2], 4)
    variables = tiny_variables()
    eps = np.random.default_rng(5).normal(size=(3, 6)).astype(np.float32)
    apply = jit_apply((), True)
    out, state = apply(variables, inputs, eps)
    out_again, _ = apply(variables, inputs, eps)
    out_other, _ = apply(variables, inputs, eps + 1.0)
    np.testing.assert_array_equal(out_again["image"], out["image"])
    assert float(jnp.max(jnp.abs(out_other["image"] - out["image"]))) > 1e-3

    params = ref.to_numpy(variables["params"])
    fc = inputs["sent_emb"] @ params["ca_net"]["fc"]["kernel"] + params["ca_net"]["fc"]["bias"]
    mu, logvar = np.split(ref.glu(fc), 2, axis=-1)
    np.testing.assert_allclose(out["mu"], mu, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["logvar"], logvar, rtol=1e-4, atol=1e-5)
    code = np.concatenate([mu + eps * np.exp(0.5 * logvar), inputs["z"], inputs["cnn_code"]], -1)
    fc_out = code @ params["h_net1"]["fc"]["kernel"]
    down = ref.conv2d(
        inputs["vgg_features"], params["imgUpSample2"]["conv"]["kernel"], stride=2, pad=1
    )
    old, new = variables["batch_stats"], state["batch_stats"]
    for path, features in ((("h_net1", "fc_bn"), fc_out), (("imgUpSample2", "bn"), down)):
        expected = ref.updated_stats(features, old[path[0]][path[1]])
        for name in ("mean", "var"):
            got = new[path[0]][path[1]][name]
            np.testing.assert_allclose(got, expected[name], rtol=1e-4, atol=1e-5)


def test_init_batch_norm_is_skipped_at_batch_one_when_asked() -> None:
    inputs = tiny_inputs([3], 4)
    variables = tiny_variables()
    fc_bn = variables["params"]["h_net1"]["fc_bn"]
    perturbed = jax.tree_util.tree_map(lambda x: x, variables)
    perturbed["params"]["h_net1"]["fc_bn"] = {
        "scale": 3 * fc_bn["scale"],
        "bias": fc_bn["bias"] + 1,
    }
    apply = jit_apply((("skip_init_bn_at_batch_one", True),), True)
    eps = np.zeros((1, 6), np.float32)
    out, state = apply(variables, inputs, eps)
    out_perturbed, _ = apply(perturbed, inputs, eps)
    np.testing.assert_allclose(out_perturbed["image"], out["image"], atol=1e-6)
    old, new = variables["batch_stats"], state["batch_stats"]
    np.testing.assert_array_equal(new["h_net1"]["fc_bn"]["mean"], old["h_net1"]["fc_bn"]["mean"])
    assert not np.allclose(new["imgUpSample2"]["bn"]["mean"], old["imgUpSample2"]["bn"]["mean"])


def sample_condition(
    model: Generator,
    mu: np.ndarray,
    logvar: np.ndarray,
    train: bool,
    ca_eps: np.ndarray | None,
    seed: int | None,
) -> np.ndarray:
    """Runs only the CA sampling of `model`, with a 'noise' stream when seed is given."""
    rngs = {} if seed is None else {"noise": jax.random.key(seed)}
    method = Generator.sample_condition
    return np.asarray(model.apply({}, mu, logvar, train, ca_eps, method=method, rngs=rngs))


def test_ca_noise_is_injected_drawn_or_absent() -> None:
    rng = np.random.default_rng(3)
    mu, logvar = rng.normal(size=(400, 25)), 0.5 * rng.normal(size=(400, 25))
    eps = rng.normal(size=(400, 25))
    with_eps = mu + eps * np.exp(0.5 * logvar)
    plain, noisy_eval = Generator(**TINY), Generator(**TINY, ca_noise_at_eval=True)
    np.testing.assert_array_equal(sample_condition(plain, mu, logvar, False, eps, None), mu)
    for model, train in ((plain, True), (noisy_eval, False)):
        got = sample_condition(model, mu, logvar, train, eps, None)
        np.testing.assert_allclose(got, with_eps, rtol=1e-5, atol=1e-5)
        drawn = sample_condition(model, mu, logvar, train, None, 1)
        np.testing.assert_array_equal(sample_condition(model, mu, logvar, train, None, 1), drawn)
        assert not np.allclose(sample_condition(model, mu, logvar, train, None, 2), drawn)
        standardised = (drawn - mu) / np.exp(0.5 * logvar)
        assert abs(standardised.mean()) < 0.05
        assert abs(standardised.std() - 1.0) < 0.05


def input_structs(image_size: int, region: int, batch: int = 2, words: int = 5) -> dict:
    """Abstract inputs of the tiny generator at `image_size` with a region x region grid."""
    emb, half = TINY["embedding_dim"], image_size // 2

    def struct(*shape: int, dtype: jnp.dtype = jnp.float32) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(shape, dtype)

    return {
        "z": struct(batch, TINY["z_dim"]),
        "sent_emb": struct(batch, emb),
        "words_emb": struct(batch, words, emb),
        "mask": struct(batch, words, dtype=jnp.bool_),
        "cnn_code": struct(batch, emb),
        "region_features": struct(batch, region, region, emb),
        "vgg_features": struct(batch, half, half, 128),
    }


@pytest.mark.parametrize("region", [17, None], ids=["inception_grid", "small_grid"])
@pytest.mark.parametrize(("image_size", "upsamples"), [(64, 1), (128, 2), (256, 3)])
def test_every_size_attends_at_s_over_8_and_s_over_4(
    image_size: int, upsamples: int, region: int | None
) -> None:
    model = Generator(**TINY, image_size=image_size)
    inputs = input_structs(image_size, region or image_size // 8)
    variables = jax.eval_shape(
        lambda rng, x: model.init(rng, **x, train=False), jax.random.key(0), inputs
    )
    params = traverse_util.flatten_dict(variables["params"], sep="/")
    gf, emb = TINY["gf_dim"], TINY["embedding_dim"]
    code_width = TINY["condition_dim"] + TINY["z_dim"] + emb
    ups = sorted(k.split("/")[1] for k in params if k.startswith("h_net1/upsample"))
    assert ups == [f"upsample{i}" for i in range(1, upsamples + 2)]
    assert params["h_net1/fc/kernel"].shape == (code_width, 2 * gf * 2**upsamples * 32)
    assert params[f"h_net1/upsample{upsamples}/conv/kernel"].shape[-1] == 2 * 2 * gf
    assert params["h_net1/att/conv_context/kernel"].shape == (emb, 2 * gf)
    assert params["h_net1/channel_att/conv_context/kernel"].shape == (emb, (image_size // 8) ** 2)
    assert params["h_net3/channel_att/conv_context/kernel"].shape == (emb, (image_size // 4) ** 2)
    outputs = jax.eval_shape(lambda v, x: model.apply(v, **x, train=False), variables, inputs)
    assert outputs["image"].shape == (2, image_size, image_size, 3)
    assert outputs["attention"].shape == (2, image_size // 4, image_size // 4, 5)
    assert outputs["mu"].shape == outputs["logvar"].shape == (2, TINY["condition_dim"])


def test_unsupported_size_and_wrong_vgg_size_are_reported() -> None:
    def init(image_size: int, inputs: dict) -> None:
        model = Generator(**TINY, image_size=image_size)
        jax.eval_shape(lambda x: model.init(jax.random.key(0), **x, train=False), inputs)

    with pytest.raises(ValueError, match="image sizes 64, 128, 256, not 96"):
        init(96, input_structs(96, 12))
    inputs = input_structs(128, 16) | {"vgg_features": input_structs(64, 8)["vgg_features"]}
    with pytest.raises(ValueError, match="vgg_features at 64x64, got 32x32"):
        init(128, inputs)


def test_bfloat16_forward_keeps_float32_params_and_returns_bfloat16() -> None:
    inputs = jax.tree.map(
        lambda s: np.zeros(s.shape, s.dtype) + (s.dtype != jnp.bool_), input_structs(64, 8)
    )
    model = Generator(**TINY, image_size=64, dtype=jnp.bfloat16)
    abstract = jax.eval_shape(lambda x: model.init(jax.random.key(0), **x, train=False), inputs)
    assert {leaf.dtype for leaf in jax.tree.leaves(abstract)} == {jnp.dtype(jnp.float32)}
    variables = ref.random_variables(model, **inputs, train=False)
    eps = np.ones((2, TINY["condition_dim"]), np.float32)

    def forward(variables: dict, inputs: dict) -> tuple:
        return model.apply(variables, **inputs, train=True, ca_eps=eps, mutable=["batch_stats"])

    outputs, _ = jax.jit(forward, compiler_options=ref.FAST_COMPILE)(variables, inputs)
    assert outputs["image"].dtype == jnp.bfloat16
    assert outputs["image"].shape == (2, 64, 64, 3)
    assert bool(jnp.all(jnp.isfinite(outputs["image"].astype(jnp.float32))))
