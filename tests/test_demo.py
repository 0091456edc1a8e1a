"""The demo runs prepare, pretrain, train and evaluate on one workdir, and a rerun reuses them."""

import json
import os

import pytest

from configs import tiny, toy_demo, toy_demo_baseline
from jaxmani import cli, demo
from jaxmani.evaluate import report, sweep
from tests.conftest import TOY_COUNTS


def demo_test_config():
    """configs/tiny.py with two DAMSM and two GAN steps, with the demo's paired-edit terms."""
    config = tiny.get_config()
    config.loss.g.paired_edit_weight = toy_demo.PAIRED_EDIT_WEIGHT
    config.loss.g.edited_region_weight = toy_demo.EDITED_REGION_WEIGHT
    config.model.text.vocab_size = 0
    config.pretrain.num_steps = 2
    config.pretrain.batch_size = 2
    config.train.num_steps = 2
    config.train.checkpoint_every = 2
    config.evaluate.sweep_images = 4
    return config


def test_the_demo_config_is_the_combined_method_with_short_budgets():
    config = toy_demo.get_config()
    assert config.loss.g.mask_weight == 25.0 and config.loss.d.sad_kernel == 9
    assert config.train.num_steps <= 1200 and config.pretrain.num_steps <= 600
    assert config.optim.ema_decay == 0.99
    assert config.loss.g.paired_edit_weight > 0 and config.optim.g.lr == 1e-3
    assert config.loss.g.edited_region_weight > 0


def test_the_cli_refuses_overrides_of_exactly_the_fields_the_demo_sets():
    config = toy_demo.get_config()
    config.data.name = "cub_birds"
    placed = demo.demo_config(config, "w")
    changed = {
        f"{group}.{name}"
        for group in ("data", "pretrained")
        for name in config[group]
        if config[group][name] != placed[group][name]
    }
    assert changed == set(cli.DEMO_FIXED_FIELDS)


@pytest.mark.usefixtures("fast_compilation")
def test_demo_trains_evaluates_and_a_rerun_reuses_the_finished_stages(tmp_path, capsys):
    workdir = str(tmp_path)
    out = demo.run_demo(demo_test_config(), workdir, num_examples=TOY_COUNTS)
    assert out == os.path.join(workdir, "train", "eval", "2")
    for name in ("report.md", "metrics.json", "edit_grid.png", sweep.SWEEP_FILE):
        assert os.path.isfile(os.path.join(out, name)), name
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)["metrics"]
    assert 0.0 <= metrics["part_colour_accuracy"] <= 1.0
    for name in demo.ENCODER_FILES:
        assert os.path.isfile(os.path.join(workdir, "damsm", name))
    status = capsys.readouterr().err
    lines = [line for line in status.splitlines() if line.startswith("demo: ")]
    stages = [line for line in lines if line.split()[1].endswith("/4")]
    assert [line.split()[1] for line in stages] == ["1/4", "2/4", "3/4", "4/4"]
    assert "pretraining the DAMSM encoders" in stages[1]
    results = lines[lines.index(stages[1]) + 1].split()
    assert results[1::2] == ["test/damsm_loss", "test/top1_retrieval", "test/chance"] + [
        f"test/colour_cosine_{name}" for name in ("min", "median", "max")
    ]
    ending = lines[-1].split()
    assert ending[1::2] == demo.result_names()
    assert [float(v) for v in ending[2::2]] == [round(metrics[n], 4) for n in ending[1::2]]

    demo.run_demo(demo_test_config(), workdir, num_examples=TOY_COUNTS)
    status = capsys.readouterr().err
    assert "demo: 2/4 DAMSM encoders already in " in status
    assert "pretrain step" not in status


def test_the_demo_baseline_is_the_demo_without_the_papers_methods():
    demo_config, baseline = toy_demo.get_config(), toy_demo_baseline.get_config()
    assert report.method_of(demo_config) == "mask_pretrained+sad9+paired_edit"
    assert report.method_of(baseline) == report.PAIRED_EDIT
    baseline.loss.g.mask_weight = demo_config.loss.g.mask_weight
    baseline.loss.d.sad_weight = demo_config.loss.d.sad_weight
    assert baseline.to_dict() == demo_config.to_dict()
