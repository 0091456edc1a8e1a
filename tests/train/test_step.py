"""One training step of every experiment config, shrunk to tiny widths, on a synthetic batch."""

import functools
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from jaxmani import generate
from jaxmani.models import registry
from jaxmani.train.loop import load_frozen
from jaxmani.train.state import create_train_state
from jaxmani.train.step import StepModels, draw_noise, train_step

# Each toy config and the loss terms it must add to the baseline's.
TOY_CONFIGS = {
    "toy_baseline": set(),
    "toy_hm": {"g_mask"},
    "toy_mask": {"g_mask"},
    "toy_nsl": {"g_nsl"},
    "toy_gm": set(),
    "toy_sad5": {"d_sad"},
    "toy_sad9": {"d_sad"},
    "toy_combined": {"g_mask", "d_sad"},
}
BASE_TERMS = {
    "d_loss",
    "g_loss",
    "d_cond_real",
    "d_cond_fake",
    "d_cond_wrong",
    "d_uncond_real",
    "d_uncond_fake",
    "g_adversarial",
    "g_word",
    "g_sentence",
    "g_perceptual",
    "g_kl",
    "d_grad_norm",
    "g_grad_norm",
}


def shrink(config):
    """The experiment's losses on configs/tiny.py's networks, without pretrained files."""
    small = tiny.get_config()
    config.model = small.model
    config.pretrained = small.pretrained
    config.train.batch_size = small.train.batch_size
    return config


def synthetic_batch(config, seed=0):
    """A batch of the documented keys with random pixels, captions of lengths 5 and 3."""
    rng = np.random.default_rng(seed)
    b, s, t = config.train.batch_size, config.data.image_size, config.data.words_num
    lengths = np.asarray([5, 3][:b], np.int32)
    ids = rng.integers(1, config.model.text.vocab_size, (b, t))
    return {
        "image": rng.uniform(-1, 1, (b, s, s, 3)).astype(np.float32),
        "caption": np.where(np.arange(t)[None] < lengths[:, None], ids, 0).astype(np.int32),
        "caption_length": lengths,
        "class_id": np.arange(b, dtype=np.int32),
        "mask": (rng.uniform(size=(b, s, s, 1)) > 0.5).astype(np.float32),
    }


def run_step(config, batch):
    """(initial state, state after one step, metrics) from seeded weights."""
    models = StepModels(
        generate.create_networks(config), registry.create_network("discriminator", config), config
    )
    state = create_train_state(config, jax.random.PRNGKey(0))
    frozen = load_frozen(config, jax.random.PRNGKey(1))
    new_state, metrics = jax.jit(functools.partial(train_step, models=models))(state, batch, frozen)
    return state, new_state, {k: float(v) for k, v in metrics.items()}


@pytest.mark.parametrize("name", sorted(TOY_CONFIGS))
def test_one_step_of_every_toy_config(name):
    config = shrink(importlib.import_module(f"configs.{name}").get_config())
    state, new_state, metrics = run_step(config, synthetic_batch(config))
    assert set(metrics) == BASE_TERMS | TOY_CONFIGS[name]
    assert all(np.isfinite(v) for v in metrics.values())
    assert int(new_state.step) == 1
    weights = config.loss.g
    expected_g = sum(
        weights[f"{term[2:]}_weight"] * metrics[term]
        for term in metrics
        if term.startswith("g_") and term not in ("g_loss", "g_grad_norm")
    )
    np.testing.assert_allclose(metrics["g_loss"], expected_g, rtol=1e-5)
    for old, new, ema in zip(
        jax.tree_util.tree_leaves(state.g_params),
        jax.tree_util.tree_leaves(new_state.g_params),
        jax.tree_util.tree_leaves(new_state.g_ema),
        strict=True,
    ):
        np.testing.assert_allclose(ema, 0.999 * old + 0.001 * new, rtol=1e-6, atol=1e-7)
    changed = jax.tree_util.tree_map(
        lambda a, b: bool(np.any(a != b)), state.d_params, new_state.d_params
    )
    assert all(jax.tree_util.tree_leaves(changed))


def test_same_seed_same_step():
    config = shrink(importlib.import_module("configs.toy_combined").get_config())
    batch = synthetic_batch(config)
    first, second = run_step(config, batch)[1:], run_step(config, batch)[1:]
    assert first[1] == second[1]
    for a, b in zip(
        jax.tree_util.tree_leaves(first[0]), jax.tree_util.tree_leaves(second[0]), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_paired_edit_terms_are_the_l1s_of_g_under_the_edit_caption():
    config = shrink(importlib.import_module("configs.toy_combined").get_config())
    batch = synthetic_batch(config)
    rng = np.random.default_rng(5)
    b, t = config.train.batch_size, config.data.words_num
    lengths = np.asarray([4, 6][:b], np.int32)
    ids = rng.integers(1, config.model.text.vocab_size, (b, t))
    batch["edit_caption"] = np.where(np.arange(t)[None] < lengths[:, None], ids, 0).astype(np.int32)
    batch["edit_caption_length"] = lengths
    edit_image = np.array(batch["image"])  # The edit recolours a patch of the first image only.
    edit_image[0, 2:6, 1:7] = rng.uniform(-1, 1, (4, 6, 3))
    batch["edit_image"] = edit_image
    _, off_state, off = run_step(config, batch)
    config.loss.g.paired_edit_weight = 3.0
    state, on_state, on = run_step(config, batch)
    config.loss.g.edited_region_weight = 2.0
    region = run_step(config, batch)[2]

    assert set(on) == set(off) | {"g_paired_edit"}
    for term in set(off) - {"g_loss", "g_grad_norm"}:
        np.testing.assert_allclose(on[term], off[term], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(on["g_loss"], off["g_loss"] + 3.0 * on["g_paired_edit"], rtol=1e-5)
    assert on["g_grad_norm"] != off["g_grad_norm"]

    networks, frozen = generate.create_networks(config), load_frozen(config, jax.random.PRNGKey(1))
    noise_rng = jax.random.split(jax.random.fold_in(state.rng, state.step))[0]
    noise = draw_noise(StepModels(networks, None, config), noise_rng, b)
    encoded = generate.encode(
        networks, frozen, batch["image"], batch["edit_caption"], batch["edit_caption_length"]
    )
    variables = {"params": state.g_params, "batch_stats": state.g_batch_stats}
    outputs, _ = generate.generate(
        networks, variables, encoded, noise["z"], train=True, ca_eps=noise["ca_eps"]
    )
    expected = np.mean(np.abs(np.asarray(outputs["image"]) - batch["edit_image"]))
    np.testing.assert_allclose(on["g_paired_edit"], expected, rtol=1e-5)
    patch_error = np.mean(
        np.abs(np.asarray(outputs["image"])[0, 2:6, 1:7] - edit_image[0, 2:6, 1:7])
    )
    np.testing.assert_allclose(region["g_edited_region"], patch_error / b, rtol=1e-5)
    assert set(region) == set(on) | {"g_edited_region"}
    np.testing.assert_allclose(region["g_paired_edit"], on["g_paired_edit"], rtol=1e-6)
    np.testing.assert_allclose(
        region["g_loss"], on["g_loss"] + 2.0 * region["g_edited_region"], rtol=1e-5
    )
    for a, b in zip(
        jax.tree_util.tree_leaves(off_state.g_batch_stats),
        jax.tree_util.tree_leaves(on_state.g_batch_stats),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)  # the paired pass leaves G's BatchNorm buffers alone


def compiled_flops(config, batch):
    """XLA's FLOP count of the compiled train step of `config` on `batch`."""
    models = StepModels(
        generate.create_networks(config), registry.create_network("discriminator", config), config
    )
    state = create_train_state(config, jax.random.PRNGKey(0))
    frozen = load_frozen(config, jax.random.PRNGKey(1))
    step = jax.jit(functools.partial(train_step, models=models))
    return step.lower(state, batch, frozen).compile().cost_analysis()["flops"]


def test_a_zero_weight_term_leaves_the_logs_and_the_compiled_step():
    config = shrink(importlib.import_module("configs.toy_baseline").get_config())
    batch = synthetic_batch(config)
    _, with_state, with_term = run_step(config, batch)
    flops_with, weight = compiled_flops(config, batch), config.loss.g.perceptual_weight
    config.loss.g.perceptual_weight = 0.0
    _, without_state, without_term = run_step(config, batch)

    assert set(with_term) - set(without_term) == {"g_perceptual"}
    np.testing.assert_allclose(
        without_term["g_loss"],
        with_term["g_loss"] - weight * with_term["g_perceptual"],
        rtol=1e-5,
    )
    # VGG's pass over the fake images and its backward are gone, not multiplied by zero.
    assert compiled_flops(config, batch) < 0.97 * flops_with
    for a, b in zip(
        jax.tree_util.tree_leaves(with_state.d_params),
        jax.tree_util.tree_leaves(without_state.d_params),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)  # D's update comes before G's loss


# bfloat16 against float32, one step of toy_combined from the same weights and batch (measured
# 2026-12-01: loss terms within 1.1e-2 relative, gradient norms 7.9e-3; 96% of G's and 98% of
# D's first Adam updates have the float32 sign): 4 bfloat16 epsilons.
BF16_RTOL = 4 * float(jnp.finfo(jnp.bfloat16).eps)


def conv_dtypes(jaxpr):
    """The input dtypes of every convolution in a jaxpr, nested calls included."""
    found = set()
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            found.add(eqn.invars[0].aval.dtype)
        for param in eqn.params.values():
            inner = getattr(param, "jaxpr", param)
            if hasattr(inner, "eqns"):
                found |= conv_dtypes(inner)
    return found


def test_bfloat16_step_computes_g_and_d_in_bfloat16_and_stays_close_to_float32():
    config = shrink(importlib.import_module("configs.toy_combined").get_config())
    batch = synthetic_batch(config)
    _, _, full = run_step(config, batch)
    config.train.dtype = "bfloat16"
    state, new_state, mixed = run_step(config, batch)

    for name in full:
        np.testing.assert_allclose(mixed[name], full[name], rtol=BF16_RTOL, err_msg=name)
    floats = {leaf.dtype for leaf in jax.tree_util.tree_leaves(new_state) if leaf.dtype.kind == "f"}
    assert floats == {np.dtype(np.float32)}  # parameters, EMA, Adam moments, BatchNorm buffers
    models = StepModels(
        generate.create_networks(config), registry.create_network("discriminator", config), config
    )
    frozen = load_frozen(config, jax.random.PRNGKey(1))
    traced = jax.jit(functools.partial(train_step, models=models)).trace(state, batch, frozen)
    assert conv_dtypes(traced.jaxpr.jaxpr) == {np.dtype(jnp.bfloat16), np.dtype(np.float32)}
