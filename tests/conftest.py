"""Shared by every test directory: one XLA compilation cache with few optimisations, a small
toy_birds build and the tiny training config (one definition each, so compiled steps and the
dataset are shared across directories)."""

import jax
import ml_collections
import pytest

from configs import tiny
from jaxmani.data import prepare

TOY_COUNTS = {"train": 12, "test": 4}


@pytest.fixture(scope="session")
def fast_compilation(tmp_path_factory):
    """Compiles with few XLA optimisations and caches executables across `train` calls; the
    environment passes the same settings to `jaxmani` subprocesses."""
    names = (
        "jax_disable_most_optimizations",
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
    )
    saved = {name: jax.config.values[name] for name in names}
    jax.config.update("jax_disable_most_optimizations", True)
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    environment = {name.upper(): str(jax.config.values[name]) for name in names}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        yield
    for name, value in saved.items():
        jax.config.update(name, value)


@pytest.fixture(scope="session")
def toy_data_dir(tmp_path_factory) -> str:
    """toy_birds 64 with 12 train and 4 test images."""
    root = str(tmp_path_factory.mktemp("toy"))
    prepare.prepare_dataset("toy_birds", root, "64", num_examples=TOY_COUNTS)
    return root


def train_config(data_dir: str, **overrides) -> ml_collections.ConfigDict:
    """configs/tiny.py with the mask loss on `data_dir`, logging and checkpointing every 2 steps.

    Every training test uses this config unchanged where it can, so that the persistent
    compilation cache compiles its step once per test session.
    """
    config = tiny.get_config()
    config.data.data_dir = data_dir
    config.model.text.vocab_size = 0
    config.train.num_steps = 4
    config.train.log_every = 2
    config.train.checkpoint_every = 2
    config.train.sample_every = 4
    config.loss.g.mask_weight = 25.0
    for key, value in overrides.items():
        node = config
        *path, last = key.split(".")
        for name in path:
            node = node[name]
        node[last] = value
    return config
