"""Tests of the grain input pipeline on tiny toy_birds and fake cub_birds builds."""

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import grain
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image, ImageOps

from configs import default
from jaxmani import bench
from jaxmani.data import pipeline, prepare
from jaxmani.data.cub_birds import unflatten_caption_ids
from jaxmani.data.text import tokenize
from jaxmani.errors import UserError
from tests.data import fake_cub

TOY_COUNTS = {"train": 8, "test": 4}
REPO = pathlib.Path(__file__).resolve().parents[2]
BATCH_KEYS = {
    "image",
    "caption",
    "caption_length",
    "wrong_caption",
    "wrong_caption_length",
    "class_id",
    "wrong_class_id",
    "valid",
}
EDIT_KEYS = {"edit_image", "edit_caption", "edit_caption_length"}
GROUND_TRUTH_KEYS = {"part_masks", "attributes", "edit_attributes"}


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory) -> str:
    """A toy_birds/64 build with 8 train and 4 test examples."""
    root = str(tmp_path_factory.mktemp("toy"))
    prepare.prepare_dataset("toy_birds", root, "64", num_examples=TOY_COUNTS)
    return root


@pytest.fixture(scope="module")
def cub_dir(tmp_path_factory) -> str:
    """A cub_birds build of the fake data/birds layout (8 train, 4 test images)."""
    root = tmp_path_factory.mktemp("cub")
    fake = fake_cub.make_fake_cub(root / "birds")
    prepare.prepare_dataset("cub_birds", str(root / "tfds"), manual_dir=str(fake.root))
    return str(root / "tfds")


def make_config(name: str = "toy_birds", size: int = 64, words: int = 6, batch: int = 4):
    """The default config shrunk to a tiny dataset: S = size, T = words, global batch `batch`."""
    config = default.get_config()
    config.data.name = name
    config.data.builder_config = "64" if name == "toy_birds" else ""
    config.data.image_size = size
    config.data.words_num = words
    config.train.batch_size = batch
    return config


def host_batches(config, data_dir: str, count: int, split: str = "train", **kwargs) -> list[dict]:
    """The first `count` batches of one host's pipeline (single host unless kwargs say)."""
    kwargs = {"process_index": 0, "process_count": 1, "train": True} | kwargs
    ds = pipeline.create_host_dataset(config, split, data_dir=data_dir, **kwargs)
    iterator = iter(ds)
    return [next(iterator) for _ in range(count)]


def read_source(name: str, data_dir: str, split: str, config: str | None = None) -> list[dict]:
    """All examples of a split in source order, fully decoded by TFDS."""
    kwargs = {"config": config} if config else {}
    source = tfds.data_source(
        name, data_dir=data_dir, split=split, download=False, builder_kwargs=kwargs
    )
    return [source[i] for i in range(len(source))]


def is_subsequence(short: np.ndarray, long: np.ndarray) -> bool:
    """Whether `short` is `long` with some elements left out (order kept)."""
    remaining = iter(long.tolist())
    return all(value in remaining for value in short.tolist())


def reference_image(pixels: np.ndarray, size: int, x: int, y: int, flip: bool) -> np.ndarray:
    """Upstream get_imgs with PIL: Resize(int(S*76/64)) on the shorter side, crop, mirror."""
    image = Image.fromarray(pixels)
    width, height = image.size
    short = int(size * 76 / 64)
    if width <= height:
        resized = image.resize((short, int(short * height / width)), Image.Resampling.BILINEAR)
    else:
        resized = image.resize((int(short * width / height), short), Image.Resampling.BILINEAR)
    cropped = resized.crop((x, y, x + size, y + size))
    if flip:
        cropped = ImageOps.mirror(cropped)
    values = np.asarray(cropped).astype(np.float32)
    return (values / np.float32(255) - np.float32(0.5)) / np.float32(0.5)


def upstream_draws(seed: int, size: int) -> tuple[int, int, bool]:
    """The flip, x and y that preprocess_example draws first from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    flip = rng.random() > 0.5
    x, y = rng.integers(0, int(size * 76 / 64) - size, size=2)
    return int(x), int(y), bool(flip)


def synthetic_table(counts: list[int], length: int = 9) -> pipeline.CaptionTable:
    """Captions whose ids spell (example, slot): id = 1000 * example + 100 * slot + position."""
    examples = []
    for i, count in enumerate(counts):
        captions = [[1000 * i + 100 * s + k + 1 for k in range(length)] for s in range(count)]
        examples.append(
            {
                "caption_ids": np.array([v for c in captions for v in c], np.int64),
                "caption_lengths": np.full(count, length, np.int64),
                "class_id": 7 * i + 3,
            }
        )
    return pipeline.build_caption_table(examples, None)


def test_toy_batch_keys_shapes_dtypes_and_ranges(toy_dir):
    config = make_config(words=6)
    batch = host_batches(config, toy_dir, 1)[0]
    assert set(batch) == BATCH_KEYS | {"mask"}
    assert batch["image"].shape == (4, 64, 64, 3) and batch["image"].dtype == np.float32
    assert batch["mask"].shape == (4, 64, 64, 1) and batch["mask"].dtype == np.float32
    for key in ("caption", "wrong_caption"):
        assert batch[key].shape == (4, 6) and batch[key].dtype == np.int32
    for key in ("caption_length", "wrong_caption_length", "class_id", "wrong_class_id"):
        assert batch[key].shape == (4,) and batch[key].dtype == np.int32
    assert -1.0 <= batch["image"].min() < 0.0 < batch["image"].max() <= 1.0
    assert batch["mask"].min() == 0.0 and batch["mask"].max() == 1.0
    for key in ("caption", "wrong_caption"):
        positions = np.arange(6)[None, :]
        lengths = batch[f"{key}_length"][:, None]
        assert np.all((batch[key] > 0) == (positions < lengths))
    assert np.all(batch["caption_length"] == 6)  # toy captions are longer than 6 words


def test_paired_edit_training_batches_carry_the_edit_but_no_ground_truth(toy_dir):
    config = make_config(words=30)
    batch = host_batches(config, toy_dir, 1, edits=True)[0]
    assert set(batch) == BATCH_KEYS | {"mask"} | EDIT_KEYS
    examples = read_source("toy_birds", toy_dir, "train", "64")
    vocabulary = pipeline.read_vocabulary(prepare.make_builder("toy_birds", toy_dir, "64"))
    rows = {tuple(vocabulary.encode(tokenize(e["edit_caption"].decode()))): e for e in examples}
    for row in range(4):
        edit = tuple(batch["edit_caption"][row, : batch["edit_caption_length"][row]].tolist())
        assert edit in rows  # every toy caption fits in 30 words
    changed = np.any(batch["image"] != batch["edit_image"], axis=-1)
    assert changed.any() and np.all(batch["mask"][..., 0][changed] < 1.0 - 1e-3)


def test_paired_edit_training_needs_a_dataset_with_edits(cub_dir):
    config = make_config("cub_birds", size=32, words=6)
    config.loss.g.paired_edit_weight = 1.0
    with pytest.raises(UserError, match=r"paired_edit_weight=1\.0: dataset 'cub_birds' has no"):
        host_batches(config, cub_dir, 1, edits=True)


def test_cub_batch_has_no_mask_and_right_captions(cub_dir):
    config = make_config("cub_birds", size=32, words=6)
    examples = read_source("cub_birds", cub_dir, "test")
    batch = host_batches(config, cub_dir, 1, "test", train=False)[0]
    assert set(batch) == BATCH_KEYS
    assert batch["image"].shape == (4, 32, 32, 3)
    for row, example in enumerate(examples):
        captions = unflatten_caption_ids(example["caption_ids"], example["caption_lengths"])
        caption = batch["caption"][row, : batch["caption_length"][row]]
        assert any(is_subsequence(caption, c) for c in captions)
        assert batch["class_id"][row] == example["class_id"]


def test_toy_rows_follow_the_source_order_without_shuffling(toy_dir):
    config = make_config(words=40)
    vocabulary = prepare.load_vocabulary("toy_birds", toy_dir, "64")
    examples = read_source("toy_birds", toy_dir, "test", "64")
    batch = host_batches(config, toy_dir, 1, "test", train=False)[0]
    assert set(batch) == BATCH_KEYS | {"mask"} | EDIT_KEYS | GROUND_TRUTH_KEYS
    # The parts tile the bird (1 - mask); resizing and cropping are linear, so this holds after.
    np.testing.assert_allclose(batch["part_masks"].sum(-1), 1 - batch["mask"][..., 0], atol=1e-5)
    for row, example in enumerate(examples):
        assert batch["class_id"][row] == example["class_id"]
        for key in ("attributes", "edit_attributes"):
            np.testing.assert_array_equal(batch[key][row], example[key])
        captions = [vocabulary.encode(tokenize(c.decode())) for c in example["captions"]]
        caption = batch["caption"][row, : batch["caption_length"][row]].tolist()
        assert caption in captions  # words_num 40 keeps whole captions
        edit = vocabulary.encode(tokenize(example["edit_caption"].decode()))
        assert batch["edit_caption"][row, : batch["edit_caption_length"][row]].tolist() == edit
        wrong = batch["wrong_caption"][row, : batch["wrong_caption_length"][row]].tolist()
        owners = [
            e["class_id"]
            for e in examples
            if wrong in [vocabulary.encode(tokenize(c.decode())) for c in e["captions"]]
        ]
        assert batch["wrong_class_id"][row] in owners


@pytest.mark.parametrize("seed", range(6))
def test_image_transform_equals_pil_reference_for_the_drawn_crop(seed):
    pixels = np.random.default_rng(100 + seed).integers(0, 256, (30 + 7 * seed, 45, 3), np.uint8)
    config = make_config(size=32)
    row = pipeline.preprocess_example(
        {"image": pixels},
        np.random.default_rng(seed),
        index=0,
        captions=synthetic_table([1]),
        config=config,
    )
    x, y, flip = upstream_draws(seed, 32)
    assert row["image"].dtype == np.uint8
    image = pipeline.normalize_batch({"image": row["image"][None]})["image"][0]
    np.testing.assert_array_equal(image, reference_image(pixels, 32, x, y, flip))


def test_crop_draws_cover_the_upstream_ranges():
    draws = [pipeline.sample_crop(np.random.default_rng(s), 256) for s in range(400)]
    xs, ys, flips = zip(*draws, strict=True)
    assert min(xs) == min(ys) == 0 and max(xs) == max(ys) == 47  # randint(0, 48)
    assert 0.4 < np.mean(flips) < 0.6


def preprocess_at_48(example: dict, seed: int) -> dict:
    """One example through preprocess_example at 48x48 with a generator seeded by `seed`."""
    return pipeline.preprocess_example(
        example,
        np.random.default_rng(seed),
        index=0,
        captions=synthetic_table([1]),
        config=make_config(size=48),
    )


def test_image_transform_matches_torchvision(toy_dir):
    transforms = pytest.importorskip("torchvision.transforms")
    example = read_source("toy_birds", toy_dir, "train", "64")[0]
    crop = pytest.importorskip("torchvision.transforms.functional").crop
    for seed in range(4):
        x, y, flip = upstream_draws(seed, 48)
        image = transforms.Resize(int(48 * 76 / 64))(Image.fromarray(example["image"]))
        image = crop(image, y, x, 48, 48)
        if flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        normalize = transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
        expected = normalize(transforms.ToTensor()(image)).numpy().transpose(1, 2, 0)
        row = preprocess_at_48(example, seed)
        image = pipeline.normalize_batch({"image": row["image"][None]})["image"][0]
        np.testing.assert_allclose(image, expected, rtol=0, atol=1e-6)


def test_mask_is_the_float_resize_with_the_image_crop(toy_dir):
    example = read_source("toy_birds", toy_dir, "train", "64")[1]
    for seed in range(4):
        row = preprocess_at_48(example, seed)
        x, y, flip = upstream_draws(seed, 48)
        mask = Image.fromarray(example["mask"].astype(np.float32), mode="F")
        expected = mask.resize((57, 57), Image.Resampling.BILINEAR).crop((x, y, x + 48, y + 48))
        expected = np.asarray(ImageOps.mirror(expected) if flip else expected)
        np.testing.assert_array_equal(row["mask"][..., 0], expected)


def test_mask_is_one_only_where_the_edit_leaves_pixels_unchanged(toy_dir):
    config = make_config()
    batch = host_batches(config, toy_dir, 1, "test", train=False)[0]
    changed = np.any(batch["image"] != batch["edit_image"], axis=-1)
    mask = batch["mask"][..., 0]
    assert changed.sum() > 100
    assert np.all(mask[changed] < 1.0 - 1e-3)  # the edit recolours bird pixels only
    background = mask == 1.0
    assert background.mean() > 0.2
    assert not np.any(changed & background)
    bird = mask == 0.0
    assert np.any(changed & bird)


def test_fit_caption_pads_short_and_subsamples_long_in_order():
    rng = np.random.default_rng(0)
    caption, length = pipeline.fit_caption(np.array([4, 9, 2]), 5, rng)
    assert caption.tolist() == [4, 9, 2, 0, 0] and length == 3
    long = np.arange(11, 41)
    seen = set()
    for _ in range(200):
        caption, length = pipeline.fit_caption(long, 18, rng)
        assert length == 18 and caption.dtype == np.int32
        assert np.all(np.diff(caption) > 0)  # distinct and in the caption's order
        assert set(caption.tolist()) <= set(long.tolist())
        seen |= set(caption.tolist())
    assert seen == set(long.tolist())  # not first-18 truncation


def test_wrong_caption_comes_from_the_same_slot():
    table = synthetic_table([10, 10, 10, 3, 10, 10])
    slots_seen, wrong_seen = set(), set()
    for seed in range(60):
        row = pipeline.preprocess_example(
            {"image": np.zeros((8, 8, 3), np.uint8)},
            np.random.default_rng(seed),
            index=3,
            captions=table,
            config=make_config(size=8, words=9),
        )
        draws = np.random.default_rng(seed)
        draws.random(), draws.integers(0, 1, size=2)  # flip, x, y at S = 8
        slot = int(draws.integers(10))
        own, wrong = row["caption"][0], row["wrong_caption"][0]
        assert own // 1000 == 3 and row["class_id"] == 24
        assert own // 100 % 10 == slot % 3  # example 3 has three captions
        wrong_index, wrong_slot = wrong // 1000, wrong // 100 % 10
        assert row["wrong_class_id"] == 7 * wrong_index + 3
        assert wrong_slot == (slot % 3 if wrong_index == 3 else slot)
        slots_seen.add(wrong_slot)
        wrong_seen.add(wrong_index)
    assert wrong_seen == set(range(6)) and len(slots_seen) == 10


def test_same_seed_same_batches_and_new_epochs_reshuffle(toy_dir):
    config = make_config()
    first = host_batches(config, toy_dir, 4)
    again = host_batches(config, toy_dir, 4)
    for a, b in zip(first, again, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    config.seed = 1
    other = host_batches(config, toy_dir, 1)[0]
    assert not np.array_equal(other["image"], first[0]["image"])
    class_ids = sorted(e["class_id"] for e in read_source("toy_birds", toy_dir, "train", "64"))
    epochs = [np.concatenate([b["class_id"] for b in first[i : i + 2]]) for i in (0, 2)]
    for epoch in epochs:
        assert sorted(epoch.tolist()) == class_ids  # each epoch is a permutation
    assert epochs[0].tolist() != epochs[1].tolist()
    images = [np.concatenate([b["image"] for b in first[i : i + 2]]) for i in (0, 2)]
    order = [np.argsort(epoch, kind="stable") for epoch in epochs]
    assert not np.array_equal(images[0][order[0]], images[1][order[1]])


def test_restored_iterator_continues_like_an_uninterrupted_one(toy_dir):
    config = make_config()
    ds = pipeline.create_host_dataset(
        config, "train", data_dir=toy_dir, process_index=0, process_count=1
    )
    iterator = iter(ds)
    for _ in range(3):
        next(iterator)
    state = json.loads(json.dumps(iterator.get_state()))
    expected = [next(iterator) for _ in range(3)]
    restored = iter(
        pipeline.create_host_dataset(
            config, "train", data_dir=toy_dir, process_index=0, process_count=1
        )
    )
    restored.set_state(state)
    for want in expected:
        got = next(restored)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_shard_for_host_gives_contiguous_blocks_and_pads_the_end():
    stream = grain.MapDataset.range(10).seed(3).shuffle().repeat().map(lambda i: {"i": i})
    shards = [[row["i"] for row in pipeline.shard_for_host(stream, h, 2, 2)[:6]] for h in (0, 1)]
    first = [row["i"] for row in stream[:12]]
    assert shards == [first[0:2] + first[4:6] + first[8:10], first[2:4] + first[6:8] + first[10:]]
    finite = grain.MapDataset.range(11).map(lambda i: {"i": i})
    parts = [
        [(r["i"], bool(r["valid"])) for r in pipeline.shard_for_host(finite, h, 2, 3)]
        for h in (0, 1)
    ]
    rows = [(i, True) for i in range(11)] + [(10, False)]
    assert parts == [rows[0:3] + rows[6:9], rows[3:6] + rows[9:12]]


def test_two_hosts_split_the_single_host_batches(toy_dir):
    config = make_config(batch=4)
    single = host_batches(config, toy_dir, 2)
    hosts = [host_batches(config, toy_dir, 2, process_index=i, process_count=2) for i in (0, 1)]
    for step in range(2):
        for host in (0, 1):
            assert len(hosts[host][step]["image"]) == 2
            for key, value in hosts[host][step].items():
                np.testing.assert_array_equal(value, single[step][key][2 * host : 2 * host + 2])


def test_unprepared_dataset_names_the_prepare_command(tmp_path):
    with pytest.raises(UserError, match="toy_birds") as error:
        host_batches(make_config(), str(tmp_path), 1)
    assert str(tmp_path) in str(error.value)
    assert "jaxmani prepare --config.data.name=toy_birds" in str(error.value)


def test_batch_size_must_split_over_processes(toy_dir):
    with pytest.raises(UserError, match="divisible"):
        host_batches(make_config(batch=3), toy_dir, 1, process_count=2)


GLOBAL_BATCH_SCRIPT = textwrap.dedent(
    """
    import jax
    import numpy as np

    from jaxmani.data.pipeline import to_global_batch

    assert jax.device_count() == 8
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
    batch = {
        "image": np.arange(8 * 2 * 2 * 3, dtype=np.float32).reshape(8, 2, 2, 3),
        "caption_length": np.arange(8, dtype=np.int32) * 3,
    }
    arrays = to_global_batch(batch, mesh)
    for key, value in batch.items():
        array = arrays[key]
        assert array.shape == value.shape and array.dtype == value.dtype
        assert array.sharding.spec == jax.sharding.PartitionSpec("data")
        np.testing.assert_array_equal(np.asarray(array), value)
        devices = set()
        for shard in array.addressable_shards:
            assert shard.data.shape[0] == 1
            np.testing.assert_array_equal(np.asarray(shard.data), value[shard.index])
            devices.add(shard.device)
        assert len(devices) == 8
    print("global batch ok")
    """
)


def test_to_global_batch_shards_rows_over_eight_devices():
    env = os.environ | {
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", GLOBAL_BATCH_SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "global batch ok" in result.stdout


def test_bench_input_reports_images_per_second(toy_dir):
    line = bench.bench_input(make_config(), toy_dir, 3)
    assert re.fullmatch(r"input: \d+ images/s per host \(64 x 64, batch 4, 0 workers\)", line)
