"""launch/ablation.sh: the commands it runs, with a stand-in `jaxmani` that records them."""

import os
import pathlib
import stat
import subprocess

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "launch" / "ablation.sh"
TABLE_ROWS = ("toy_hm", "toy_mask", "toy_nsl", "toy_gm", "toy_sad5", "toy_sad9")

# Records each call; `pretrain` writes the encoder the script checks for, `evaluate` the metrics.
FAKE_JAXMANI = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
for arg in "$@"; do
  case "$arg" in --workdir=*) workdir=${arg#--workdir=} ;; esac
done
case "$1" in
  pretrain) mkdir -p "$workdir" && touch "$workdir/image_encoder.msgpack" ;;
  evaluate) mkdir -p "$workdir/eval/$STEPS" && touch "$workdir/eval/$STEPS/metrics.json" ;;
esac
"""


def run_script(tmp_path, out, **extra_env):
    """Runs the script with the fake jaxmani first on PATH; returns the recorded calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "jaxmani"
    fake.write_text(FAKE_JAXMANI)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "calls.txt"
    calls.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CALLS": str(calls),
        "STEPS": "7",
        "SEEDS": "0 1",
        "EMA_DECAY": "0.9",
        "IMAGE_POOL": "mean",
        **extra_env,
    }
    subprocess.run(["bash", str(SCRIPT), str(out)], env=env, check=True, timeout=60)
    return calls.read_text().splitlines()


def test_every_table_row_then_the_key_comparison_over_seeds_then_the_report(tmp_path):
    out = tmp_path / "study"
    calls = run_script(tmp_path, out)
    assert calls[0].startswith("prepare --config=toy_baseline")
    assert calls[1].startswith("pretrain --config=toy_baseline")
    assert "--config.model.image.pool=mean" in calls[1]
    trains = [c for c in calls if c.startswith("train ")]
    expected = [(row, "0") for row in TABLE_ROWS]
    expected += [(config, seed) for seed in "01" for config in ("toy_baseline", "toy_combined")]
    assert trained_runs(calls) == expected
    for call in trains:
        assert "--config.train.num_steps=7" in call and "--config.optim.ema_decay=0.9" in call
        assert "--config.model.image.pool=mean" in call
        assert f"--config.pretrained.image_encoder={out}/damsm/image_encoder.msgpack" in call
    assert len([c for c in calls if c.startswith("evaluate ")]) == len(expected)
    report = calls[-1].split()
    assert report[0] == "report" and report[-1] == f"--out={out}/report.md"
    assert report[1:-1] == [f"{out}/{config}-seed{seed}" for config, seed in expected]


def trained_runs(calls):
    """(config, seed) of each recorded train call, in order."""
    return [
        (c.split()[1].removeprefix("--config="), c.split("--config.seed=")[1].split()[0])
        for c in calls
        if c.startswith("train ")
    ]


def test_rows_and_key_choose_the_demo_scale_comparison(tmp_path):
    out = tmp_path / "demo_study"
    calls = run_script(tmp_path, out, ROWS="", KEY="toy_demo_baseline toy_demo")
    expected = [(config, seed) for seed in "01" for config in ("toy_demo_baseline", "toy_demo")]
    assert trained_runs(calls) == expected
    assert calls[-1].split()[1:-1] == [f"{out}/{config}-seed{seed}" for config, seed in expected]


def test_a_rerun_skips_pretraining_and_finished_evaluations(tmp_path):
    out = tmp_path / "study"
    run_script(tmp_path, out)
    calls = run_script(tmp_path, out)
    assert not [c for c in calls if c.startswith(("pretrain ", "evaluate "))]
    assert len([c for c in calls if c.startswith("train ")]) == 10  # train resumes itself.
