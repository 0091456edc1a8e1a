"""`jaxmani pretrain` on a tiny config: the DAMSM loss falls and loadable encoders are written."""

import json
import os

import jax
import numpy as np
import pytest

from jaxmani import params_io
from jaxmani.data import toy_birds
from jaxmani.data.text import Vocabulary
from jaxmani.models import registry
from jaxmani.train import loop, pretrain
from tests.conftest import train_config


def test_pretrain_learns_and_writes_loadable_encoders(tmp_path, toy_data_dir):
    config = train_config(
        toy_data_dir,
        **{"pretrain.batch_size": 4, "pretrain.num_steps": 30, "pretrain.log_every": 10},
    )
    workdir = str(tmp_path / "damsm")
    results = pretrain.pretrain(config, workdir)
    cosines = ("test/colour_cosine_min", "test/colour_cosine_median", "test/colour_cosine_max")
    assert set(results) == {"test/damsm_loss", "test/top1_retrieval", "test/chance", *cosines}
    low, median, high = (results[name] for name in cosines)
    assert -1.0 <= low <= median <= high < 1.0 - 1e-6
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


def colour_probe_setup(toy_data_dir):
    """The tiny config, its text encoder module, seeded params and the dataset's vocabulary."""
    config = loop.resolve_vocabulary(
        train_config(toy_data_dir), loop.dataset_vocabulary(train_config(toy_data_dir))
    )
    modules = {"text_encoder": registry.create_network("text_encoder", config)}
    variables = registry.init_variables("text_encoder", config, jax.random.PRNGKey(0))
    vocabulary = Vocabulary(loop.dataset_vocabulary(config))
    return config, modules, {"text_encoder": variables["params"]}, vocabulary


def test_colour_cosines_are_one_when_every_colour_word_has_the_same_embedding(toy_data_dir):
    config, modules, params, vocabulary = colour_probe_setup(toy_data_dir)
    table = np.array(params["text_encoder"]["encoder"]["embedding"])
    ids = [vocabulary.encode([c])[0] for c in toy_birds.COLOR_NAMES if vocabulary.encode([c])]
    assert len(ids) >= 2
    table[ids] = table[ids[0]]
    same = {"text_encoder": {**params["text_encoder"], "encoder": {"embedding": table}}}
    result = pretrain.colour_cosines(config, modules, same, vocabulary)
    assert result["test/colour_cosine_min"] == pytest.approx(1.0, abs=1e-6)
    assert result["test/colour_cosine_max"] == pytest.approx(1.0, abs=1e-6)
    distinct = pretrain.colour_cosines(config, modules, params, vocabulary)
    assert distinct["test/colour_cosine_min"] < 1.0 - 1e-4


def test_colour_cosines_need_two_known_colours(toy_data_dir):
    config, modules, params, vocabulary = colour_probe_setup(toy_data_dir)
    others = toy_birds.COLOR_NAMES[1:]
    one_colour = Vocabulary(tuple(w for w in vocabulary.words if w not in others))
    assert pretrain.colour_cosines(config, modules, params, one_colour) == {}
