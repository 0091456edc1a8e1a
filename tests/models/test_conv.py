"""The strip weight-gradient convolution: its gradients equal XLA's own, in float32 and float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from jaxmani.models import layers

# (batch, height, width, in, out, kernel, stride, pad): odd sizes, strides 1/2/4, kernels 1/3/4.
CASES = [
    (2, 9, 7, 3, 5, 3, 1, 1),
    (2, 11, 10, 4, 6, 4, 2, 1),
    (3, 8, 5, 2, 3, 1, 1, 0),
    (2, 13, 13, 3, 4, 3, 2, 0),
    (1, 8, 8, 5, 1, 4, 4, 0),
    (2, 7, 9, 3, 2, 3, 1, 0),
]


def inputs(case: tuple[int, ...], dtype: jnp.dtype) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Seeded input, kernel and output cotangent of one case."""
    batch, height, width, cin, cout, k, stride, pad = case
    rng = np.random.default_rng(sum(case))
    out_h = (height + 2 * pad - k) // stride + 1
    out_w = (width + 2 * pad - k) // stride + 1
    return tuple(
        jnp.asarray(rng.standard_normal(shape), dtype)
        for shape in ((batch, height, width, cin), (k, k, cin, cout), (batch, out_h, out_w, cout))
    )


def grads(conv, x: jax.Array, kernel: jax.Array, cotangent: jax.Array, case: tuple[int, ...]):
    """Jitted input and kernel gradients of <conv(x, kernel), cotangent>."""
    stride, pad = case[-2], case[-1]

    def loss(x: jax.Array, kernel: jax.Array) -> jax.Array:
        out = conv(x, kernel, (stride, stride), ((pad, pad), (pad, pad)))
        return jnp.sum(out * cotangent)

    return jax.jit(jax.grad(loss, (0, 1)))(x, kernel)


def assert_relative(actual: jax.Array, expected: jax.Array, tolerance: float) -> None:
    """Max abs difference relative to the largest expected magnitude."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    error = np.max(np.abs(actual - expected)) / np.max(np.abs(expected))
    assert error <= tolerance, error


@pytest.mark.parametrize("patch_rows", [layers.STRIP_PATCH_ROWS, 8])
@pytest.mark.parametrize("case", CASES)
def test_gradients_equal_xla_in_float32(case, patch_rows, monkeypatch):
    """One strip and many strips (8 patch rows: several steps and a zero-padded last strip)."""
    monkeypatch.setattr(layers, "STRIP_PATCH_ROWS", patch_rows)
    x, kernel, cotangent = inputs(case, jnp.float32)
    dx, dkernel = grads(layers.conv2d_strip_grad, x, kernel, cotangent, case)
    expected_dx, expected_dkernel = grads(layers.conv2d, x, kernel, cotangent, case)
    assert_relative(dx, expected_dx, 1e-6)
    assert_relative(dkernel, expected_dkernel, 1e-5)


@pytest.mark.parametrize("case", CASES[:4])
def test_gradients_equal_xla_in_float64(case, monkeypatch):
    """Float64 settles that the difference in float32 is rounding only."""
    monkeypatch.setattr(layers, "STRIP_PATCH_ROWS", 8)
    with jax.enable_x64(True):
        x, kernel, cotangent = inputs(case, jnp.float64)
        dx, dkernel = grads(layers.conv2d_strip_grad, x, kernel, cotangent, case)
        expected_dx, expected_dkernel = grads(layers.conv2d, x, kernel, cotangent, case)
        assert_relative(dx, expected_dx, 1e-12)
        assert_relative(dkernel, expected_dkernel, 1e-12)


def test_empty_batch_has_zero_gradients():
    """A batch of 0 samples (D's mismatched pairs at batch 1) gives XLA's zero gradients."""
    case = (0, 6, 6, 3, 2, 3, 1, 1)
    x, kernel, cotangent = inputs(case, jnp.float32)
    dx, dkernel = grads(layers.conv2d_strip_grad, x, kernel, cotangent, case)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dkernel, np.zeros(kernel.shape, np.float32))


def test_bfloat16_kernel_gradient_keeps_the_kernel_dtype():
    """Accumulated in float32, returned in bfloat16, close to the float32 gradient."""
    case = CASES[0]
    x, kernel, cotangent = inputs(case, jnp.float32)
    low = [a.astype(jnp.bfloat16) for a in (x, kernel, cotangent)]
    _, dkernel = grads(layers.conv2d_strip_grad, *low, case)
    _, expected = grads(layers.conv2d, x, kernel, cotangent, case)
    assert dkernel.dtype == jnp.bfloat16
    assert_relative(dkernel.astype(jnp.float32), expected, 2e-2)


@pytest.mark.parametrize("use_bias", [False, True])
@pytest.mark.parametrize(("strides", "pad"), [((1, 1), "SAME"), ((2, 2), ((1, 1), (1, 1)))])
def test_conv_module_matches_flax_conv(use_bias, strides, pad):
    """Same parameter tree, forward and parameter/input gradients as nn.Conv."""
    kwargs = {"features": 4, "kernel_size": (3, 3), "strides": strides, "padding": pad}
    kwargs["use_bias"] = use_bias
    ours, theirs = layers.Conv(**kwargs), nn.Conv(**kwargs)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 9, 8, 3)), jnp.float32)
    params = ours.init(jax.random.key(0), x)
    reference = theirs.init(jax.random.key(0), x)
    jax.tree.map(np.testing.assert_array_equal, params, reference)  # Same tree, same values.
    np.testing.assert_array_equal(ours.apply(params, x), theirs.apply(params, x))

    def loss(module: nn.Module, params: dict, x: jax.Array) -> jax.Array:
        return jnp.sum(jnp.sin(module.apply(params, x)))

    actual = jax.jit(jax.grad(lambda p, x: loss(ours, p, x), (0, 1)))(params, x)
    expected = jax.jit(jax.grad(lambda p, x: loss(theirs, p, x), (0, 1)))(params, x)
    jax.tree.map(lambda a, b: assert_relative(a, b, 1e-5), actual, expected)


def primitives(fn, *args) -> set[str]:
    """Names of the top-level primitives in the jaxpr of fn(*args)."""
    return {eqn.primitive.name for eqn in jax.make_jaxpr(fn)(*args).eqns}


def test_dispatch_takes_the_strip_gradient_only_for_plain_2d_convs():
    """Plain NHWC convs with enough outputs get the custom VJP on CPU; narrower ones, groups and
    dilations stay lax's own."""
    x, narrow, _ = inputs(CASES[0], jnp.float32)
    wide = 3 * layers.STRIP_MIN_FEATURES  # Wide enough, and divisible by the 3 groups below.
    kernel = jnp.tile(narrow, (1, 1, 1, wide))[..., :wide]

    def plain(x, k):
        return layers.strip_grad_conv_general_dilated(
            x, k, (1, 1), "SAME", dimension_numbers=layers.NHWC
        )

    dense = primitives(plain, x, kernel)
    assert any(name.startswith("custom_vjp_call") for name in dense), dense
    narrow_kernel = kernel[..., : layers.STRIP_MIN_FEATURES - 1]
    assert primitives(plain, x, narrow_kernel) == {"conv_general_dilated"}
    grouped_kernel = kernel[:, :, :1, :]
    for kwargs in ({"feature_group_count": 3}, {"rhs_dilation": (2, 2)}):
        k = grouped_kernel if "feature_group_count" in kwargs else kernel
        fn = lambda x, k, kwargs=kwargs: layers.strip_grad_conv_general_dilated(  # noqa: E731
            x, k, (1, 1), "SAME", dimension_numbers=layers.NHWC, **kwargs
        )
        assert primitives(fn, x, k) == {"conv_general_dilated"}
        expected = jax.lax.conv_general_dilated(
            x, k, (1, 1), "SAME", dimension_numbers=layers.NHWC, **kwargs
        )
        np.testing.assert_array_equal(fn(x, k), expected)


def test_strip_weight_grad_makes_no_padded_copy_of_the_input():
    x = jax.ShapeDtypeStruct((2, 256, 256, 32), jnp.float32)
    grad = jax.ShapeDtypeStruct((2, 256, 256, 32), jnp.float32)
    pads = ((1, 1), (1, 1))
    compiled = (
        jax.jit(lambda x, g: layers.strip_weight_grad(x, g, (3, 3, 32, 32), (1, 1), pads))
        .lower(x, grad)
        .compile()
    )
    input_bytes = 2 * 256 * 256 * 32 * 4
    assert compiled.memory_analysis().temp_size_in_bytes < input_bytes / 2
