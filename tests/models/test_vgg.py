"""VGG16Features against a numpy restatement of torchvision's first nine layers."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import signal

from jaxmani.models.vgg import VGG16Features


def numpy_conv3x3(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """3x3 padding-1 cross-correlation of one HWC image with an HWIO kernel, via scipy."""
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.empty((*x.shape[:2], kernel.shape[-1]))
    for o in range(kernel.shape[-1]):
        out[..., o] = signal.correlate(padded, kernel[..., o], mode="valid")[..., 0]
    return out + bias


def numpy_relu2_2(image: np.ndarray, params: dict) -> np.ndarray:
    """conv1_1, conv1_2, 2x2 max-pool, conv2_1, conv2_2 with ReLUs, in float64."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)

    def block(x, name):
        return np.maximum(numpy_conv3x3(x, p[name]["kernel"], p[name]["bias"]), 0.0)

    x = block(block(image, "conv1_1"), "conv1_2")
    height, width, channels = x.shape
    x = x.reshape(height // 2, 2, width // 2, 2, channels).max(axis=(1, 3))
    return block(block(x, "conv2_1"), "conv2_2")


def random_params(abstract: dict, seed: int) -> dict:
    """He-scaled normal kernels and small normal biases of the given shapes."""
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        std = np.sqrt(2.0 / np.prod(leaf.shape[:-1])) if path[-1].key == "kernel" else 0.1
        return rng.normal(0.0, std, leaf.shape).astype(np.float32)

    return jax.tree_util.tree_map_with_path(fill, abstract)


def test_relu2_2_matches_numpy():
    model = VGG16Features()
    images = np.random.default_rng(0).uniform(-1.0, 1.0, size=(2, 8, 6, 3)).astype(np.float32)
    abstract = jax.eval_shape(model.init, jax.random.key(0), jnp.asarray(images))["params"]
    assert jax.tree.map(lambda a: a.shape, abstract) == {
        "conv1_1": {"kernel": (3, 3, 3, 64), "bias": (64,)},
        "conv1_2": {"kernel": (3, 3, 64, 64), "bias": (64,)},
        "conv2_1": {"kernel": (3, 3, 64, 128), "bias": (128,)},
        "conv2_2": {"kernel": (3, 3, 128, 128), "bias": (128,)},
    }
    params = random_params(abstract, seed=1)
    out = np.asarray(jax.jit(model.apply)({"params": params}, jnp.asarray(images)))
    assert out.shape == (2, 4, 3, 128)
    for image, features in zip(images, out, strict=True):
        np.testing.assert_allclose(features, numpy_relu2_2(image, params), rtol=1e-5, atol=1e-5)
    assert 0.1 < np.mean(out > 0) < 0.9
