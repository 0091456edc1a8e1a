"""Small NHWC image filters shared by the masks, the sharpness losses and SAD."""

from collections.abc import Callable

import dm_pix
import jax
import jax.numpy as jnp
from jax import lax

_PAD_MODES = {"zero": "constant", "replicate": "edge"}


def _check_odd(kernel_size: int) -> None:
    """Raises if `kernel_size` is not a positive odd integer."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")


def _pad_spatial(images: jax.Array, before: int, after: int, mode: str) -> jax.Array:
    """Pads the two spatial axes of an NHWC array with numpy pad `mode`."""
    return jnp.pad(images, ((0, 0), (before, after), (before, after), (0, 0)), mode=mode)


def to_grey(images: jax.Array) -> jax.Array:
    """Channel mean of (B,H,W,C) images, shape (B,H,W,1)."""
    return jnp.mean(images, axis=-1, keepdims=True)


def laplacian(grey: jax.Array, padding: str) -> jax.Array:
    """Per-channel Laplacian [[0,1,0],[1,-4,1],[0,1,0]]; padding is "zero" or "replicate".

    Written as four shifted slices of the padded image (a 3x3 depthwise convolution on XLA:CPU
    took 60x longer at 256x256).
    """
    if padding not in _PAD_MODES:
        raise ValueError(f"padding must be one of {sorted(_PAD_MODES)}, got {padding!r}")
    p = _pad_spatial(grey, 1, 1, _PAD_MODES[padding])
    neighbours = p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]
    return neighbours - 4 * p[:, 1:-1, 1:-1]


def _window_sum(images: jax.Array, kernel_size: int, axis: int) -> jax.Array:
    """Sum over a centred window of odd `kernel_size` along spatial `axis`, zeros outside."""
    half = (kernel_size - 1) // 2
    window = [1, 1, 1, 1]
    window[axis] = kernel_size
    pads = [(0, 0)] * 4
    pads[axis] = (half, half)
    zero = jnp.zeros((), images.dtype)
    return lax.reduce_window(images, zero, lax.add, window, (1, 1, 1, 1), pads)


def box_blur(images: jax.Array, kernel_size: int, channel_mix: bool) -> jax.Array:
    """k x k box mean per channel with zero padding (k-1)/2; same spatial size as the input.

    With `channel_mix=True` every output channel is the box mean of the channel-averaged image,
    which is what the seed's SAD blur (a (C,C,k,k) weight filled with 1/(C*k*k)) computes. The
    box is separable: a window sum along H, then along W (50x faster than a k x k depthwise
    convolution on XLA:CPU).
    """
    _check_odd(kernel_size)
    source = to_grey(images) if channel_mix else images
    sums = _window_sum(_window_sum(source, kernel_size, 1), kernel_size, 2)
    return jnp.broadcast_to(sums / kernel_size**2, images.shape)


def gaussian_blur(images: jax.Array, kernel_size: int, sigma: float) -> jax.Array:
    """Separable normalised Gaussian blur per channel, reflect-padded like torchvision's."""
    _check_odd(kernel_size)
    half = kernel_size // 2
    padded = _pad_spatial(images, half, half, "reflect")
    with jax.default_matmul_precision("highest"):
        return dm_pix.gaussian_blur(padded, sigma, kernel_size, padding="VALID")


def _window_padding(size: int, origin: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    """reduce_window padding of a size x size window starting at (y-origin[0], x-origin[1])."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if not all(0 <= o < size for o in origin):
        raise ValueError(f"origin must lie inside the {size}x{size} window, got {origin}")
    return ((0, 0), (origin[0], size - 1 - origin[0]), (origin[1], size - 1 - origin[1]), (0, 0))


def _reduce_window(
    images: jax.Array,
    size: int,
    origin: tuple[int, int],
    init: float,
    op: Callable[[jax.Array, jax.Array], jax.Array],
) -> jax.Array:
    """Applies `op` over a size x size window per channel; out-of-image pixels hold `init`."""
    return lax.reduce_window(
        images,
        jnp.asarray(init, images.dtype),
        op,
        window_dimensions=(1, size, size, 1),
        window_strides=(1, 1, 1, 1),
        padding=_window_padding(size, origin),
    )


def erode(binary: jax.Array, size: int, origin: tuple[int, int] | None = None) -> jax.Array:
    """Min filter of a float map over rows y-o0..y-o0+size-1, cols x-o1..x-o1+size-1 (kornia).

    Pixels outside the image are ignored. `origin` defaults to (size//2, size//2), kornia's default,
    which for size 2 gives the window rows y-1..y, cols x-1..x of the seed's HM mask.
    """
    window_origin = origin if origin is not None else (size // 2, size // 2)
    return _reduce_window(binary, size, window_origin, jnp.inf, lax.min)


def dilate(binary: jax.Array, size: int) -> jax.Array:
    """Max filter of a float map over a size x size window, origin (size//2, size//2).

    Pixels outside the image are ignored.
    """
    return _reduce_window(binary, size, (size // 2, size // 2), -jnp.inf, lax.max)
