"""Frechet Inception Distance under two protocols (METRICS_SPEC §1).

`pytorch_fid` is pytorch-fid's CLI pipeline: images in [0, 1] (uint8 / 255), bilinear resize to
299x299 (align_corners=False, no antialias, for every input size), x -> 2x - 1, the FID
Inception (`pt_inception-2015-12-05-6726825d.pth`), 2048-d pool3 features stored in float64,
mean and covariance (N - 1) in float64 and scipy's sqrtm Frechet distance. Every valid image is
used (pytorch-fid's loader keeps its last partial batch too).

`seed_train` reproduces how the seed computed its paper's FID tables (its FidCalculater): the
same network and distance, but it fed generator-range [-1, 1] tensors to pytorch-fid's model,
which resizes them and applies 2x - 1 again, so the network sees [-3, 1]. This protocol does
that with [-1, 1] inputs (float, or uint8 read as ToTensor then Normalize(0.5, 0.5)). What the
seed's numbers further depend on is the caller's choice of data, and differs here on purpose:
- the seed used the training split, real images as random 256 crops (flipped) of the training
  pipeline and fakes reconstructed with the matching captions, accumulated during epoch 0 or
  99 while G was still updated; the caller chooses images and generator;
- the seed filled 8,850 of 8,855 rows (batch 10, drop_last) and left the last 5 rows of both
  feature arrays uninitialised, yet inside the statistics; here only the valid rows enter;
- the seed's fakes were float tensors; uint8 inputs here are rounded pixels.
"""

from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging
from scipy import linalg

from jaxmani.errors import UserError
from jaxmani.evaluate import inception_runs
from jaxmani.models import registry

PROTOCOLS = ("pytorch_fid", "seed_train")
NETWORK = "fid_inception"
WEIGHTS_FIELD = "config.pretrained.fid_inception"
WEIGHTS_SOURCE = "pt_inception-2015-12-05-6726825d.pth"
EPS = 1e-6  # Added to both covariances when sqrtm of their product is not finite.
IMAGINARY_ATOL = 1e-3  # Largest |imaginary part| on the diagonal of the sqrtm that is dropped.


def check_protocol(protocol: str) -> None:
    """Raises a UserError naming the protocols when `protocol` is not one of them."""
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown FID protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def load_weights(path: str, config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The FID Inception's variables from a params file made by `jaxmani convert`."""
    return inception_runs.load_inception(NETWORK, path, WEIGHTS_FIELD, WEIGHTS_SOURCE, config)


def network_input(images: jax.Array, protocol: str) -> jax.Array:
    """The (B,299,299,3) input the FID Inception sees for images of `protocol`.

    uint8 images are pixels; float images are in [0, 1] (pytorch_fid) or [-1, 1] (seed_train).
    """
    check_protocol(protocol)
    x = inception_runs.to_float(images, signed=protocol == "seed_train")
    return 2.0 * inception_runs.resize_299(x) - 1.0


jit_network_input = jax.jit(network_input, static_argnames="protocol")


def compute_features(
    variables: dict[str, Any],
    batches: inception_runs.Batches,
    num_batches: int,
    protocol: str,
    config: ml_collections.ConfigDict,
) -> np.ndarray:
    """(N,2048) float64 pool3 features of the valid images of `batches` (see the module doc)."""
    check_protocol(protocol)
    module = registry.create_network(NETWORK, config)

    def pool3(images: jax.Array) -> jax.Array:
        inputs = jit_network_input(images, protocol)
        return inception_runs.run_network(module, variables, inputs, "pool")

    return inception_runs.collect_rows(pool3, batches, num_batches, f"FID features ({protocol})")


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (rows are observations, N - 1 denominator) in float64."""
    if len(features) < 2:
        raise UserError(f"FID needs at least 2 images per set, got {len(features)}")
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2)), as pytorch-fid computes it.

    A non-finite sqrtm is retried with EPS * I added to both covariances; a complex one keeps its
    real part unless a diagonal imaginary part exceeds IMAGINARY_ATOL.
    """
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        logging.warning("FID: singular covariance product; adding %g to both diagonals", EPS)
        offset = EPS * np.eye(len(sigma1))
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imaginary = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if imaginary > IMAGINARY_ATOL:
            raise UserError(
                f"FID: sqrt(sigma1 sigma2) has imaginary diagonal parts up to {imaginary:.3g}; "
                "the features are degenerate (use more, and distinct, images)"
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """The Frechet distance between the Gaussians fitted to two feature sets."""
    return frechet_distance(*statistics(features1), *statistics(features2))
