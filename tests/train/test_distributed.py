"""A 2-process jax.distributed run on loopback trains exactly like one process with 2 devices."""

import os
import pathlib
import socket
import subprocess
import sys

from jaxmani.train import checkpoint

REPO = pathlib.Path(__file__).resolve().parents[2]


def train_args(data_dir: str, workdir: str, *extra: str) -> list[str]:
    """`jaxmani train` arguments equal to tests/conftest.py's train_config(data_dir)."""
    return [
        "train",
        "--config=configs/tiny.py",
        f"--config.data.data_dir={data_dir}",
        "--config.model.text.vocab_size=0",
        "--config.train.num_steps=4",
        "--config.train.log_every=2",
        "--config.train.checkpoint_every=2",
        "--config.train.sample_every=4",
        "--config.loss.g.mask_weight=25",
        f"--workdir={workdir}",
        *extra,
    ]


def start_python(args: list[str], devices: int, env: dict[str, str] | None = None):
    """`python ARGS` with `devices` forced CPU devices (and `env` added), not waited for."""
    forced = {
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
    }
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=REPO,
        env=os.environ | forced | (env or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> str:
    """Waits for a started command; asserts exit status 0 and returns its stdout."""
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return out


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_reach_the_fingerprint_of_one(tmp_path, toy_data_dir):
    single, multi = str(tmp_path / "single"), str(tmp_path / "multi")
    port = free_port()
    joined = [
        f"--config.parallel.coordinator=127.0.0.1:{port}",
        "--config.parallel.num_processes=2",
    ]
    processes = [
        start_python(
            [
                "-m",
                "jaxmani.cli",
                *train_args(toy_data_dir, multi, *joined, f"--config.parallel.process_id={i}"),
            ],
            devices=1,
        )
        for i in (0, 1)
    ]
    outputs = [finish(process) for process in processes]
    assert outputs[0].strip().endswith(f"{multi}: step 4")
    finish(start_python(["-m", "jaxmani.cli", *train_args(toy_data_dir, single)], devices=2))
    assert sorted(os.listdir(checkpoint.checkpoint_dir(multi))) == ["2", "4"]
    assert checkpoint.latest_fingerprint(multi) == checkpoint.latest_fingerprint(single)
    with open(os.path.join(single, "metrics.jsonl")) as a, open(f"{multi}/metrics.jsonl") as b:
        assert a.read() == b.read()
