"""The Inception networks of FID and IS: their weights files and batched, jitted runs over images.

Both metrics read a generic iterable of `(images, valid)` batches: uint8 (or float) NHWC images
of one size and a boolean `valid` per example. The evaluation pipeline pads its last batch, so
only rows with `valid` True reach the statistics, in iteration order.
"""

import functools
import os
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxmani import params_io
from jaxmani.errors import UserError
from jaxmani.models.layers import resize_bilinear
from jaxmani.models.registry import INCEPTION_SIZE
from jaxmani.progress import Progress

Batches = Iterable[tuple[np.ndarray, np.ndarray]]


def load_inception(
    network: str, path: str, field: str, source: str, config: ml_collections.ConfigDict
) -> dict[str, Any]:
    """Reads the params file `path` of an Inception network configured by `field`.

    Args:
      network: "fid_inception" or "inception" (jaxmani's network names).
      path: the jaxmani params file; "" or a missing file is a UserError that names `field` and
        the `jaxmani convert` command that makes the file from the PyTorch weights `source`.
      field: the config field that holds `path`, e.g. "config.pretrained.fid_inception".
      source: the file name of the PyTorch weights.
      config: the run config (the networks are fixed; it is only checked).
    """
    command = f"`jaxmani convert --network={network} --src={source} --dst=<params file>`"
    if not path:
        raise UserError(f"{field} is not set: point it to a params file made with {command}")
    if not os.path.isfile(path):
        raise UserError(f"{field}={path}: no such params file; make it with {command}")
    return params_io.load_variables(path, network, config)


def to_float(images: jax.Array, signed: bool) -> jax.Array:
    """uint8 0..255 -> float32 in [0, 1], or [-1, 1] when `signed` (ToTensor, Normalize(0.5,
    0.5)); float images are taken to be in that range already and pass unchanged."""
    if images.dtype != jnp.uint8:
        return images.astype(jnp.float32)
    unit = images.astype(jnp.float32) / 255.0
    return (unit - 0.5) / 0.5 if signed else unit


def resize_299(images: jax.Array) -> jax.Array:
    """Bilinear resize to the Inception side, as PyTorch's interpolate(align_corners=False)."""
    return resize_bilinear(images, INCEPTION_SIZE, INCEPTION_SIZE)


@functools.partial(jax.jit, static_argnames=("module", "output"))
def jit_apply(module: Any, variables: dict[str, Any], inputs: jax.Array, output: str) -> jax.Array:
    """Runs `module` in eval mode on (B,299,299,3) inputs and returns its output `output`."""
    return module.apply(variables, inputs)[output]


def run_network(
    module: Any, variables: dict[str, Any], inputs: jax.Array, output: str
) -> jax.Array:
    """`jit_apply` at full float32 precision (no TF32 convolutions on GPUs)."""
    with jax.default_matmul_precision("highest"):
        return jit_apply(module, variables, inputs, output)


def collect_rows(
    compute: Callable[[jax.Array], jax.Array], batches: Batches, num_batches: int, label: str
) -> np.ndarray:
    """Applies `compute` to every batch and keeps the rows of valid examples, in order.

    Args:
      compute: (B,H,W,3) images -> (B,D) rows.
      batches: (images, valid) pairs; `valid` is a (B,) boolean mask.
      num_batches: the number of batches, for the progress bar.
      label: names the run on the progress bar.

    Returns:
      (N,D) float64 rows, N the number of valid examples.
    """
    rows = []
    progress = Progress(0, num_batches, label)
    try:
        for step, (images, valid) in enumerate(batches, start=1):
            out = np.asarray(compute(jnp.asarray(images)), np.float64)
            rows.append(out[np.asarray(valid, bool)])
            progress.update(step)
    finally:
        progress.close()
    if not rows:
        raise UserError(f"{label}: the image batches are empty")
    return np.concatenate(rows)
