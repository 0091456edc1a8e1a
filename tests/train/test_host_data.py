"""Per-host data order: the same global batches on 1, 2 and 4 hosts, and one-pass evaluation."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxmani.data import pipeline, prepare
from tests.conftest import train_config

SPLIT_SIZE = 13
GLOBAL_BATCH = 4
HOST_COUNTS = (1, 2, 4)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    """toy_birds 64 whose train split has 13 examples."""
    root = str(tmp_path_factory.mktemp("toy13"))
    prepare.prepare_dataset("toy_birds", root, "64", num_examples={"train": SPLIT_SIZE, "test": 1})
    return root


def global_batches(data_dir, hosts, count=None, *, train, batch=GLOBAL_BATCH, state=None):
    """The first `count` (all if None) global batches: every host's batch, in process order."""
    config = train_config(data_dir)
    iterators = []
    for index in range(hosts):
        ds = pipeline.create_host_dataset(
            config,
            "train",
            process_index=index,
            process_count=hosts,
            train=train,
            batch_size=batch,
        )
        iterators.append(iter(ds))
        if state is not None:
            iterators[-1].set_state(state[index])
    per_host = [list(it) if count is None else [next(it) for _ in range(count)] for it in iterators]
    merged = [
        {key: np.concatenate([host[i][key] for host in per_host]) for key in per_host[0][i]}
        for i in range(len(per_host[0]))
    ]
    return merged, iterators


def assert_same_rows(got, want):
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_evaluation_covers_every_example_once_on_any_host_count(data_dir):
    (reference,), _ = global_batches(data_dir, 1, train=False, batch=SPLIT_SIZE)
    assert reference["valid"].all() and len(reference["valid"]) == SPLIT_SIZE
    source = tfds.data_source(
        "toy_birds", data_dir=data_dir, split="train", builder_kwargs={"config": "64"}
    )
    expected_classes = [source[i]["class_id"] for i in range(SPLIT_SIZE)]
    assert reference["class_id"].tolist() == expected_classes
    for hosts in HOST_COUNTS:
        batches, _ = global_batches(data_dir, hosts, train=False)
        assert [len(b["valid"]) for b in batches] == [GLOBAL_BATCH] * 4
        valid = np.concatenate([b["valid"] for b in batches])
        assert valid.tolist() == [True] * SPLIT_SIZE + [False] * 3
        rows = {key: np.concatenate([b[key] for b in batches]) for key in reference}
        assert_same_rows({key: value[:SPLIT_SIZE] for key, value in rows.items()}, reference)


def test_training_batches_and_resume_are_the_same_on_any_host_count(data_dir):
    reference, _ = global_batches(data_dir, 1, 5, train=True)
    epoch = np.concatenate([b["class_id"] for b in reference])[:SPLIT_SIZE]
    source = tfds.data_source(
        "toy_birds", data_dir=data_dir, split="train", builder_kwargs={"config": "64"}
    )
    assert sorted(epoch.tolist()) == sorted(source[i]["class_id"] for i in range(SPLIT_SIZE))
    for hosts in HOST_COUNTS[1:]:
        batches, iterators = global_batches(data_dir, hosts, 3, train=True)
        for got, want in zip(batches, reference[:3], strict=True):
            assert_same_rows(got, want)
        state = [json.loads(json.dumps(it.get_state())) for it in iterators]
        resumed, _ = global_batches(data_dir, hosts, 2, train=True, state=state)
        for got, want in zip(resumed, reference[3:], strict=True):
            assert_same_rows(got, want)
