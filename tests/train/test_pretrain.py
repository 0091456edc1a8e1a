"""`jaxmani pretrain` on a tiny config: the DAMSM loss falls and loadable encoders are written."""

import json
import os

import numpy as np

from jaxmani import params_io
from jaxmani.train import loop, pretrain
from tests.conftest import train_config


def test_pretrain_learns_and_writes_loadable_encoders(tmp_path, toy_data_dir):
    config = train_config(
        toy_data_dir,
        **{"pretrain.batch_size": 4, "pretrain.num_steps": 30, "pretrain.log_every": 10},
    )
    workdir = str(tmp_path / "damsm")
    results = pretrain.pretrain(config, workdir)
    assert set(results) == {"test/damsm_loss", "test/top1_retrieval", "test/chance"}
    assert 0.0 <= results["test/top1_retrieval"] <= 1.0
    assert results["test/chance"] == 0.25
    with open(os.path.join(workdir, "pretrain_metrics.jsonl")) as f:
        losses = [json.loads(line)["loss"] for line in f]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    with open(os.path.join(workdir, "vocabulary.json")) as f:
        vocabulary = tuple(json.load(f))
    resolved = loop.resolve_vocabulary(config, vocabulary)
    for name in pretrain.ENCODERS:
        params_io.load_variables(os.path.join(workdir, f"{name}.msgpack"), name, resolved)


def test_train_reads_the_pretrained_encoders(tmp_path, toy_data_dir):
    damsm = str(tmp_path / "damsm")
    config = train_config(toy_data_dir, **{"pretrain.batch_size": 4, "pretrain.num_steps": 2})
    pretrain.pretrain(config, damsm)
    config.pretrained.text_encoder = os.path.join(damsm, "text_encoder.msgpack")
    config.pretrained.image_encoder = os.path.join(damsm, "image_encoder.msgpack")
    config.train.num_steps = 2
    state = loop.train(config, str(tmp_path / "run"))
    assert int(state.step) == 2
