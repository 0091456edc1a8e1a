"""Inception Score: closed forms, the seed's formula restated in numpy, splits, inputs, weights."""

import numpy as np
import pytest
from flax import linen as nn
from scipy import special

from configs import default
from jaxmani.errors import UserError
from jaxmani.evaluate import inception_score as inception
from jaxmani.models import registry
from tests.evaluate.test_fid import numpy_resize, padded_batches


def seed_inception_score(probabilities, splits=10):
    """The seed's check_inception_score.py restated: p log(p / p_y) per part, torch.std (N-1)."""
    size = len(probabilities) // splits
    scores = []
    for k in range(splits):
        part = probabilities[k * size : (k + 1) * size]
        marginal = part.mean(axis=0)
        kl = (part * np.log(part / marginal)).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return np.mean(scores), np.std(scores, ddof=1)


def one_hot_probabilities(classes, n, margin=50.0):
    """Softmax rows of logits with a `margin` on class i mod `classes`."""
    logits = np.zeros((n, classes))
    logits[np.arange(n), np.arange(n) % classes] = margin
    return special.softmax(logits, axis=1)


def test_identical_rows_score_one():
    rows = np.tile(special.softmax(np.random.default_rng(0).normal(size=7)), (40, 1))
    mean, std = inception.inception_score(rows)
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_disjoint_one_hot_classes_score_the_class_count():
    mean, std = inception.inception_score(one_hot_probabilities(5, 10 * 5))
    assert mean == pytest.approx(5.0, abs=1e-5)
    assert std == pytest.approx(0.0, abs=1e-5)


def test_two_class_closed_form():
    eps = 0.1
    rows = np.array([[1 - eps, eps], [eps, 1 - eps]] * 10)
    binary_entropy = -(eps * np.log(eps) + (1 - eps) * np.log(1 - eps))
    mean, _ = inception.inception_score(rows)
    assert np.log(mean) == pytest.approx(np.log(2) - binary_entropy, rel=1e-12)


def test_matches_the_seed_formula_and_drops_the_remainder():
    rng = np.random.default_rng(1)
    rows = rng.dirichlet(np.full(12, 0.3), size=25)
    ours = inception.inception_score(rows)
    np.testing.assert_allclose(ours, seed_inception_score(rows), rtol=1e-12)
    changed = rows.copy()
    changed[20:] = rng.dirichlet(np.full(12, 0.3), size=5)  # Rows 20..24 fall outside 10 x 2.
    assert inception.inception_score(changed) == ours


def test_equals_the_entropy_form():
    rows = np.random.default_rng(2).dirichlet(np.ones(9), size=30)
    parts = rows.reshape(10, 3, 9)
    marginal_entropy = -special.xlogy(parts.mean(axis=1), parts.mean(axis=1)).sum(-1)
    mean_entropy = -special.xlogy(parts, parts).sum(-1).mean(-1)
    np.testing.assert_allclose(
        inception.split_scores(rows), np.exp(marginal_entropy - mean_entropy), rtol=1e-12
    )


def test_unbiased_std_over_splits():
    rows = np.random.default_rng(3).dirichlet(np.ones(6), size=40)
    scores = inception.split_scores(rows)
    _, std = inception.inception_score(rows)
    assert std == pytest.approx(np.std(scores) * np.sqrt(10 / 9), rel=1e-12)


def test_zero_probabilities_stay_finite():
    # A logit gap of 200 underflows to exact zeros in the network's float32 softmax.
    rows = one_hot_probabilities(4, 40, margin=200.0).astype(np.float32)
    assert (rows == 0).any()
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.isnan(seed_inception_score(rows)[0])
    assert inception.inception_score(rows)[0] == pytest.approx(4.0, rel=1e-12)


def test_fewer_images_than_splits_is_a_user_error():
    with pytest.raises(UserError, match="at least 10 images"):
        inception.inception_score(np.full((9, 3), 1 / 3))


def test_input_is_the_signed_range_resized():
    image = np.random.default_rng(4).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    ours = np.asarray(inception.network_input(image[None]))[0]
    np.testing.assert_allclose(ours, numpy_resize(image / 255 * 2 - 1, 299), atol=1e-4)
    signed = np.linspace(-1, 1, 3 * 299 * 299, dtype=np.float32).reshape(1, 299, 299, 3)
    np.testing.assert_allclose(np.asarray(inception.network_input(signed)), signed, atol=1e-6)


class MeanClassifier(nn.Module):
    """A stand-in for the ImageNet Inception: 'logits' = a Dense of the per-channel mean."""

    @nn.compact
    def __call__(self, x):
        return {"logits": nn.Dense(5, name="fc")(x.mean(axis=(1, 2)))}


def test_compute_probabilities_softmaxes_valid_rows(monkeypatch):
    monkeypatch.setattr(registry, "create_network", lambda name, config: MeanClassifier())
    rng = np.random.default_rng(5)
    kernel = rng.normal(size=(3, 5)).astype(np.float32) * 4
    bias = rng.normal(size=5).astype(np.float32)
    variables = {"params": {"fc": {"kernel": kernel, "bias": bias}}}
    images = rng.integers(0, 256, (7, 12, 12, 3), dtype=np.uint8)
    ours = inception.compute_probabilities(
        variables, padded_batches(images, 3), 3, default.get_config()
    )
    logits = np.asarray(inception.network_input(images), np.float64).mean(axis=(1, 2))
    np.testing.assert_allclose(ours, special.softmax(logits @ kernel + bias, axis=1), atol=1e-6)


def test_missing_weights_name_the_field_and_the_convert_command():
    with pytest.raises(UserError) as error:
        inception.load_weights("", default.get_config())
    assert inception.WEIGHTS_FIELD in str(error.value)
    assert "jaxmani convert --network=inception --src=inception_v3_google" in str(error.value)
