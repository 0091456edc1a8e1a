"""InceptionV3: parameter counts, stage shapes and the pooling of the two variants."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from jaxmani.models.inception import InceptionV3, pool_3x3, pool_kinds
from tests.models import reference as ref

STAGES = {
    "Conv2d_1a_3x3": (149, 32),
    "Conv2d_2a_3x3": (147, 32),
    "Conv2d_2b_3x3": (147, 64),
    "Conv2d_3b_1x1": (73, 80),
    "Conv2d_4a_3x3": (71, 192),
    "Mixed_5b": (35, 256),
    "Mixed_5c": (35, 288),
    "Mixed_5d": (35, 288),
    "Mixed_6a": (17, 768),
    "Mixed_6b": (17, 768),
    "Mixed_6c": (17, 768),
    "Mixed_6d": (17, 768),
    "Mixed_6e": (17, 768),
    "Mixed_7a": (8, 1280),
    "Mixed_7b": (8, 2048),
    "Mixed_7c": (8, 2048),
}
POOLED_BLOCKS = ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6b", "Mixed_6c", "Mixed_6d")
POOLED_BLOCKS += ("Mixed_6e", "Mixed_7b", "Mixed_7c")
SMALL = 139  # the smallest input whose Mixed_7 maps are 3x3, so every pool kind shows


@functools.cache
def abstract_variables(model: nn.Module) -> dict:
    """Variable shapes of `model` (the same for any input size), without allocating them."""
    return jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 299, 299, 3)))


def count_params(abstract: dict) -> int:
    """Number of trainable parameters (BN running statistics excluded)."""
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(abstract["params"]))


def numpy_pool(x: np.ndarray, kind: str) -> np.ndarray:
    """3x3 stride-1 pad-1 pool over NHWC, written out window by window."""
    _, height, width, _ = x.shape
    out = np.zeros_like(x)
    for i in range(height):
        for j in range(width):
            window = x[:, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]
            if kind == "max":
                out[:, i, j] = window.max(axis=(1, 2))
            elif kind == "avg_include_pad":
                out[:, i, j] = window.sum(axis=(1, 2)) / 9.0
            else:
                out[:, i, j] = window.mean(axis=(1, 2))
    return out


def test_parameter_counts():
    assert count_params(abstract_variables(InceptionV3())) == 21_785_568
    assert count_params(abstract_variables(InceptionV3(num_classes=1000))) == 23_834_568
    assert count_params(abstract_variables(InceptionV3("fid", num_classes=1008))) == 23_850_960


def test_variants_share_the_torchvision_layout():
    tv = abstract_variables(InceptionV3(num_classes=1000))
    fid = abstract_variables(InceptionV3("fid", num_classes=1008))
    assert jax.tree.structure(tv) == jax.tree.structure(fid)
    assert list(tv["params"]) == [*STAGES, "fc"]
    block = tv["params"]["Mixed_6b"]
    assert sorted(block) == sorted(
        ["branch1x1", "branch_pool"]
        + [f"branch7x7_{i}" for i in range(1, 4)]
        + [f"branch7x7dbl_{i}" for i in range(1, 6)]
    )
    assert block["branch7x7dbl_5"]["conv"]["kernel"].shape == (1, 7, 128, 192)
    assert block["branch7x7_2"]["conv"]["kernel"].shape == (1, 7, 128, 128)
    assert set(block["branch1x1"]) == {"conv", "bn"}
    assert set(tv["batch_stats"]["Mixed_7c"]["branch3x3dbl_3b"]["bn"]) == {"mean", "var"}
    assert tv["params"]["fc"]["bias"].shape == (1000,)


def test_stage_shapes_for_299_input():
    model = InceptionV3(num_classes=1000)
    abstract = abstract_variables(model)
    outputs, state = jax.eval_shape(
        lambda v, x: model.apply(v, x, capture_intermediates=True, mutable=["intermediates"]),
        abstract,
        jnp.zeros((1, 299, 299, 3)),
    )
    captured = dict(state["intermediates"])
    captured.pop("__call__")
    stages = {name: out["__call__"][0].shape for name, out in captured.items()}
    assert stages == {name: (1, size, size, ch) for name, (size, ch) in STAGES.items()} | {
        "fc": (1, 1000)
    }
    assert {k: v.shape for k, v in outputs.items()} == {
        "mixed_6e": (1, 17, 17, 768),
        "pool": (1, 2048),
        "logits": (1, 1000),
    }


@pytest.mark.parametrize("kind", ["avg_include_pad", "avg_exclude_pad", "max"])
def test_pool_3x3_matches_numpy(kind):
    x = np.random.default_rng(0).normal(size=(2, 6, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(pool_3x3(jnp.asarray(x), kind), numpy_pool(x, kind), atol=1e-6)


def test_fid_average_pool_differs_only_on_the_border():
    x = jnp.asarray(np.random.default_rng(1).uniform(1.0, 2.0, size=(1, 7, 7, 4)), jnp.float32)
    include = np.asarray(pool_3x3(x, "avg_include_pad"))
    exclude = np.asarray(pool_3x3(x, "avg_exclude_pad"))
    np.testing.assert_allclose(include[:, 1:-1, 1:-1], exclude[:, 1:-1, 1:-1], rtol=1e-6)
    np.testing.assert_allclose(include[:, 0, 0], exclude[:, 0, 0] * 4 / 9, rtol=1e-6)
    np.testing.assert_allclose(include[:, 0, 3], exclude[:, 0, 3] * 6 / 9, rtol=1e-6)


def test_pool_kinds_per_variant():
    assert pool_kinds("torchvision") == ("avg_include_pad", "avg_include_pad")
    assert pool_kinds("fid") == ("avg_exclude_pad", "max")
    with pytest.raises(ValueError, match="variant"):
        pool_kinds("tf")


def pool_branch_io(variant: str, variables: dict, x: jax.Array) -> tuple[dict, dict]:
    """Runs the model once, recording the input of every Mixed block and of its branch_pool."""
    recorded = {}

    def record(next_fun, args, kwargs, context):
        module = context.module
        if context.method_name == "__call__" and (module.name or "").startswith("Mixed_"):
            recorded[module.name] = {"block": args[0]}
        if context.method_name == "__call__" and module.name == "branch_pool":
            recorded[module.parent.name]["pool"] = args[0]
        return next_fun(*args, **kwargs)

    def forward(variables, x):
        with nn.intercept_methods(record):
            out = InceptionV3(variant).apply(variables, x)
        return out, recorded

    return jax.jit(forward)(variables, x)


@pytest.mark.parametrize("variant", ["torchvision", "fid"])
def test_pool_branches_follow_the_variant(variant):
    variables = ref.he_variables(abstract_variables(InceptionV3()))
    x = jnp.asarray(np.random.default_rng(2).normal(size=(1, SMALL, SMALL, 3)), jnp.float32)
    out, recorded = pool_branch_io(variant, variables, x)
    expected = {"torchvision": ["avg_include_pad"] * 9, "fid": ["avg_exclude_pad"] * 8 + ["max"]}
    assert out["pool"].shape == (1, 2048)
    for name, kind in zip(POOLED_BLOCKS, expected[variant], strict=True):
        block, pooled = (np.asarray(recorded[name][k]) for k in ("block", "pool"))
        np.testing.assert_allclose(pooled, numpy_pool(block, kind), rtol=1e-5, atol=1e-5)
    assert {"Mixed_6a", "Mixed_7a"} <= set(recorded)
    assert "pool" not in recorded["Mixed_6a"] and "pool" not in recorded["Mixed_7a"]
