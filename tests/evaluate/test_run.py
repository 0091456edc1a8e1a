"""`evaluate_workdir` / `evaluate_params` end to end on tiny trained workdirs."""

import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

from jaxmani import cli, params_io
from jaxmani.data import toy_birds
from jaxmani.errors import UserError
from jaxmani.evaluate import figures, run, sweep
from tests.conftest import TOY_COUNTS
from tests.evaluate.conftest import eval_config

pytestmark = pytest.mark.usefixtures("fast_compilation")  # The tiny runs: few XLA passes.

PAPER_AND_TOY = {
    "mask_score_hm",
    "mask_score_gt",
    "sharpness",
    "sharpness_real",
    "r_precision",
    "r_precision_std",
    "mp",
    "edit_psnr",
    "edit_ssim",
    "background_change",
    "part_attention_lift",
    sweep.ACCURACY,
    sweep.UNNAMED,
    sweep.BINDING,
    *(sweep.accuracy_name(colour) for colour in sweep.SWEEP_COLOURS),
}


def read_record(out_dir):
    with open(os.path.join(out_dir, "metrics.json")) as f:
        return json.load(f)


def test_evaluate_writes_metrics_report_and_figures(evaluated_workdirs):
    out_dir = os.path.join(evaluated_workdirs[0], "eval", "2")
    record = read_record(out_dir)
    assert record["step"] == 2
    assert record["num_images"] == TOY_COUNTS["test"]  # every image once, padding not counted
    values = record["metrics"]
    assert set(values) >= PAPER_AND_TOY
    assert all(np.isfinite(v) for v in values.values())
    assert 0 <= values["r_precision"] <= 1 and 0 <= values["edit_ssim"] <= 1
    colours = [values[sweep.accuracy_name(colour)] for colour in sweep.SWEEP_COLOURS]
    assert all(0 <= v <= 1 for v in colours) and values[sweep.ACCURACY] == np.mean(colours)
    assert 0 <= values["mask_score_hm"] <= 255**2 and 0 <= values["background_change"] <= 255
    assert values["sharpness_real"] > 0 and abs(values["mp"]) <= 1
    assert record["protocol"]["r_precision_candidates"] == TOY_COUNTS["test"]
    assert set(record["skipped"]) >= {"fid", "inception_score"}
    parts = {run.edited_part_name(part) for part in toy_birds.PART_NAMES}
    unmeasured = parts - set(values)
    assert all(record["skipped"][name] == run.NOTHING_TO_MEASURE for name in unmeasured)
    assert parts & set(values), "some part is recoloured by some test edit"
    assert record["figures"] == [
        "edit_grid.png",
        "attention.png",
        "loss_curves.png",
        "caption_sweep.png",
    ]
    assert "config.pretrained.fid_inception" in record["skipped"]["fid"]
    with open(os.path.join(out_dir, "report.md")) as f:
        report = f.read()
    assert "| mask_score_hm |" in report and "![edit_grid.png](edit_grid.png)" in report
    grid = Image.open(os.path.join(out_dir, "edit_grid.png"))
    assert grid.height > 3 * 128  # three rows of enlarged 64px tiles under a header line
    for name in ("attention.png", "loss_curves.png"):
        assert Image.open(os.path.join(out_dir, name)).width > 0


def test_toy_evaluation_draws_the_caption_sweep(evaluated_workdirs):
    out_dir = os.path.join(evaluated_workdirs[0], "eval", "2")
    with open(os.path.join(out_dir, "report.md")) as f:
        assert f"![{sweep.SWEEP_FILE}]({sweep.SWEEP_FILE})" in f.read()
    with Image.open(os.path.join(out_dir, sweep.SWEEP_FILE)) as image:
        grid = np.asarray(image.convert("RGB"))
    side, top = 128, figures.LINE_HEIGHT + 4  # 64 px tiles enlarged twice, under the header
    assert grid.shape == (top + side * sweep.SWEEP_IMAGES, side * 7 + 240, 3)
    for row in range(sweep.SWEEP_IMAGES):
        tiles = grid[top + row * side : top + (row + 1) * side, : 7 * side].reshape(
            side, 7, side, 3
        )
        example = toy_birds.generate_example(toy_birds.example_seed("test", row), 64)
        np.testing.assert_array_equal(tiles[:, 0], figures.enlarge(example["image"]))
        edits = [tiles[:, column] for column in range(1, 7)]
        assert all(np.abs(e.astype(int) - edits[0]).max() > 0 for e in edits[1:])  # caption read


def test_evaluation_is_deterministic(evaluated_workdirs, toy_data_dir, tmp_path, capsys):
    workdir, again = evaluated_workdirs[0], str(tmp_path / "again")
    cli.main(["evaluate", f"--workdir={workdir}", f"--out={again}"])
    first = read_record(os.path.join(workdir, "eval", "2"))
    assert read_record(again)["metrics"] == first["metrics"]
    figures_written = "edit_grid.png, attention.png, loss_curves.png, caption_sweep.png"
    wrote = f"wrote {again}/metrics.json, {again}/report.md and figures: {figures_written}"
    assert capsys.readouterr().out.splitlines()[-1] == wrote


def test_params_files_take_the_workdir_code_path(evaluated_workdirs, toy_data_dir, tmp_path):
    workdir = evaluated_workdirs[1]
    model = run.load_workdir(None, workdir)
    paths = {}
    for name, variables in (("generator", model.generator), *model.frozen.items()):
        paths[name] = str(tmp_path / f"{name}.msgpack")
        params_io.save_variables(paths[name], name, jax.device_get(variables))
    config = eval_config(toy_data_dir, seed=1)
    out_dir = run.evaluate_params(
        config,
        str(tmp_path / "converted"),
        generator=paths["generator"],
        text_encoder=paths["text_encoder"],
        image_encoder=paths["image_encoder"],
        vgg=paths["vgg"],
        vocabulary=os.path.join(workdir, "vocabulary.json"),
    )
    converted = read_record(out_dir)
    assert converted["metrics"] == read_record(os.path.join(workdir, "eval", "2"))["metrics"]
    assert converted["source"].startswith("params file")


def test_missing_checkpoint_and_other_config_are_user_errors(
    evaluated_workdirs, toy_data_dir, tmp_path
):
    with pytest.raises(UserError, match="not a jaxmani workdir"):
        run.evaluate_workdir(None, str(tmp_path))
    other = eval_config(toy_data_dir, seed=0)
    other.model.g.gf_dim = 8
    with pytest.raises(UserError, match=r"config\.model\.g\.gf_dim: 4 there, 8 here"):
        run.evaluate_workdir(other, evaluated_workdirs[0])


def test_inception_metrics_need_their_weights_fields(toy_data_dir):
    config = eval_config(toy_data_dir, seed=0)
    skipped = run.inception_skips(config)
    assert set(skipped) == {"fid", "inception_score"}
    assert "config.pretrained.inception " in skipped["inception_score"]


def test_caption_token_parts_follow_the_words_and_skip_padding():
    words = ("<end>", "a", "red", "crown", "and", "its", "wings", "are", "blue")
    captions = np.array([[1, 2, 3, 4, 5, 6, 7, 8], [5, 6, 7, 8, 0, 0, 0, 0]])
    parts = run.caption_token_parts(words, captions, np.array([8, 4]))
    crown, wing = toy_birds.PART_NAMES.index("crown"), toy_birds.PART_NAMES.index("wing")
    np.testing.assert_array_equal(
        parts,
        [[-1, crown, crown, -1, -1, wing, -1, wing], [-1, wing, -1, wing, -1, -1, -1, -1]],
    )


def test_toy_metrics_of_the_ground_truth_edit():
    example = toy_birds.generate_example(toy_birds.example_seed("test", 3), 64)
    arrays = {k: np.asarray(v)[None] for k, v in example.items() if isinstance(v, np.ndarray)}
    target = arrays["edit_image"].astype(np.float32)
    inputs = {
        "original": arrays["image"].astype(np.float32),
        "target": target,
        "mask": arrays["mask"][..., None].astype(np.float32),
        "part_masks": arrays["part_masks"].astype(np.float32),
        "edit_attributes": arrays["edit_attributes"],
        "attributes": arrays["attributes"],
    }
    perfect = jax.device_get(run.toy_metrics({**inputs, "edit": target}))
    assert perfect["edit_ssim"][0] == pytest.approx(1.0, abs=1e-5)
    assert perfect["background_change"][0] == 0.0
    assert perfect["part_colour_accuracy"][0] == perfect["edited_part_accuracy"][0] == 1.0
    unchanged = jax.device_get(run.toy_metrics({**inputs, "edit": inputs["original"]}))
    assert unchanged["edited_part_accuracy"][0] == 0.0
    assert 0.0 < unchanged["part_colour_accuracy"][0] < 1.0
    edited = arrays["edit_attributes"][0] != arrays["attributes"][0]
    assert 0 < edited.sum() < len(toy_birds.PART_NAMES)
    for index, part in enumerate(toy_birds.PART_NAMES):
        name = run.edited_part_name(part)
        if edited[index]:
            assert perfect[name][0] == 1.0 and unchanged[name][0] == 0.0, part
        else:
            assert np.isnan(perfect[name][0]) and np.isnan(unchanged[name][0]), part
