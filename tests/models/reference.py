"""NumPy references and seeded random variables for the GAN model tests (float64 arithmetic)."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def conv2d(x: np.ndarray, kernel: np.ndarray, stride: int = 1, pad: int = 0) -> np.ndarray:
    """NHWC x HWIO convolution as a sum of shifted matrix products (zero padding)."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kernel = np.asarray(kernel, np.float64)
    kh, kw = kernel.shape[:2]
    out_h = (x.shape[1] - kh) // stride + 1
    out_w = (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[3]))
    for i in range(kh):
        for j in range(kw):
            window = x[:, i : i + stride * out_h : stride, j : j + stride * out_w : stride]
            out += window @ kernel[i, j]
    return out


def instance_norm(x: np.ndarray) -> np.ndarray:
    """Per sample and channel normalisation over H and W (biased variance, eps 1e-5)."""
    mean = x.mean(axis=(1, 2), keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5)


def glu(x: np.ndarray) -> np.ndarray:
    """First half of the last axis times the sigmoid of the second half."""
    a, b = np.split(x, 2, axis=-1)
    return a / (1.0 + np.exp(-b))


def leaky_relu(x: np.ndarray) -> np.ndarray:
    """LeakyReLU with slope 0.2."""
    return np.where(x >= 0, x, 0.2 * x)


def batch_norm(x: np.ndarray, bn: dict, stats: dict | None) -> np.ndarray:
    """BatchNorm over all axes but the last: batch statistics when stats is None, else running."""
    axes = tuple(range(x.ndim - 1))
    if stats is None:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    else:
        mean, var = np.asarray(stats["mean"]), np.asarray(stats["var"])
    return (x - mean) / np.sqrt(var + 1e-5) * np.asarray(bn["scale"]) + np.asarray(bn["bias"])


def updated_stats(x: np.ndarray, stats: dict) -> dict:
    """Running statistics after one PyTorch train step (momentum 0.1, unbiased variance)."""
    flat = np.asarray(x, np.float64).reshape(-1, x.shape[-1])
    return {
        "mean": 0.9 * np.asarray(stats["mean"]) + 0.1 * flat.mean(axis=0),
        "var": 0.9 * np.asarray(stats["var"]) + 0.1 * flat.var(axis=0, ddof=1),
    }


def softmax(logits: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Softmax over the last axis restricted to valid entries (the others get 0)."""
    shifted = np.where(valid, logits, -np.inf)
    e = np.exp(shifted - shifted.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def random_variables(
    model: nn.Module, *args: object, seed: int = 0, method: Callable | None = None, **kwargs: object
) -> dict:
    """Variables of `model` filled with seeded random values, without running its initialisers.

    Kernels get N(0, 1/fan_in), BatchNorm scales 1 + N(0, 0.1), biases and running means
    N(0, 0.1), running variances U(0.5, 1.5).
    """
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), *args, method=method, **kwargs))
    rng = np.random.default_rng(seed)

    def fill(path: tuple, leaf: jax.ShapeDtypeStruct) -> jax.Array:
        name = path[-1].key
        shape = leaf.shape
        if name == "kernel":
            value = rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1]))
        elif name == "scale":
            value = 1.0 + 0.1 * rng.normal(size=shape)
        elif name == "var":
            value = rng.uniform(0.5, 1.5, size=shape)
        else:
            value = 0.1 * rng.normal(size=shape)
        return jnp.asarray(value, jnp.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def to_numpy(tree: dict) -> dict:
    """Converts every leaf of a pytree to a float64 NumPy array."""
    return jax.tree_util.tree_map(lambda leaf: np.asarray(leaf, np.float64), tree)


def he_variables(abstract: dict, seed: int = 0) -> dict:
    """Seeded variables of the given shapes: He-scaled kernels, BN statistics near identity."""
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = path[-1].key
        if name == "kernel":
            fan_in = int(np.prod(leaf.shape[:-1]))
            return rng.normal(0.0, np.sqrt(2.0 / fan_in), leaf.shape).astype(np.float32)
        if name in ("scale", "var"):
            return rng.uniform(0.5, 1.5, leaf.shape).astype(np.float32)
        return rng.normal(0.0, 0.1, leaf.shape).astype(np.float32)

    return jax.tree_util.tree_map_with_path(fill, abstract)
