"""`jaxmani train` end to end on a tiny config: logs, samples, checkpoints and exact resume."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from jaxmani.errors import UserError
from jaxmani.train import checkpoint, loop
from tests.conftest import train_config


def read_metrics(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_train_writes_logs_samples_and_checkpoints(tmp_path, toy_data_dir):
    workdir = str(tmp_path / "run")
    state = loop.train(train_config(toy_data_dir), workdir)
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


def test_resumed_run_equals_uninterrupted_run(tmp_path, toy_data_dir):
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    loop.train(train_config(toy_data_dir), straight)
    loop.train(train_config(toy_data_dir, **{"train.num_steps": 2}), resumed)
    assert checkpoint.latest_fingerprint(resumed)[0] == 2
    loop.train(train_config(toy_data_dir), resumed)
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
