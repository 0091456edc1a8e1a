"""One training step on 8 devices: jit over the mesh, pmap, and one device give the same step."""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from jaxmani.errors import UserError
from jaxmani.train import loop
from tests.conftest import train_config

REPO = pathlib.Path(__file__).resolve().parents[2]

# Runs in a process with 8 CPU devices; prints "parallel ok" when every check passed.
SCRIPT = textwrap.dedent(
    """
    import functools

    import jax
    import numpy as np

    from configs import tiny
    from jaxmani.train import loop
    from jaxmani.train.state import create_train_state
    from jaxmani.train.step import train_step

    assert jax.device_count() == 8
    config = tiny.get_config()
    config.train.batch_size = 8
    config.loss.g.mask_weight = 25.0
    rng = np.random.default_rng(0)
    b, s, t = 8, config.data.image_size, config.data.words_num
    lengths = np.asarray([5, 3, 18, 1, 7, 12, 2, 9], np.int32)
    ids = rng.integers(1, config.model.text.vocab_size, (b, t))
    batch = {
        "image": rng.uniform(-1, 1, (b, s, s, 3)).astype(np.float32),
        "caption": np.where(np.arange(t)[None] < lengths[:, None], ids, 0).astype(np.int32),
        "caption_length": lengths,
        # Rows 0 and 3, 1 and 5 share a class across devices: DAMSM must mask them globally.
        "class_id": np.asarray([0, 1, 2, 0, 3, 1, 4, 5], np.int32),
        "mask": (rng.uniform(size=(b, s, s, 1)) > 0.5).astype(np.float32),
    }
    # On the host: the steps donate their state, and each mode places its own copy.
    state = jax.device_get(create_train_state(config, jax.random.PRNGKey(0)))
    frozen = loop.load_frozen(config, jax.random.PRNGKey(1))
    mesh = loop.create_mesh()

    def one_step(mode):
        config.parallel.mode = mode
        models = loop.create_step_models(config)
        placed_state, placed_frozen = loop.replicate(mode, mesh, (state, frozen))
        placed_batch = loop.device_batch(mode, mesh, batch)
        step = loop.make_step(mode, models, mesh)
        new_state, metrics = step(placed_state, placed_batch, placed_frozen)
        new_state = loop.unreplicate(mode, mesh, new_state)
        assert all(x.sharding.is_fully_replicated for x in jax.tree.leaves(new_state))
        return jax.device_get((new_state, loop.first_replica(mode, metrics)))

    config.parallel.mode = "jit"
    single_models = loop.create_step_models(config)
    single = jax.device_get(
        jax.jit(functools.partial(train_step, models=single_models))(state, batch, frozen)
    )
    results = {"jit": one_step("jit"), "pmap": one_step("pmap")}
    want_state, want_metrics = single
    assert {"g_mask", "d_cond_wrong", "g_word", "g_sentence"} <= set(want_metrics)
    for mode, (got_state, got_metrics) in results.items():
        assert got_metrics.keys() == want_metrics.keys(), mode
        for name, value in want_metrics.items():
            # The gradient norms of float32 steps differ by up to 5e-5 (float64: 1e-9).
            rtol = 1e-4 if name.endswith("grad_norm") else 1e-5
            message = f"{mode} {name}"
            np.testing.assert_allclose(got_metrics[name], value, rtol=rtol, err_msg=message)
        paths = jax.tree_util.tree_flatten_with_path(want_state)[0]
        for (path, want), got in zip(paths, jax.tree_util.tree_leaves(got_state), strict=True):
            name = jax.tree_util.keystr(path)
            # Adam's moments hold the gradients, whose float32 rounding differs between
            # partitionings by ~1e-5 of a leaf's scale (measured: 1.2e-5). Adam's first step,
            # lr * g / (|g| + eps), turns that noise on a gradient element near 0 into a fraction
            # of lr on its parameter (measured: 0.13% of lr on 1 of 27648 elements).
            if "opt_state" in name:
                atol = 1e-4 * float(np.max(np.abs(want)))
            else:
                atol = 0.01 * config.optim.g.lr
            message = f"{mode} {name}"
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=atol, err_msg=message)
    print("parallel ok")
    """
)


def run_with_devices(script: str, devices: int) -> subprocess.CompletedProcess:
    """Runs `script` in a Python process with `devices` forced CPU devices."""
    env = os.environ | {
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_jit_pmap_and_one_device_take_the_same_step():
    result = run_with_devices(SCRIPT, 8)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "parallel ok" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"parallel.mode": "pjit"}, r"config\.parallel\.mode='pjit'"),
        (
            {"parallel.mode": "pmap", "compat.attention_mask_other_sample": True},
            r"config\.compat\.attention_mask_other_sample .*--config\.parallel\.mode=jit",
        ),
    ],
)
def test_parallel_settings_the_trainer_cannot_run_are_refused(overrides, message):
    with pytest.raises(UserError, match=message):
        loop.check_parallel(train_config("unused", **overrides))
