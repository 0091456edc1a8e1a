"""Sharpness-Aware Discriminator (paper §II-C, spec §6.5): blurred reals to be labelled fake."""

import functools

import jax
from jax import lax

from jaxmani.masks.filters import box_blur, gaussian_blur

SAD_FILTERS = ("box", "gaussian", "seed")


def _check_kernel(name: str, kernel_size: int) -> None:
    """Raises unless `kernel_size` is a positive odd integer."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"{name} must be a positive odd integer, got {kernel_size}")


def _blur(images: jax.Array, kernel_size: int, filter: str, sigma: float) -> jax.Array:
    """One blur of SAD_FILTERS with a fixed odd kernel size."""
    if filter == "box":
        return box_blur(images, kernel_size, channel_mix=False)
    if filter == "gaussian":
        return gaussian_blur(images, kernel_size, sigma)
    return box_blur(images, kernel_size, channel_mix=True)


def _kernel_sizes(kernel_size: int, kernel_size_max: int) -> tuple[int, ...]:
    """Odd sizes kernel_size, kernel_size + 2, ..., kernel_size_max (at least kernel_size)."""
    _check_kernel("kernel_size", kernel_size)
    if kernel_size_max <= kernel_size:
        return (kernel_size,)
    _check_kernel("kernel_size_max", kernel_size_max)
    return tuple(range(kernel_size, kernel_size_max + 1, 2))


def blur_reals(
    real: jax.Array,
    rng: jax.Array,
    *,
    filter: str,
    kernel_size: int,
    kernel_size_max: int,
    sigma: float,
) -> jax.Array:
    """Blurred copy of the real images (no gradient) for the SAD term of the D loss.

    "box": per-channel k x k box mean with zero padding; "gaussian": normalised Gaussian with
    `sigma`; "seed": the seed's grey (channel-mixing) zero-padded box mean. With kernel_size_max >
    kernel_size the odd kernel size is drawn uniformly from kernel_size..kernel_size_max with `rng`
    on every call; otherwise it is kernel_size and `rng` is unused.
    """
    if filter not in SAD_FILTERS:
        raise ValueError(f"SAD filter must be one of {SAD_FILTERS}, got {filter!r}")
    sizes = _kernel_sizes(kernel_size, kernel_size_max)
    images = lax.stop_gradient(real)
    branches = [functools.partial(_blur, kernel_size=k, filter=filter, sigma=sigma) for k in sizes]
    if len(branches) == 1:
        return branches[0](images)
    index = jax.random.randint(rng, (), 0, len(branches))
    return lax.switch(index, branches, images)
