"""layers.max_pool against torch.nn.functional.max_pool2d: outputs and gradients, ties included."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from jaxmani.models import layers  # noqa: E402

pytestmark = pytest.mark.parity


@pytest.mark.parametrize(
    ("window", "stride", "shape"), [(2, 2, (2, 9, 8, 3)), (3, 2, (2, 11, 10, 4))]
)
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_and_its_gradient_equal_pytorch(window, stride, shape, ties):
    rng = np.random.default_rng(window + ties)
    x = rng.standard_normal(shape).astype(np.float32)
    if ties:  # ReLU outputs: whole windows of zeros, and repeated positive values.
        x = np.maximum(np.round(x), 0.0).astype(np.float32)
    out, vjp = jax.vjp(lambda x: layers.max_pool(x, window, stride), jnp.asarray(x))
    # Integer cotangents: overlapping windows sum them exactly, in any order.
    cotangent = rng.integers(-8, 9, out.shape).astype(np.float32)
    (grad,) = vjp(jnp.asarray(cotangent))

    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    out_t = torch.nn.functional.max_pool2d(xt, window, stride)
    out_t.backward(torch.tensor(cotangent.transpose(0, 3, 1, 2)))
    np.testing.assert_array_equal(out, out_t.detach().numpy().transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(grad, xt.grad.numpy().transpose(0, 2, 3, 1))
