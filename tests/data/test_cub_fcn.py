"""Tests of the cub_birds `fcn_mask` config and of prepare_dataset's `fcn_onnx` argument."""

import os
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxmani.data import cub_birds, prepare
from jaxmani.masks.fcn import FcnMasker
from tests.data import fake_cub
from tests.masks.test_fcn import assert_matches_oracle, save_red_graph


@pytest.fixture(scope="module")
def red_graph(tmp_path_factory) -> pathlib.Path:
    """The tiny 21-class graph that calls red pixels "bird"."""
    return save_red_graph(tmp_path_factory.mktemp("graphs") / "red.onnx")


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> fake_cub.FakeCub:
    """A fake data/birds directory."""
    return fake_cub.make_fake_cub(tmp_path_factory.mktemp("birds"))


@pytest.fixture(scope="module")
def built(tmp_path_factory, fake, red_graph) -> pathlib.Path:
    """cub_birds/fcn_mask built from the fake layout, masks in batches of 3 crops."""
    data_dir = tmp_path_factory.mktemp("tfds")
    builder = cub_birds.CubBirds(
        data_dir=data_dir, config="fcn_mask", fcn_onnx=red_graph, fcn_batch_size=3
    )
    config = tfds.download.DownloadConfig(manual_dir=os.fspath(fake.root))
    builder.download_and_prepare(download_config=config)
    return data_dir


def read_split(data_dir: pathlib.Path, split: str) -> list[dict]:
    """All examples of a split of cub_birds/fcn_mask, through tfds.data_source."""
    source = tfds.data_source("cub_birds/fcn_mask", data_dir=data_dir)[split]
    return [source[i] for i in range(len(source))]


def test_stored_mask_is_the_masker_output_on_the_stored_crop(built, fake, red_graph):
    masker = FcnMasker(red_graph)
    values = []
    for split in cub_birds.SPLITS:
        examples = read_split(built, split)
        assert [e["id"].decode() for e in examples] == fake.keys[split]
        for example in examples:
            mask, image = example["mask"], example["image"]
            assert mask.dtype == np.uint8 and mask.shape == image.shape[:2]
            np.testing.assert_array_equal(mask, masker.background_masks([image])[0])
            assert_matches_oracle(mask, image)
            values.append(mask.ravel())
    assert set(np.unique(np.concatenate(values))) == {0, 1}


def test_fcn_config_keeps_the_default_features(built):
    default = cub_birds.CubBirds(data_dir=built).info.features
    with_mask = cub_birds.CubBirds(data_dir=built, config="fcn_mask").info.features
    assert "mask" not in default
    assert set(with_mask.keys()) == {*default.keys(), "mask"}
    example = read_split(built, "test")[0]
    for name in default:
        assert name in example


def test_fcn_config_without_the_graph_names_the_argument(tmp_path, fake):
    builder = cub_birds.CubBirds(data_dir=tmp_path / "tfds", config="fcn_mask")
    config = tfds.download.DownloadConfig(manual_dir=os.fspath(fake.root))
    with pytest.raises(ValueError, match="fcn_onnx"):
        builder.download_and_prepare(download_config=config)
    fake_cub.assert_nothing_written(tmp_path / "tfds")


def test_prepare_dataset_selects_the_fcn_config(tmp_path, fake, red_graph):
    path = prepare.prepare_dataset(
        "cub_birds", str(tmp_path), manual_dir=str(fake.root), fcn_onnx=str(red_graph)
    )
    assert path == str(tmp_path / "cub_birds" / "fcn_mask" / "1.0.0")
    source = tfds.data_source("cub_birds/fcn_mask", data_dir=tmp_path)["train"]
    example = source[0]
    assert_matches_oracle(example["mask"], example["image"])


def test_prepare_dataset_refuses_a_dataset_without_fcn_masks(tmp_path, red_graph):
    with pytest.raises(ValueError, match="'toy_birds' does not support FCN masks"):
        prepare.prepare_dataset("toy_birds", str(tmp_path), fcn_onnx=str(red_graph))


def test_prepare_dataset_refuses_another_config(tmp_path, red_graph):
    with pytest.raises(ValueError, match=r"needs the 'fcn_mask' config.*'default'"):
        prepare.prepare_dataset("cub_birds", str(tmp_path), "default", fcn_onnx=str(red_graph))


def test_prepare_dataset_names_a_missing_graph(tmp_path, fake):
    missing = tmp_path / "absent.onnx"
    with pytest.raises(ValueError, match=r"fcn_onnx: FCN ONNX graph .*absent\.onnx not found"):
        prepare.prepare_dataset(
            "cub_birds", str(tmp_path / "tfds"), manual_dir=str(fake.root), fcn_onnx=str(missing)
        )
    assert not (tmp_path / "tfds").exists()
