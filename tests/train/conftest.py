"""The training tests compile with tests/conftest.py's `fast_compilation`."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def training_compilation(fast_compilation):
    """Every training test compiles with few XLA optimisations and the shared cache."""
    yield
