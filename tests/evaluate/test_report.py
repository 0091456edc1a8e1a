"""`write_report`: the paper's table layout, grouping by method, real evaluated workdirs."""

import json
import os

import pytest
from PIL import Image

from configs import toy_baseline, toy_combined, toy_gm, toy_hm, toy_mask, toy_nsl, toy_sad5
from jaxmani.errors import UserError
from jaxmani.evaluate import report

pytestmark = pytest.mark.usefixtures("fast_compilation")  # The tiny runs: few XLA passes.


@pytest.mark.parametrize(
    ("module", "method"),
    [
        (toy_baseline, "baseline"),
        (toy_hm, "mask_hm"),
        (toy_mask, "mask_pretrained"),
        (toy_nsl, "nsl"),
        (toy_gm, "gm"),
        (toy_sad5, "sad5"),
        (toy_combined, "mask_pretrained+sad9"),
    ],
)
def test_method_of_the_paper_configs(module, method):
    assert report.method_of(json.loads(module.get_config().to_json())) == method


def fake_workdir(root, name, module, values):
    workdir = os.path.join(root, name)
    os.makedirs(os.path.join(workdir, "eval", "7"))
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(module.get_config().to_json())
    record = {"dataset": "toy_birds/64", "image_size": 64, "metrics": values}
    with open(os.path.join(workdir, "eval", "7", "metrics.json"), "w") as f:
        json.dump(record, f)
    return workdir


def test_tables_follow_the_paper_layout(tmp_path):
    root = str(tmp_path)
    workdirs = [
        fake_workdir(
            root,
            "base",
            toy_baseline,
            {
                "mask_score_hm": 400.0,
                "mask_score_gt": 500.0,
                "sharpness": 10.0,
                "sharpness_real": 14.0,
            },
        ),
        fake_workdir(root, "mask_a", toy_mask, {"mask_score_gt": 200.0, "sharpness": 9.0}),
        fake_workdir(root, "mask_b", toy_mask, {"mask_score_gt": 300.0, "sharpness": 9.0}),
        fake_workdir(root, "sad5", toy_sad5, {"sharpness": 12.5, "fid": 3.25}),
    ]
    out = report.write_report(workdirs, os.path.join(root, "out", "report.md"))
    with open(out) as f:
        text = f.read()
    assert "| HM with Lightweight | 400 |  | 389.94 |  |" in text
    assert "| Pre-trained model with ours | 250 ± 50 (n=2) | 50.00% | 267.11 | 48.46% |" in text
    assert "| Original Image | - | 14 | - | 13.719 |" in text
    assert "| w SAD, Kernel=5 | 3.25 | 12.5 | 4.068 | 10.965 |" in text
    assert "| ManiGAN | - | - | 7.12 | 5.745 |" in text
    assert "toy_birds at 64x64 is a procedural" in text
    for index in range(1, 5):
        chart = os.path.join(root, "out", f"report_table{index}.png")
        assert Image.open(chart).width > 0
        assert f"(report_table{index}.png)" in text


def test_report_on_evaluated_workdirs(evaluated_workdirs, tmp_path):
    out = report.write_report(evaluated_workdirs, str(tmp_path / "study.md"))
    with open(out) as f:
        text = f.read()
    assert "Pre-trained model with ours" in text and "(n=2)" in text
    assert all(w in text for w in evaluated_workdirs)


def test_unevaluated_workdir_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="jaxmani evaluate --workdir="):
        report.write_report([str(tmp_path)], str(tmp_path / "r.md"))
