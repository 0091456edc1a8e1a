"""BCE on logits: closed form, PyTorch's clamped BCELoss, and where the two differ."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmani.losses.adversarial import binary_cross_entropy


@pytest.mark.parametrize("log_clamp", [False, True])
def test_closed_form_for_moderate_logits(log_clamp):
    logits = jnp.array([0.0, 2.0, -1.0])
    labels = jnp.array([1.0, 0.0, 1.0])
    expected = np.mean([np.log(2.0), 2.0 + np.log1p(np.exp(-2.0)), np.log1p(np.exp(1.0))])
    np.testing.assert_allclose(binary_cross_entropy(logits, labels, log_clamp), expected, rtol=1e-6)


def test_clamped_form_matches_torch_bce_loss():
    torch = pytest.importorskip("torch")
    logits = np.array([-120.0, -30.0, -3.0, 0.5, 17.0, 40.0, 200.0], np.float32)
    labels = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0], np.float32)
    probs = torch.sigmoid(torch.from_numpy(logits))
    expected = torch.nn.functional.binary_cross_entropy(probs, torch.from_numpy(labels))
    ours = binary_cross_entropy(jnp.asarray(logits), jnp.asarray(labels), log_clamp=True)
    np.testing.assert_allclose(ours, expected.item(), rtol=1e-6)


def test_saturation_differs_between_forms():
    logits, labels = jnp.array([200.0]), jnp.array([0.0])
    assert float(binary_cross_entropy(logits, labels, log_clamp=True)) == pytest.approx(100.0)
    assert float(binary_cross_entropy(logits, labels, log_clamp=False)) == pytest.approx(200.0)
    clamped_grad = jax.grad(lambda x: binary_cross_entropy(x, labels, True))(logits)
    clean_grad = jax.grad(lambda x: binary_cross_entropy(x, labels, False))(logits)
    assert float(clamped_grad[0]) == 0.0
    assert float(clean_grad[0]) == pytest.approx(1.0)
