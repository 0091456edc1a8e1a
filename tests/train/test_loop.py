"""`jaxmani train` end to end on a tiny config: logs, samples, checkpoints and exact resume."""

import collections
import json
import logging
import os

import jax
import numpy as np
import pytest
from PIL import Image

from configs import default
from jaxmani.errors import UserError
from jaxmani.train import checkpoint, loop
from tests.conftest import train_config


def read_metrics(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


LOWERING_EVENT = "/jax/core/compile/jaxpr_to_mlir_module_duration"
COMPILER_LOGGER = "jax._src.compiler"  # Logs "Persistent compilation cache hit for ..." (debug).


def test_the_compilation_cache_defaults_to_the_workdir(tmp_path):
    """Unset, it becomes <workdir>/xla_cache; a directory already set (here the tests') stays."""
    name = "jax_compilation_cache_dir"
    saved = jax.config.values[name]
    assert saved and loop.use_workdir_compilation_cache(str(tmp_path)) == saved
    jax.config.update(name, "")
    try:
        path = loop.use_workdir_compilation_cache(str(tmp_path))
    finally:
        jax.config.update(name, saved)
    assert path == str(tmp_path / loop.XLA_CACHE)


def test_train_writes_logs_samples_and_checkpoints(tmp_path, toy_data_dir):
    """Also: over 4 steps (2 logs, 2 checkpoints, a sample) the step and the sampler are lowered
    once each; a recompilation inside the run would lower them again."""
    workdir = str(tmp_path / "run")
    lowered = collections.Counter()

    def count(event, _seconds, fun_name="", **_):
        if event == LOWERING_EVENT:
            lowered[fun_name] += 1

    jax.monitoring.register_event_duration_secs_listener(count)
    try:
        state = loop.train(train_config(toy_data_dir), workdir)
    finally:
        jax.monitoring.unregister_event_duration_listener(count)
    assert lowered["jit(train_step)"] == 1 and lowered["jit(sample)"] == 1, lowered
    assert int(state.step) == 4
    records = read_metrics(workdir)
    assert [r["step"] for r in records] == [2, 4]
    for record in records:
        assert all(np.isfinite(v) for v in record.values())
        assert {"train/d_loss", "train/g_loss", "train/g_word", "train/d_cond_wrong"} <= set(record)
    sample = np.asarray(Image.open(os.path.join(workdir, "samples", "samples_00000004.png")))
    assert sample.shape == (2 * 64, 3 * 64, 3)
    assert sorted(os.listdir(checkpoint.checkpoint_dir(workdir))) == ["2", "4"]
    with open(os.path.join(workdir, "vocabulary.json")) as f:
        assert json.load(f)[0] == "<end>"
    assert os.listdir(os.path.join(workdir, "tb"))


def test_resumed_run_equals_uninterrupted_run(tmp_path, toy_data_dir, caplog):
    """Also: the resumed run loads its step from the persistent compilation cache."""
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    loop.train(train_config(toy_data_dir), straight)
    loop.train(train_config(toy_data_dir, **{"train.num_steps": 2}), resumed)
    assert checkpoint.latest_fingerprint(resumed)[0] == 2
    caplog.set_level(logging.DEBUG, logger=COMPILER_LOGGER)
    loop.train(train_config(toy_data_dir), resumed)
    hits = [r.getMessage() for r in caplog.records if r.name == COMPILER_LOGGER]
    assert any("cache hit for 'jit_train_step'" in m for m in hits)  # Loaded, not compiled.
    step, digest = checkpoint.latest_fingerprint(straight)
    assert (step, digest) == checkpoint.latest_fingerprint(resumed)
    assert read_metrics(straight)[-1] == read_metrics(resumed)[-1]


def test_workdir_of_another_config_is_refused(tmp_path, toy_data_dir):
    workdir = str(tmp_path / "run")
    loop.train(train_config(toy_data_dir, **{"train.num_steps": 2}), workdir)
    other = train_config(toy_data_dir, **{"model.g.gf_dim": 8})
    with pytest.raises(UserError, match=r"config\.model\.g\.gf_dim: 4 there, 8 here"):
        loop.train(other, workdir)


def test_non_finite_loss_stops_and_names_the_term(tmp_path, toy_data_dir):
    config = train_config(toy_data_dir, **{"optim.d.lr": 1e30, "optim.g.lr": 1e30})
    with pytest.raises(UserError, match=r"step 2: \w+ is (nan|inf)"):
        loop.train(config, str(tmp_path / "run"))


def test_missing_dataset_names_the_prepare_command(tmp_path):
    with pytest.raises(UserError, match="jaxmani prepare"):
        loop.train(train_config(str(tmp_path / "nothing")), str(tmp_path / "run"))


def test_an_older_workdir_config_reads_with_the_defaults_of_newer_fields(tmp_path):
    saved = json.loads(default.get_config().to_json())
    del saved["evaluate"], saved["train"]["dtype"]
    saved["train"]["batch_size"] = 3
    (tmp_path / "config.json").write_text(json.dumps(saved))
    config = checkpoint.read_run_config(str(tmp_path))
    assert config.train.dtype == "float32" and config.train.batch_size == 3
    assert config.evaluate == default.get_config().evaluate
