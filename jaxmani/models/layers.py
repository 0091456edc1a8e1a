"""Primitive layers shared by every network, with PyTorch's numerics where they matter.

Modules take `dtype` (computation) and `param_dtype` (storage, float32 by default); norms and
softmaxes compute in at least float32 whatever `dtype` is.
"""

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax.typing import ConvGeneralDilatedT, Dtype, PrecisionLike

# Patch rows (samples x output rows x output width) per matmul of the strip weight gradient:
# XLA:CPU runs a (rows, kh*kw*cin)^T (rows, cout) matmul near its forward-conv speed at a few
# thousand rows, and one over all N*H*W rows (its own weight gradient's shape) ~10x slower.
STRIP_PATCH_ROWS = 2048
# Convolutions with fewer output channels keep XLA's own weight gradient: the strip's matmul has
# only cout columns, and below 32 XLA's was 2-5x faster at the toy G's 128->16 and 16->3 shapes
# (README, Performance).
STRIP_MIN_FEATURES = 32
NHWC = ("NHWC", "HWIO", "NHWC")


def norm_dtype(dtype: Dtype) -> jnp.dtype:
    """The dtype norms and softmaxes compute in: float32, or float64 for float64 inputs."""
    return jnp.promote_types(dtype, jnp.float32)


def dtypes(module: nn.Module) -> dict[str, Any]:
    """The `dtype` and `param_dtype` of `module`, as keyword arguments for its submodules."""
    return {"dtype": module.dtype, "param_dtype": module.param_dtype}


def batch_moments(x: jax.Array, axis_name: str | None) -> tuple[jax.Array, jax.Array, int]:
    """Mean, biased variance and sample count per channel over all axes but the last.

    With `axis_name` (a pmap or shard_map axis of equal shards) the statistics are those of the
    global batch: the mean is averaged over the axis first, then the squared deviations from it.
    """
    axes = tuple(range(x.ndim - 1))
    count = x.size // x.shape[-1]
    mean = jnp.mean(x, axes)
    if axis_name is not None:
        mean = jax.lax.pmean(mean, axis_name)
    var = jnp.mean(jnp.square(x - mean), axes)
    if axis_name is not None:
        var = jax.lax.pmean(var, axis_name)
        count *= jax.lax.axis_size(axis_name)
    return mean, var, count


class BatchNorm(nn.Module):
    """BatchNorm over all axes but the last, with PyTorch semantics.

    Training normalises with the biased batch variance and updates the running variance with the
    unbiased one, `running = (1 - momentum) * running + momentum * batch` (PyTorch's convention;
    flax's own BatchNorm uses the complement and the biased variance). With `axis_name`, training
    uses the statistics of the global batch across that pmap/shard_map axis.
    """

    epsilon: float = 1e-5
    momentum: float = 0.1
    scale_init: nn.initializers.Initializer = nn.initializers.ones
    axis_name: str | None = None
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Normalises `x` with batch statistics (train) or the running ones (eval)."""
        features = x.shape[-1]
        scale = self.param("scale", self.scale_init, (features,), self.param_dtype)
        bias = self.param("bias", nn.initializers.zeros, (features,), self.param_dtype)
        running_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,))
        running_var = self.variable("batch_stats", "var", jnp.ones, (features,))
        compute = norm_dtype(x.dtype)
        x = x.astype(compute)
        if train:
            initializing = self.is_initializing()
            mean, var, count = batch_moments(x, None if initializing else self.axis_name)
            if not initializing:
                unbiased = var * (count / max(count - 1, 1))
                running_mean.value = (1 - self.momentum) * running_mean.value + self.momentum * mean
                running_var.value = (
                    1 - self.momentum
                ) * running_var.value + self.momentum * unbiased
        else:
            mean, var = running_mean.value, running_var.value
        y = (x - mean) * jax.lax.rsqrt(var + self.epsilon) * scale.astype(compute)
        return (y + bias.astype(compute)).astype(self.dtype)


def instance_norm(x: jax.Array, epsilon: float = 1e-5) -> jax.Array:
    """Normalises each sample and channel over H and W (biased variance, no affine)."""
    y = x.astype(norm_dtype(x.dtype))
    mean = jnp.mean(y, axis=(1, 2), keepdims=True)
    var = jnp.mean(jnp.square(y - mean), axis=(1, 2), keepdims=True)
    return ((y - mean) * jax.lax.rsqrt(var + epsilon)).astype(x.dtype)


def glu(x: jax.Array) -> jax.Array:
    """Gated linear unit on the last axis: first half times sigmoid of the second half."""
    a, b = jnp.split(x, 2, axis=-1)
    return a * jax.nn.sigmoid(b)


def resize_bilinear(x: jax.Array, height: int, width: int) -> jax.Array:
    """Bilinear NHWC resize matching PyTorch's `interpolate(align_corners=False)`, no antialias."""
    shape = (x.shape[0], height, width, x.shape[3])
    return jax.image.resize(x, shape, method="bilinear", antialias=False)


def padding(pad: int | tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Turns a PyTorch conv padding (one int or (pad_h, pad_w)) into flax's explicit pairs."""
    pad_h, pad_w = (pad, pad) if isinstance(pad, int) else pad
    return ((pad_h, pad_h), (pad_w, pad_w))


Pads = tuple[tuple[int, int], tuple[int, int]]


def conv2d(
    x: jax.Array, kernel: jax.Array, strides: tuple[int, int], pads: Pads, precision: Any = None
) -> jax.Array:
    """A 2-D NHWC x HWIO convolution with explicit (low, high) pads, as lax computes it."""
    return jax.lax.conv_general_dilated(
        x, kernel, strides, pads, dimension_numbers=NHWC, precision=precision
    )


def strip_weight_grad(
    x: jax.Array,
    grad: jax.Array,
    kernel_shape: tuple[int, ...],
    strides: tuple[int, int],
    pads: Pads,
    precision: Any = None,
) -> jax.Array:
    """The gradient of conv2d w.r.t. its kernel, one strip of output rows at a time.

    Each step of a fori_loop takes STRIP_PATCH_ROWS // (N * W_out) output rows (at least one) of
    every sample, stacks the kh * kw shifted input windows along channels (im2col of the strip)
    and adds patches^T @ grad_strip to a (kh * kw * cin, cout) accumulator, in at least float32.
    Output rows past H_out are zero-gradient padding, so any strip height works.
    """
    kh, kw, cin, cout = kernel_shape
    (sh, sw), ((top, _), (left, right)) = strides, pads
    batch, out_h, out_w, _ = grad.shape
    acc_dtype = jnp.promote_types(x.dtype, jnp.float32)
    if grad.size == 0:  # An empty batch (D's mismatched pairs at batch 1).
        return jnp.zeros(kernel_shape, acc_dtype)
    rows = max(1, min(out_h, STRIP_PATCH_ROWS // (batch * out_w)))
    steps = -(-out_h // rows)
    grad = jnp.pad(grad, ((0, 0), (0, steps * rows - out_h), (0, 0), (0, 0)))
    window = sh * (rows - 1) + kh  # Input rows one strip reads.
    height = x.shape[1]

    def step(t: jax.Array, acc: jax.Array) -> jax.Array:
        # The strip's input rows, zero above and below the image: a gather fused into the
        # patches, so no padded copy of the whole input is made.
        index = t * rows * sh - top + jnp.arange(window)
        inside = (index >= 0) & (index < height)
        strip = jnp.take(x, jnp.clip(index, 0, height - 1), axis=1)
        strip = jnp.where(inside[None, :, None, None], strip, jnp.zeros((), x.dtype))
        strip = jnp.pad(strip, ((0, 0), (0, 0), (left, right), (0, 0)))
        shifted = [
            strip[:, i : i + sh * (rows - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw]
            for i in range(kh)
            for j in range(kw)
        ]
        patches = jnp.concatenate(shifted, -1).reshape(-1, kh * kw * cin)
        g = jax.lax.dynamic_slice_in_dim(grad, t * rows, rows, 1).reshape(-1, cout)
        return acc + jax.lax.dot_general(
            patches, g, (((0,), (0,)), ((), ())), precision, preferred_element_type=acc_dtype
        )

    acc = jax.lax.fori_loop(0, steps, step, jnp.zeros((kh * kw * cin, cout), acc_dtype))
    return acc.reshape(kernel_shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def conv2d_strip_grad(
    x: jax.Array, kernel: jax.Array, strides: tuple[int, int], pads: Pads, precision: Any = None
) -> jax.Array:
    """conv2d whose kernel gradient is strip_weight_grad; the input gradient is XLA's own."""
    return conv2d(x, kernel, strides, pads, precision)


def _conv2d_strip_grad_fwd(x, kernel, strides, pads, precision):
    return conv2d(x, kernel, strides, pads, precision), (x, kernel)


def _conv2d_strip_grad_bwd(strides, pads, precision, residuals, grad):
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda x: conv2d(x, kernel, strides, pads, precision), x)
    (dx,) = input_vjp(grad)
    dkernel = strip_weight_grad(x, grad, kernel.shape, strides, pads, precision)
    return dx, dkernel.astype(kernel.dtype)


conv2d_strip_grad.defvjp(_conv2d_strip_grad_fwd, _conv2d_strip_grad_bwd)


def strip_grad_conv_general_dilated(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    feature_group_count: int = 1,
    precision: PrecisionLike = None,
) -> jax.Array:
    """lax.conv_general_dilated; on XLA:CPU (chosen at trace time) plain 2-D NHWC convs with at
    least STRIP_MIN_FEATURES outputs take conv2d_strip_grad, whose forward is the same lax call
    and whose kernel gradient is faster."""
    args = (lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation)
    kwargs = {
        "dimension_numbers": dimension_numbers,
        "feature_group_count": feature_group_count,
        "precision": precision,
    }
    eligible = (
        jax.default_backend() == "cpu"
        and lhs.ndim == 4
        and feature_group_count == 1
        and all(d == 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
        and jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
        == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, NHWC)
        and rhs.shape[-1] >= STRIP_MIN_FEATURES
    )
    if not eligible:
        return jax.lax.conv_general_dilated(*args, **kwargs)
    if isinstance(padding, str):
        padding = jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
    pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    if min(min(pair) for pair in pads) < 0:
        return jax.lax.conv_general_dilated(*args, **kwargs)
    return conv2d_strip_grad(lhs, rhs, tuple(window_strides), pads, precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def max_pool(x: jax.Array, window: int, stride: int) -> jax.Array:
    """VALID window x window max-pool of NHWC `x` (PyTorch's floor mode, no padding).

    Its gradient goes to the first maximum of each window in row-major order, as PyTorch's does,
    and is elementwise work: XLA:CPU turns the gradient of `lax.reduce_window` (a
    select-and-scatter) into a scatter with (N*H*W*C, 4) int32 index arrays, slower and about
    1 GB of buffers in the bird step.
    """
    lowest = jnp.array(-jnp.inf, x.dtype)
    return jax.lax.reduce_window(
        x, lowest, jax.lax.max, (1, window, window, 1), (1, stride, stride, 1), "VALID"
    )


def _max_pool_fwd(x, window, stride):
    out = max_pool(x, window, stride)
    return out, (x, out)


def _max_pool_bwd(window, stride, residuals, grad):
    x, out = residuals
    batch, height, width, channels = x.shape
    out_h, out_w = out.shape[1:3]
    taken = jnp.zeros(out.shape, bool)
    dx = jnp.zeros_like(x)
    for i in range(window):
        for j in range(window):
            end = (i + stride * (out_h - 1) + 1, j + stride * (out_w - 1) + 1)
            candidates = jax.lax.slice(
                x, (0, i, j, 0), (batch, *end, channels), (1, stride, stride, 1)
            )
            first = (candidates == out) & ~taken
            taken = taken | first
            placed = (
                (0, 0, 0),
                (i, height - end[0], stride - 1),
                (j, width - end[1], stride - 1),
                (0, 0, 0),
            )
            zero = jnp.zeros((), x.dtype)
            dx = dx + jax.lax.pad(jnp.where(first, grad, zero), zero, placed)
    return (dx,)


max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


class Conv(nn.Conv):
    """flax's nn.Conv (same fields, parameters and forward) via strip_grad_conv_general_dilated."""

    conv_general_dilated: ConvGeneralDilatedT | None = strip_grad_conv_general_dilated
