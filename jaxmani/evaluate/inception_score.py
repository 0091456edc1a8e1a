"""Inception Score as the seed computed it (METRICS_SPEC §2.1, its check_inception_score.py).

Images in [-1, 1] (uint8 pixels via ToTensor then Normalize(0.5, 0.5)) are resized bilinearly to
299x299 (align_corners=False) and fed as they are to torchvision's ImageNet Inception-v3
(`transform_input=False`); p(y|x) is the softmax of its 1000 logits (fc with bias), in float32.
The N images are cut, in order, into 10 contiguous parts of floor(N / 10); the last N mod 10 are
dropped. Part k scores s_k = exp(mean_i KL(p(y|x_i) || p_y)), p_y the part's mean prediction;
the result is mean(s_k) and the unbiased (N - 1) std of the s_k, as torch.std gives.

One deliberate difference: the KL uses 0 log 0 = 0, so a probability that underflows to 0 adds
nothing where the seed's p * log(p / p_y) gives NaN (only for logit gaps above about 100). The
scores are computed in float64 from the float32 probabilities.
"""

from typing import Any

import jax
import ml_collections
import numpy as np
from scipy import special

from jaxmani.errors import UserError
from jaxmani.evaluate import inception_runs
from jaxmani.models import registry

SPLITS = 10
NETWORK = "inception"
WEIGHTS_FIELD = "config.pretrained.inception"
WEIGHTS_SOURCE = "inception_v3_google-0cc3c7bd.pth"


def load_weights(path: str, config: ml_collections.ConfigDict) -> dict[str, Any]:
    """torchvision's ImageNet Inception-v3 from a params file made by `jaxmani convert`."""
    return inception_runs.load_inception(NETWORK, path, WEIGHTS_FIELD, WEIGHTS_SOURCE, config)


@jax.jit
def network_input(images: jax.Array) -> jax.Array:
    """The (B,299,299,3) [-1, 1] input of the IS network: uint8 pixels or [-1, 1] floats."""
    return inception_runs.resize_299(inception_runs.to_float(images, signed=True))


def compute_probabilities(
    variables: dict[str, Any],
    batches: inception_runs.Batches,
    num_batches: int,
    config: ml_collections.ConfigDict,
) -> np.ndarray:
    """(N,1000) softmax predictions of the valid images of `batches`, in order."""
    module = registry.create_network(NETWORK, config)

    def predict(images: jax.Array) -> jax.Array:
        logits = inception_runs.run_network(module, variables, network_input(images), "logits")
        return jax.nn.softmax(logits, axis=-1)

    return inception_runs.collect_rows(predict, batches, num_batches, "IS predictions")


def split_scores(probabilities: np.ndarray, splits: int = SPLITS) -> np.ndarray:
    """exp(mean KL(p(y|x) || p_y)) of each of `splits` contiguous parts (the remainder dropped)."""
    size = len(probabilities) // splits
    if size == 0:
        raise UserError(
            f"the Inception Score over {splits} splits needs at least {splits} images, "
            f"got {len(probabilities)}"
        )
    parts = np.asarray(probabilities[: size * splits], np.float64).reshape(splits, size, -1)
    marginal = parts.mean(axis=1, keepdims=True)
    kl = (special.xlogy(parts, parts) - special.xlogy(parts, marginal)).sum(axis=-1)
    return np.exp(kl.mean(axis=1))


def inception_score(probabilities: np.ndarray, splits: int = SPLITS) -> tuple[float, float]:
    """Mean and unbiased std of the split scores of (N, classes) predictions."""
    scores = split_scores(probabilities, splits)
    return float(scores.mean()), float(scores.std(ddof=1))
