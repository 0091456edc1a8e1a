"""The packaged configs: each `configs/<name>.py` with a `get_config()` is selectable by name."""

import pathlib

DIRECTORY = pathlib.Path(__file__).parent


def names() -> tuple[str, ...]:
    """Names of the packaged configs, sorted (the modules that define get_config)."""
    return tuple(
        sorted(
            path.stem
            for path in DIRECTORY.glob("*.py")
            if "\ndef get_config(" in path.read_text(encoding="utf-8")
        )
    )


def packaged_path(value: str) -> pathlib.Path | None:
    """The packaged config that `value` names (`bird`, `bird.py` or `configs/bird.py`), if any."""
    path = pathlib.PurePosixPath(value)
    if path.parent not in (pathlib.PurePosixPath("."), pathlib.PurePosixPath("configs")):
        return None
    name = path.name.removesuffix(".py")
    return DIRECTORY / f"{name}.py" if name in names() else None
