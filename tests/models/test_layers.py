"""BatchNorm across a device axis (vmap in process, pmap on 8 CPU devices) and norm dtypes."""

import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmani.models.layers import BatchNorm, instance_norm, max_pool
from tests.models import reference as ref

REPO = pathlib.Path(__file__).resolve().parents[2]


def random_input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Seeded N(1, 2^2) float32 input (a non-zero mean shows a wrong variance formula)."""
    return (1.0 + 2.0 * np.random.default_rng(seed).normal(size=shape)).astype(np.float32)


def test_batch_norm_over_an_axis_uses_the_global_batch() -> None:
    x = random_input((12, 3, 3, 5))
    variables = ref.random_variables(BatchNorm(), x, train=False)
    expected_out = ref.batch_norm(np.asarray(x, np.float64), variables["params"], None)
    expected_stats = ref.updated_stats(x, variables["batch_stats"])
    module = BatchNorm(axis_name="shards")

    def shard(x: jax.Array) -> tuple:
        return module.apply(variables, x, train=True, mutable=["batch_stats"])

    out, state = jax.vmap(shard, axis_name="shards")(x.reshape(4, 3, 3, 3, 5))
    np.testing.assert_allclose(out.reshape(x.shape), expected_out, rtol=1e-5, atol=1e-5)
    for name in ("mean", "var"):  # The unbiasing uses the global count 12 * 9, not 3 * 9.
        for stats in state["batch_stats"][name]:
            np.testing.assert_allclose(stats, expected_stats[name], rtol=1e-6, atol=1e-6)


def test_norms_compute_in_float32_and_return_the_requested_dtype() -> None:
    x = jnp.asarray(random_input((4, 3, 3, 5)), jnp.bfloat16)
    module = BatchNorm(dtype=jnp.bfloat16)
    variables = module.init(jax.random.key(0), x, train=False)
    assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
    out, state = module.apply(variables, x, train=True, mutable=["batch_stats"])
    assert out.dtype == jnp.bfloat16
    assert state["batch_stats"]["var"].dtype == jnp.float32
    normed = instance_norm(x)
    assert normed.dtype == jnp.bfloat16
    expected = ref.instance_norm(np.asarray(x, np.float64))
    np.testing.assert_allclose(np.asarray(normed, np.float64), expected, atol=0.05)


PMAP_SCRIPT = textwrap.dedent(
    """
    import jax
    import numpy as np
    from flax import traverse_util

    from jaxmani.models.discriminator import Discriminator
    from jaxmani.models.generator import Generator
    from tests.models import reference as ref

    DEVICES = 8
    assert jax.device_count() == DEVICES
    rng = np.random.default_rng(0)


    def normal(*shape):
        return rng.normal(size=shape).astype(np.float32)


    def shards(tree):
        return jax.tree.map(lambda a: a.reshape(DEVICES, -1, *a.shape[1:]), tree)


    def unshard(tree):
        return jax.tree.map(lambda a: np.asarray(a).reshape(-1, *a.shape[2:]), tree)


    def check(name, single, sharded, out_keys):
        (out, state), (p_out, p_state) = single, sharded
        for key in out_keys:
            np.testing.assert_allclose(
                unshard(p_out)[key], out[key], rtol=1e-5, atol=1e-5, err_msg=f"{name} {key}"
            )
        want = traverse_util.flatten_dict(state["batch_stats"], sep="/")
        got = traverse_util.flatten_dict(p_state["batch_stats"], sep="/")
        assert sorted(got) == sorted(want) and want
        for path, value in want.items():
            for device in range(DEVICES):
                np.testing.assert_allclose(
                    got[path][device], value, rtol=1e-5, atol=1e-5, err_msg=f"{name} {path}"
                )


    # G at one sample per device: the seed's batch-of-one rule must see the global batch of 8.
    sizes = dict(gf_dim=2, z_dim=4, condition_dim=4, embedding_dim=8, r_num=1, image_size=64)
    lengths = rng.integers(1, 5, DEVICES)
    mask = np.arange(5)[None, :] >= lengths[:, None]
    g_inputs = {
        "z": normal(DEVICES, 4),
        "sent_emb": normal(DEVICES, 8),
        "words_emb": normal(DEVICES, 5, 8) * ~mask[..., None],
        "mask": mask,
        "cnn_code": normal(DEVICES, 8),
        "region_features": normal(DEVICES, 8, 8, 8),
        "vgg_features": normal(DEVICES, 32, 32, 128),
        "ca_eps": normal(DEVICES, 4),
    }
    generator = Generator(**sizes, skip_init_bn_at_batch_one=True)
    g_axis = Generator(**sizes, skip_init_bn_at_batch_one=True, bn_axis_name="batch")
    g_vars = ref.random_variables(generator, **g_inputs, train=False)


    def run_g(module, inputs):
        return module.apply(g_vars, **inputs, train=True, mutable=["batch_stats"])


    check(
        "G",
        jax.jit(lambda x: run_g(generator, x))(g_inputs),
        jax.pmap(lambda x: run_g(g_axis, x), axis_name="batch")(shards(g_inputs)),
        ("image", "attention", "mu", "logvar"),
    )

    # D at two samples per device.
    images, sentences = rng.uniform(-1, 1, (16, 64, 64, 3)).astype(np.float32), normal(16, 8)
    d_inputs = {"images": images, "sent_emb": sentences}
    discriminator = Discriminator(df_dim=2, embedding_dim=8, image_size=64)
    d_axis = Discriminator(df_dim=2, embedding_dim=8, image_size=64, bn_axis_name="batch")
    d_vars = ref.random_variables(
        discriminator, **d_inputs, train=False, method=Discriminator.logits
    )


    def run_d(module, inputs):
        logits, state = module.apply(
            d_vars, **inputs, train=True, mutable=["batch_stats"], method=Discriminator.logits
        )
        return {"cond": logits[0], "uncond": logits[1]}, state


    check(
        "D",
        jax.jit(lambda x: run_d(discriminator, x))(d_inputs),
        jax.pmap(lambda x: run_d(d_axis, x), axis_name="batch")(shards(d_inputs)),
        ("cond", "uncond"),
    )
    print("pmap batch norm ok")
    """
)


def test_g_and_d_under_pmap_match_the_global_batch_on_one_device() -> None:
    env = os.environ | {
        "XLA_FLAGS": " ".join(
            [
                "--xla_force_host_platform_device_count=8",
                "--xla_backend_optimization_level=0",  # Compiles G and D twice as fast.
                "--xla_llvm_disable_expensive_passes=true",
            ]
        ),
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", PMAP_SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "pmap batch norm ok" in result.stdout


def first_maximum_gradient(x: np.ndarray, cotangent: np.ndarray, window: int, stride: int):
    """Numpy restatement: each output's cotangent goes to the first maximum of its window."""
    grad = np.zeros_like(x)
    for b, i, j, c in np.ndindex(cotangent.shape):
        patch = x[b, i * stride : i * stride + window, j * stride : j * stride + window, c]
        di, dj = np.unravel_index(np.argmax(patch), patch.shape)  # argmax takes the first.
        grad[b, i * stride + di, j * stride + dj, c] += cotangent[b, i, j, c]
    return grad


@pytest.mark.parametrize(("window", "stride"), [(2, 2), (3, 2), (3, 1)])
def test_max_pool_gradient_goes_to_the_first_maximum(window, stride):
    rng = np.random.default_rng(window * stride)
    x = np.maximum(np.round(rng.standard_normal((2, 9, 8, 3)) * 2), 0.0).astype(np.float32)
    pooled, vjp = jax.vjp(lambda x: max_pool(x, window, stride), jnp.asarray(x))
    expected = jax.lax.reduce_window(
        x, -np.inf, jax.lax.max, (1, window, window, 1), (1, stride, stride, 1), "VALID"
    )
    np.testing.assert_array_equal(pooled, expected)
    # Integer cotangents: overlapping windows sum them exactly, in any order.
    cotangent = rng.integers(-8, 9, pooled.shape).astype(np.float32)
    (grad,) = vjp(jnp.asarray(cotangent))
    np.testing.assert_array_equal(grad, first_maximum_gradient(x, cotangent, window, stride))
