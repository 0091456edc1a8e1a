"""A tiny trained workdir for the editing tests (the training tests' toy_birds and config)."""

import pytest

from jaxmani.edit.manipulator import Manipulator
from jaxmani.train import loop
from tests.conftest import train_config


@pytest.fixture(scope="session")
def workdir(tmp_path_factory, toy_data_dir, fast_compilation) -> str:
    """A workdir of the tiny config trained for one step on toy_birds."""
    path = str(tmp_path_factory.mktemp("edit_run"))
    loop.train(train_config(toy_data_dir, **{"train.num_steps": 1}), path)
    return path


@pytest.fixture(scope="session")
def manipulator(workdir) -> Manipulator:
    """The workdir's Manipulator, shared so that each shape compiles once per session."""
    return Manipulator.from_workdir(workdir)
