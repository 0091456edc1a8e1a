"""Builds the registered TFDS datasets offline (array_record) and reads their vocabulary back."""

import contextlib
import importlib
import io
import os
import pathlib
import shutil
import sys
import tempfile
from collections.abc import Iterator

import tensorflow_datasets as tfds
from absl import logging

from jaxmani.data.text import Vocabulary
from jaxmani.errors import UserError
from jaxmani.masks.fcn import EXPORT_COMMAND
from jaxmani.progress import stage

DATASET_MODULES: dict[str, str] = {
    "toy_birds": "jaxmani.data.toy_birds",
    "cub_birds": "jaxmani.data.cub_birds",
}
FILE_FORMAT = "array_record"
FCN_MASK_CONFIG = "fcn_mask"


def builder_class(name: str) -> type[tfds.core.DatasetBuilder]:
    """Imports the module registered for dataset `name` and returns its TFDS builder class."""
    if name not in DATASET_MODULES:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {sorted(DATASET_MODULES)}")
    importlib.import_module(DATASET_MODULES[name])
    return tfds.builder_cls(name)


def make_builder(
    name: str, data_dir: str, builder_config: str | None = None, **kwargs
) -> tfds.core.DatasetBuilder:
    """Instantiates the builder of `name` in `data_dir`, checking the config name first.

    `builder_config=None` selects the builder's default config; extra keyword arguments go to the
    builder's constructor.
    """
    check_builder_config(name, builder_config)
    # Before a dataset is built, TFDS looks for its metadata on GCS through a tempfile.mkdtemp()
    # that it never removes (empty offline); give it a scratch temp dir of ours.
    saved = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="jaxmani-tfds-") as scratch:
        tempfile.tempdir = scratch
        try:
            return builder_class(name)(data_dir=data_dir, config=builder_config, **kwargs)
        finally:
            tempfile.tempdir = saved


def check_builder_config(name: str, builder_config: str | None) -> None:
    """Raises ValueError unless `builder_config` (None: the default) is a config of `name`."""
    configs = [config.name for config in builder_class(name).BUILDER_CONFIGS]
    if builder_config is not None and builder_config not in configs:
        raise ValueError(
            f"unknown config {builder_config!r} for dataset {name!r}; known configs: {configs}"
        )


def fcn_builder_config(name: str, builder_config: str | None, fcn_onnx: str) -> str:
    """The config that stores FCN masks for dataset `name`; ValueError when it cannot be built."""
    configs = [config.name for config in builder_class(name).BUILDER_CONFIGS]
    if FCN_MASK_CONFIG not in configs:
        raise ValueError(
            f"dataset {name!r} does not support FCN masks (configs {configs}); drop fcn_onnx"
        )
    if builder_config not in (None, FCN_MASK_CONFIG):
        raise ValueError(
            f"fcn_onnx needs the {FCN_MASK_CONFIG!r} config of {name!r}, got {builder_config!r}"
        )
    if not pathlib.Path(fcn_onnx).is_file():
        raise ValueError(
            f"fcn_onnx: FCN ONNX graph {fcn_onnx} not found; export it with "
            f"`{EXPORT_COMMAND.format(path=fcn_onnx)}`"
        )
    return FCN_MASK_CONFIG


def check_manual_dir(name: str, manual_dir: str | None) -> None:
    """Refuses, in one line, a manual directory that lacks the inputs of dataset `name`.

    The dataset's module lists what it needs in `check_layout(manual_dir)` (FileNotFoundError).
    """
    if manual_dir is None:
        raise UserError(
            f"dataset {name!r} is built from files you download: pass --manual_dir=<directory> "
            "(the README's 'Real CUB data' lists what goes in it)"
        )
    try:
        importlib.import_module(DATASET_MODULES[name]).check_layout(pathlib.Path(manual_dir))
    except FileNotFoundError as e:
        absent = "" if os.path.isdir(manual_dir) else " (it does not exist)"
        raise UserError(f"{e}{absent}") from e


def missing(paths: list[pathlib.Path]) -> list[pathlib.Path]:
    """The paths that do not exist yet."""
    return [path for path in paths if not path.exists()]


@contextlib.contextmanager
def removed_on_failure(paths: list[pathlib.Path]) -> Iterator[None]:
    """Deletes `paths` (directories a build created) when the block raises, Ctrl-C included."""
    try:
        yield
    except BaseException:
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)
        raise


@contextlib.contextmanager
def quiet_unless_verbose() -> Iterator[None]:
    """Shows TFDS's progress bars on a terminal only (in a file or pipe they write cursor codes)
    and the banners it prints only when absl logs at INFO (--verbosity)."""
    tfds.display_progress_bar(sys.stderr.isatty())
    if logging.level_info():
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def prepare_dataset(
    name: str,
    data_dir: str,
    builder_config: str | None = None,
    manual_dir: str | None = None,
    num_examples: dict[str, int] | None = None,
    fcn_onnx: str | None = None,
) -> str:
    """Builds dataset `name` into `data_dir` without downloading anything; returns its directory.

    TFDS writes into a temporary `incomplete.*` directory and renames it only when every split is
    written, so a build that fails (or is killed) never leaves a directory TFDS would read; an
    already complete dataset is reused as is; the directories a failed or interrupted build created
    are removed again. `num_examples` (split -> count, e.g. for tests) is passed to builders that
    accept it; `manual_dir` holds the inputs of manual datasets, checked before anything is built.
    `fcn_onnx` (the FCN-ResNet101 ONNX graph) selects the dataset's `fcn_mask` config, which
    stores precomputed FCN background masks; datasets without that config refuse it.
    """
    extra: dict[str, object] = {} if num_examples is None else {"num_examples": num_examples}
    if fcn_onnx is not None:
        builder_config = fcn_builder_config(name, builder_config, fcn_onnx)
        extra["fcn_onnx"] = fcn_onnx
    if builder_class(name).MANUAL_DOWNLOAD_INSTRUCTIONS:
        check_manual_dir(name, manual_dir)
    root = pathlib.Path(data_dir)
    created = missing([root, root / name, root / "downloads"])
    with removed_on_failure(created):
        builder = make_builder(name, data_dir, builder_config, **extra)
        if builder.is_prepared():
            return os.fspath(builder.data_dir)
        version_dir = pathlib.Path(builder.data_dir)
        created += missing([version_dir.parent, version_dir])
        download = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
        bars = sys.stderr.isatty()
        building = stage("prepare", f"building {name} in {version_dir}", heartbeat=not bars)
        with building, quiet_unless_verbose():
            builder.download_and_prepare(file_format=FILE_FORMAT, download_config=download)
    return os.fspath(builder.data_dir)


def load_vocabulary(name: str, data_dir: str, builder_config: str | None = None) -> Vocabulary:
    """Reads the vocabulary a prepared dataset stores in its DatasetInfo metadata."""
    builder = make_builder(name, data_dir, builder_config)
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"dataset {name!r} is not prepared in {data_dir!r}; run `jaxmani prepare` first"
        )
    metadata = builder.info.metadata or {}
    if "vocabulary" not in metadata:
        raise KeyError(f"dataset {name!r} in {builder.data_dir} stores no vocabulary metadata")
    return Vocabulary(tuple(metadata["vocabulary"]))
