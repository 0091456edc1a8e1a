"""`jaxmani train` and `jaxmani info --workdir` as commands: overrides reach the step."""

import json
import os

from tests.test_cli import jaxmani


def test_override_reaches_the_step_and_info_fingerprints(tmp_path, toy_data_dir):
    workdir = str(tmp_path / "run")
    code, out, err = jaxmani(
        "train",
        "--config=configs/tiny.py",
        f"--config.data.data_dir={toy_data_dir}",
        "--config.model.text.vocab_size=0",
        "--config.train.num_steps=1",
        "--config.train.log_every=2",
        "--config.train.checkpoint_every=2",
        "--config.train.sample_every=4",
        "--config.loss.g.mask_weight=25",
        f"--workdir={workdir}",
    )
    assert code == 0, err
    assert out.strip().endswith(f"{workdir}: step 1")
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["loss"]["g"]["mask_weight"] == 25
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        assert "train/g_mask" in json.loads(f.readline())
    code, out, _ = jaxmani("info", f"--workdir={workdir}")
    assert code == 0
    step, digest = out.strip().splitlines()
    assert step == "step 1"
    assert digest.startswith("fingerprint ") and len(digest.split()[1]) == 64
