"""Two tiny trained workdirs, evaluated once, shared by the evaluation tests.

The modules that use them ask for tests/conftest.py's `fast_compilation` themselves.
"""

import pytest

from jaxmani.evaluate import run
from jaxmani.train import loop
from tests.conftest import train_config

EVAL_BATCH = 3  # 4 test images: one full batch and one with 2 padding rows.


def eval_config(data_dir: str, seed: int):
    """The shared tiny training config (2 steps) with the test evaluation settings."""
    config = train_config(data_dir, **{"train.num_steps": 2, "seed": seed})
    config.evaluate.batch_size = EVAL_BATCH
    config.evaluate.grid_rows = 3
    config.evaluate.sweep_images = 6
    return config


@pytest.fixture(scope="session")
def evaluated_workdirs(tmp_path_factory, toy_data_dir, fast_compilation) -> list[str]:
    """Two workdirs of the same config (seeds 0 and 1), trained 2 steps and evaluated."""
    workdirs = []
    for seed in (0, 1):
        workdir = str(tmp_path_factory.mktemp(f"run{seed}"))
        config = eval_config(toy_data_dir, seed)
        loop.train(config, workdir)
        run.evaluate_workdir(config, workdir)
        workdirs.append(workdir)
    return workdirs
