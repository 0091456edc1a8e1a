"""ImageEncoder: output shapes, the 299 resize, eval-mode BatchNorm and the two projections."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxmani.models.image_encoder import ImageEncoder
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

    (region, code), state = jax.jit(encode)(variables, images)
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
    region_299, code_299 = jax.jit(model.apply)(variables, resized)
    np.testing.assert_allclose(region_299, region[:1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(code_299, code[:1], rtol=1e-5, atol=1e-5)
