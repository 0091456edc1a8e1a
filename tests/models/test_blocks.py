"""GAN building blocks against NumPy references and the index maps of BASELINE_SPEC §7.1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmani.models import blocks
from tests.models import reference as ref

MODERN_MAP = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 10, 10, 11, 11, 12, 12, 13]
MODERN_MAP += [13, 14, 14, 15, 15, 16]
LEGACY_MAP = [*MODERN_MAP[:17], 9, *MODERN_MAP[18:]]


def random_input(shape: tuple[int, ...], seed: int = 1) -> jax.Array:
    """Seeded N(0, 1) float32 input."""
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def test_nearest_indices_match_the_spec_maps() -> None:
    assert blocks.nearest_indices(17, 32, nearest_scale_index=True).tolist() == MODERN_MAP
    assert blocks.nearest_indices(17, 32, nearest_scale_index=False).tolist() == LEGACY_MAP
    assert [i for i in range(32) if MODERN_MAP[i] != LEGACY_MAP[i]] == [17]


@pytest.mark.parametrize("nearest_scale_index", [False, True])
@pytest.mark.parametrize(("in_size", "out_size"), [(17, 16), (17, 8), (8, 8), (16, 16)])
def test_nearest_indices_use_the_size_ratio_for_other_sizes(
    in_size: int, out_size: int, nearest_scale_index: bool
) -> None:
    indices = blocks.nearest_indices(in_size, out_size, nearest_scale_index)
    expected = [i * in_size // out_size for i in range(out_size)]  # floor(i * in / out)
    assert indices.tolist() == expected
    if in_size == out_size:
        assert expected == list(range(out_size))


@pytest.mark.parametrize("nearest_scale_index", [False, True])
def test_img_up_block_matches_numpy(nearest_scale_index: bool) -> None:
    x = random_input((2, 17, 17, 3))
    module = blocks.ImgUpBlock(4, 32, nearest_scale_index)
    variables = ref.random_variables(module, x)
    out = module.apply(variables, x)
    index = MODERN_MAP if nearest_scale_index else LEGACY_MAP
    upsampled = np.asarray(x, np.float64)[:, index][:, :, index]
    kernel = variables["params"]["conv"]["kernel"]
    expected = ref.glu(ref.instance_norm(ref.conv2d(upsampled, kernel, pad=1)))
    assert out.shape == (2, 32, 32, 4)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_up_block_matches_numpy() -> None:
    x = random_input((2, 5, 6, 3))
    module = blocks.UpBlock(4)
    variables = ref.random_variables(module, x)
    out = module.apply(variables, x)
    upsampled = np.repeat(np.repeat(np.asarray(x, np.float64), 2, axis=1), 2, axis=2)
    kernel = variables["params"]["conv"]["kernel"]
    expected = ref.glu(ref.instance_norm(ref.conv2d(upsampled, kernel, pad=1)))
    assert out.shape == (2, 10, 12, 4)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_res_block_matches_numpy() -> None:
    x = random_input((2, 6, 5, 4))
    module = blocks.ResBlock(4)
    variables = ref.random_variables(module, x)
    out = module.apply(variables, x)
    params = variables["params"]
    h = ref.glu(ref.instance_norm(ref.conv2d(x, params["conv1"]["kernel"], pad=1)))
    expected = ref.instance_norm(ref.conv2d(h, params["conv2"]["kernel"], pad=1)) + np.asarray(x)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_acm_matches_numpy() -> None:
    x, img = random_input((2, 6, 6, 5)), random_input((2, 6, 6, 3), seed=2)
    module = blocks.ACM(5, hidden=7)
    variables = ref.random_variables(module, x, img)
    out = module.apply(variables, x, img)
    params = variables["params"]
    h = ref.conv2d(img, params["conv"]["kernel"], pad=1)
    weight = ref.conv2d(h, params["conv_weight"]["kernel"], pad=1)
    bias = ref.conv2d(h, params["conv_bias"]["kernel"], pad=1)
    np.testing.assert_allclose(out, np.asarray(x) * weight + bias, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("train", [True, False])
def test_down_block_matches_numpy_and_updates_stats(train: bool) -> None:
    x = random_input((3, 8, 8, 3))
    module = blocks.DownBlock(5)
    variables = ref.random_variables(module, x, train=False)
    out, state = module.apply(variables, x, train=train, mutable=["batch_stats"])
    conv = ref.conv2d(x, variables["params"]["conv"]["kernel"], stride=2, pad=1)
    stats = variables["batch_stats"]["bn"]
    normed = ref.batch_norm(conv, variables["params"]["bn"], None if train else stats)
    assert out.shape == (3, 4, 4, 5)
    np.testing.assert_allclose(out, ref.leaky_relu(normed), rtol=1e-4, atol=1e-5)
    expected_stats = ref.updated_stats(conv, stats) if train else ref.to_numpy(stats)
    for name in ("mean", "var"):
        np.testing.assert_allclose(
            state["batch_stats"]["bn"][name], expected_stats[name], rtol=1e-5
        )


def test_block3x3_leaky_relu_matches_numpy() -> None:
    x = random_input((2, 5, 5, 3))
    module = blocks.Block3x3LeakyRelu(6)
    variables = ref.random_variables(module, x, train=False)
    out, _ = module.apply(variables, x, train=True, mutable=["batch_stats"])
    conv = ref.conv2d(x, variables["params"]["conv"]["kernel"], pad=1)
    expected = ref.leaky_relu(ref.batch_norm(conv, variables["params"]["bn"], None))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_initialisers_are_orthogonal_and_normal_one() -> None:
    x = random_input((1, 4, 4, 6))
    params = blocks.DownBlock(8).init(jax.random.key(0), x, train=False)["params"]
    kernel = np.asarray(params["conv"]["kernel"], np.float64).reshape(-1, 8)
    np.testing.assert_allclose(kernel.T @ kernel, np.eye(8), atol=1e-5)
    np.testing.assert_array_equal(params["bn"]["bias"], np.zeros(8))
    scales = np.asarray(blocks.bn_scale_init(jax.random.key(1), (40000,)))
    assert abs(scales.mean() - 1.0) < 1e-3
    assert abs(scales.std() - 0.02) < 1e-3
