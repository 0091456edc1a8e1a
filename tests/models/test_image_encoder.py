"""Both DAMSM image encoders: shapes and projections; Inception's 299 resize and eval-mode BN."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmani.models.image_encoder import ImageEncoder, SmallImageEncoder
from jaxmani.models.layers import resize_bilinear
from tests.models import reference as ref

EMBED = 16


def test_encoder_outputs_resize_and_projections():
    model = ImageEncoder(embedding_dim=EMBED)
    abstract = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)))
    assert set(abstract["params"]) == {"trunk", "emb_features", "emb_cnn_code"}
    assert set(abstract["batch_stats"]) == {"trunk"}
    assert abstract["params"]["emb_features"]["kernel"].shape == (1, 1, 768, EMBED)
    assert "bias" not in abstract["params"]["emb_features"]
    assert abstract["params"]["emb_cnn_code"]["kernel"].shape == (2048, EMBED)
    assert abstract["params"]["emb_cnn_code"]["bias"].shape == (EMBED,)
    variables = ref.he_variables(abstract)
    images = jax.random.uniform(jax.random.key(1), (2, 256, 256, 3), minval=-1.0, maxval=1.0)

    def encode(variables, images):
        return model.apply(variables, images, capture_intermediates=True)

    (region, code), state = jax.jit(encode, compiler_options=ref.FAST_COMPILE)(variables, images)
    assert region.shape == (2, 17, 17, EMBED) and code.shape == (2, EMBED)
    trunk = state["intermediates"]["trunk"]["__call__"][0]
    params = variables["params"]
    expected_region = np.einsum(
        "bhwc,ce->bhwe", trunk["mixed_6e"], params["emb_features"]["kernel"][0, 0]
    )
    np.testing.assert_allclose(region, expected_region, rtol=1e-4, atol=1e-4)
    expected_code = (
        trunk["pool"] @ params["emb_cnn_code"]["kernel"] + params["emb_cnn_code"]["bias"]
    )
    np.testing.assert_allclose(code, expected_code, rtol=1e-4, atol=1e-4)
    assert np.std(np.asarray(code)[0] - np.asarray(code)[1]) > 1e-3

    resized = resize_bilinear(images[:1], 299, 299)
    region_299, code_299 = jax.jit(model.apply, compiler_options=ref.FAST_COMPILE)(
        variables, resized
    )
    np.testing.assert_allclose(region_299, region[:1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(code_299, code[:1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("image_size", [64, 128, 256])
def test_small_encoder_grid_is_an_eighth_of_the_image(image_size: int) -> None:
    model = SmallImageEncoder(embedding_dim=EMBED, width=4)
    images = jax.ShapeDtypeStruct((2, image_size, image_size, 3), jnp.float32)
    abstract = jax.eval_shape(model.init, jax.random.key(0), images)
    assert set(abstract) == {"params"}
    shapes = jax.tree.map(lambda leaf: leaf.shape, abstract["params"])
    assert shapes == {
        "conv1": {"kernel": (3, 3, 3, 4), "bias": (4,)},
        "conv2": {"kernel": (3, 3, 4, 8), "bias": (8,)},
        "conv3": {"kernel": (3, 3, 8, 16), "bias": (16,)},
        "emb_features": {"kernel": (1, 1, 16, EMBED)},
        "emb_cnn_code": {"kernel": (16, EMBED), "bias": (EMBED,)},
    }
    region, code = jax.eval_shape(model.apply, abstract, images)
    assert region.shape == (2, image_size // 8, image_size // 8, EMBED)
    assert code.shape == (2, EMBED)


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_small_encoder_projections_and_gradients_without_mutable_state(pool: str) -> None:
    model = SmallImageEncoder(embedding_dim=EMBED, width=4, pool=pool)
    images = jax.random.uniform(jax.random.key(1), (2, 64, 64, 3), minval=-1.0, maxval=1.0)
    variables = ref.he_variables(jax.eval_shape(model.init, jax.random.key(0), images))

    def loss(params: dict) -> tuple:
        (region, code), state = model.apply({"params": params}, images, capture_intermediates=True)
        return jnp.sum(region**2) + jnp.sum(code**2), (region, code, state)

    grad_fn = jax.jit(jax.grad(loss, has_aux=True), compiler_options=ref.FAST_COMPILE)
    grads, (region, code, state) = grad_fn(variables["params"])
    last = np.asarray(state["intermediates"]["conv3"]["__call__"][0], np.float64)
    last = np.where(last >= 0, last, 0.2 * last)  # The block's LeakyReLU.
    params = ref.to_numpy(variables["params"])
    expected_region = np.einsum("bhwc,ce->bhwe", last, params["emb_features"]["kernel"][0, 0])
    np.testing.assert_allclose(region, expected_region, rtol=1e-4, atol=1e-5)
    cnn = params["emb_cnn_code"]
    pooled = last.max(axis=(1, 2)) if pool == "max" else last.mean(axis=(1, 2))
    expected_code = pooled @ cnn["kernel"] + cnn["bias"]
    np.testing.assert_allclose(code, expected_code, rtol=1e-4, atol=1e-5)
    for path, grad in jax.tree_util.tree_leaves_with_path(grads):
        assert bool(jnp.all(jnp.isfinite(grad))) and float(jnp.abs(grad).max()) > 0, path


def test_small_encoder_refuses_sides_that_are_not_multiples_of_8() -> None:
    images = jax.ShapeDtypeStruct((1, 60, 60, 3), jnp.float32)
    with pytest.raises(ValueError, match="divisible by 8"):
        jax.eval_shape(SmallImageEncoder(embedding_dim=EMBED).init, jax.random.key(0), images)
