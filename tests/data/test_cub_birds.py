"""Tests of the restricted pickle reader and the cub_birds builder on a fake data/birds layout."""

import os
import pathlib
import pickle
import shlex
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from jaxmani.data import cub_birds
from jaxmani.data.safe_pickle import UnsafePickleError, load_pickle
from jaxmani.data.text import Vocabulary, tokenize
from tests.data import fake_cub

CAPTIONS = [[3, 14, 15], [9, 2, 6, 5]] * 10
BASELINE_STRUCTURES = [
    [CAPTIONS, CAPTIONS[:10], {0: "<end>", 1: "bird"}, {"<end>": 0, "bird": 1}],
    ["001.Black_footed_Albatross/Black_Footed_Albatross_0046_18", "002.Laysan_Albatross/x"],
    [1, 1, 200, 2**40, -3],
]


def py2_numpy_int64_pickle(values: list[int]) -> bytes:
    """A protocol-2 pickle of a numpy int64 array as Python 2 writes it (raw data as a str)."""
    raw = np.array(values, dtype="<i8").tobytes()

    def short_string(data: bytes) -> bytes:
        return b"U" + bytes([len(data)]) + data

    return (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"
        + short_string(b"b")
        + b"\x87R(K\x01"
        + b"K"
        + bytes([len(values)])
        + b"\x85cnumpy\ndtype\n"
        + short_string(b"i8")
        + b"K\x00K\x01\x87R(K\x03"
        + short_string(b"<")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
        + short_string(raw)
        + b"tb."
    )


class _MakeDirectory:
    """Pickles as a call to os.mkdir: loading it with pickle.load creates the directory."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


class _RunShell:
    """Pickles as a call to os.system."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def build(manual_dir: pathlib.Path, data_dir: pathlib.Path) -> cub_birds.CubBirds:
    """Builds cub_birds from `manual_dir` into `data_dir` and returns the builder."""
    builder = cub_birds.CubBirds(data_dir=data_dir)
    config = tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir))
    builder.download_and_prepare(download_config=config)
    return builder


def read_split(data_dir: pathlib.Path, split: str) -> list[dict]:
    """All examples of a split, through tfds.data_source."""
    source = tfds.data_source("cub_birds", data_dir=data_dir)[split]
    return [source[i] for i in range(len(source))]


def bird_crop_reference(path: pathlib.Path, bbox: tuple[int, int, int, int]) -> np.ndarray:
    """The crop of BASELINE_SPEC §2.2 step 5, restated with PIL on an RGB image."""
    image = Image.open(path).convert("RGB")
    x, y, w, h = bbox
    r = int(0.75 * max(w, h))
    cx, cy = int((2 * x + w) / 2), int((2 * y + h) / 2)
    box = [max(0, cx - r), max(0, cy - r), min(image.width, cx + r), min(image.height, cy + r)]
    return np.asarray(image.crop(box))


@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize("structure", BASELINE_STRUCTURES)
def test_load_pickle_reads_baseline_structures(tmp_path, protocol, structure):
    path = tmp_path / "data.pickle"
    path.write_bytes(pickle.dumps(structure, protocol=protocol))
    assert load_pickle(path) == structure


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_load_pickle_refuses_os_system_without_running_it(tmp_path, protocol):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps(_RunShell(f"mkdir {shlex.quote(str(marker))}"), protocol))
    with pytest.raises(UnsafePickleError, match=r"evil\.pickle.*system"):
        load_pickle(path)
    with pytest.raises(UnsafePickleError):
        load_pickle(path, allow_numpy=True)
    assert not marker.exists()


def test_load_pickle_latin1_python2_strings(tmp_path):
    path = tmp_path / "py2.pickle"
    path.write_bytes(b"\x80\x02](U\x04caf\xe9K\x07e.")
    assert load_pickle(path, encoding="latin1") == ["caf\xe9", 7]
    with pytest.raises(pickle.UnpicklingError, match=r"py2\.pickle"):
        load_pickle(path)


def test_load_pickle_numpy_class_ids_only_when_allowed(tmp_path):
    path = tmp_path / "class_info.pickle"
    path.write_bytes(py2_numpy_int64_pickle([1, 2, 200]))
    assert load_pickle(path, encoding="latin1", allow_numpy=True).tolist() == [1, 2, 200]
    with pytest.raises(UnsafePickleError, match=r"numpy\.core\.multiarray\._reconstruct"):
        load_pickle(path, encoding="latin1")
    with pytest.raises(pickle.UnpicklingError, match="ascii"):
        load_pickle(path, allow_numpy=True)


def test_load_pickle_truncated_names_the_file(tmp_path):
    path = tmp_path / "cut.pickle"
    path.write_bytes(pickle.dumps(BASELINE_STRUCTURES[0], protocol=2)[:40])
    with pytest.raises(pickle.UnpicklingError, match=r"cut\.pickle"):
        load_pickle(path)


def test_bird_crop_box_and_clip_closed_forms():
    assert cub_birds.bird_crop_box((10, 20, 30, 40), 100, 100) == (0, 10, 55, 70)
    assert cub_birds.bird_crop_box((50, 50, 20, 10), 64, 100) == (45, 40, 64, 70)
    assert cub_birds.bird_crop_box((3, 4, 7, 5), 100, 100) == (1, 1, 11, 11)
    assert cub_birds.clip_bbox((10, 20, 30, 40), 100, 100) == (10, 20, 30, 40)
    assert cub_birds.clip_bbox((-5, 90, 30, 40), 100, 100) == (0, 90, 25, 10)
    assert cub_birds.clip_bbox((100, 0, 30, 40), 100, 100) is None
    assert cub_birds.clip_bbox((10, 10, 0, 5), 100, 100) is None


def test_to_rgb_scales_sixteen_bit_and_keeps_rgb():
    values = np.array([[0, 257, 65535, 128, 129, 40000]], dtype=np.uint16)
    rgb = np.asarray(cub_birds.to_rgb(Image.fromarray(values)))
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 6, 3)
    np.testing.assert_array_equal(rgb[..., 1], [[0, 1, 255, 0, 1, 156]])
    image = Image.fromarray(np.arange(24, dtype=np.uint8).reshape(2, 4, 3))
    np.testing.assert_array_equal(np.asarray(cub_birds.to_rgb(image)), np.asarray(image))


def test_caption_ids_flatten_round_trip():
    captions = [[5, 1, 9], [], [7], [2, 2, 2, 2]]
    ids, lengths = cub_birds.flatten_caption_ids(captions)
    assert ids.dtype == np.int64 and lengths.tolist() == [3, 0, 1, 4]
    assert ids.tolist() == [5, 1, 9, 7, 2, 2, 2, 2]
    assert [c.tolist() for c in cub_birds.unflatten_caption_ids(ids, lengths)] == captions
    assert cub_birds.unflatten_caption_ids(np.zeros(0, np.int64), np.zeros(0, np.int64)) == []


@pytest.fixture(scope="module")
def pickle_build(tmp_path_factory):
    """A clean fake layout with captions.pickle, built once."""
    root = tmp_path_factory.mktemp("pickle_build")
    fake = fake_cub.make_fake_cub(root / "birds")
    builder = build(fake.root, root / "tfds")
    return fake, builder, root / "tfds"


def test_build_reads_back_in_filenames_order(pickle_build):
    fake, builder, data_dir = pickle_build
    for split in ("train", "test"):
        examples = read_split(data_dir, split)
        assert [e["id"].decode() for e in examples] == fake.keys[split]
        assert [e["class_id"] for e in examples] == fake.class_ids[split]
        assert [tuple(e["bbox"]) for e in examples] == [fake.bboxes[k] for k in fake.keys[split]]
    assert builder.report.written == {"train": 8, "test": 4}
    assert builder.report.converted_images == sum(m != "RGB" for m in fake.modes.values())


def test_vocabulary_and_ids_are_the_pickles(pickle_build):
    fake, _, data_dir = pickle_build
    vocabulary = cub_birds.get_vocabulary(tfds.builder("cub_birds", data_dir=data_dir).info)
    assert list(vocabulary.words) == fake.vocabulary
    for split in ("train", "test"):
        for example in read_split(data_dir, split):
            key = example["id"].decode()
            ids = cub_birds.unflatten_caption_ids(
                example["caption_ids"], example["caption_lengths"]
            )
            assert [c.tolist() for c in ids] == fake.caption_ids[key]
            texts = [caption.decode() for caption in example["captions"]]
            assert [vocabulary.encode(tokenize(t)) for t in texts] == fake.caption_ids[key]


def test_bird_crop_equals_pil_reference(pickle_build):
    fake, _, data_dir = pickle_build
    for example in read_split(data_dir, "train") + read_split(data_dir, "test"):
        key = example["id"].decode()
        image = example["image"]
        assert image.dtype == np.uint8 and image.shape[-1] == 3
        if fake.modes[key] == "I;16":
            expected = fake_cub.expected_lossless_rgb(fake.pixels[key], "I;16")
            box = cub_birds.bird_crop_box(fake.bboxes[key], expected.shape[1], expected.shape[0])
            np.testing.assert_array_equal(image, expected[box[1] : box[3], box[0] : box[2]])
            continue
        np.testing.assert_array_equal(
            image, bird_crop_reference(fake.image_path(key), fake.bboxes[key])
        )
        if fake.modes[key] in fake_cub.LOSSLESS_MODES:
            full = fake_cub.expected_lossless_rgb(fake.pixels[key], fake.modes[key])
            box = cub_birds.bird_crop_box(fake.bboxes[key], full.shape[1], full.shape[0])
            np.testing.assert_array_equal(image, full[box[1] : box[3], box[0] : box[2]])


def test_text_captions_build_the_baseline_vocabulary(tmp_path):
    fake = fake_cub.make_fake_cub(tmp_path / "birds", captions_pickle=False, seed=1)
    class_info = fake.root / "test" / "class_info.pickle"
    class_info.write_bytes(py2_numpy_int64_pickle(fake.class_ids["test"]))
    build(fake.root, tmp_path / "tfds")
    tokens = {k: [tokenize(line) for line in fake.caption_lines[k][:10]] for k in fake.all_keys()}
    expected = Vocabulary.build(c for k in fake.all_keys() for c in tokens[k])
    vocabulary = cub_birds.get_vocabulary(
        tfds.builder("cub_birds", data_dir=tmp_path / "tfds").info
    )
    assert vocabulary == expected
    assert list(vocabulary.words[1:6]) == tokens[fake.keys["train"][0]][0][:5]
    assert list(vocabulary.words) != fake.vocabulary
    for split in ("train", "test"):
        examples = read_split(tmp_path / "tfds", split)
        assert [e["class_id"] for e in examples] == fake.class_ids[split]
        for example in examples:
            key = example["id"].decode()
            ids = cub_birds.unflatten_caption_ids(
                example["caption_ids"], example["caption_lengths"]
            )
            assert [vocabulary.decode(c) for c in ids] == tokens[key]
            assert [c.decode().split() for c in example["captions"]] == tokens[key]


@pytest.fixture(scope="module")
def bad_build(tmp_path_factory):
    """A text-mode fake layout with one bad input per image, built once; also the logged lines."""
    root = tmp_path_factory.mktemp("bad_build")
    fake = fake_cub.make_fake_cub(root / "birds", captions_pickle=False, seed=2)
    train, test = fake.keys["train"], fake.keys["test"]
    data = fake.image_path(train[0]).read_bytes()
    fake.image_path(train[0]).write_bytes(data[: len(data) // 2])
    fake.image_path(train[1]).write_bytes(b"not an image at all" * 20)
    fake.image_path(train[2]).unlink()
    fake.text_path(train[3]).unlink()
    fake.text_path(train[4]).write_text("\n  \n\n")
    width = Image.open(fake.image_path(train[5])).width
    fake.bboxes[train[5]] = (width - 10, -4, 30, 20)
    del fake.bboxes[train[6]]
    fake.bboxes[test[0]] = (5, 10_000, 10, 10)
    lines = fake.caption_lines[test[1]]
    fake.text_path(test[1]).write_text("\n".join(["\u00f1\u00fc \u00df\u00e9", *lines]))
    fake.text_path(test[2]).write_text("\u00bf\u00f1?\n...\n")
    fake.write_bboxes()
    logged = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cub_birds.logging, "info", lambda *args: logged.append(args[0] % args[1:]))
        builder = build(fake.root, root / "tfds")
    return fake, builder, root / "tfds", logged


def test_bad_inputs_are_skipped_and_counted(bad_build):
    fake, builder, data_dir, logged = bad_build
    train, test = fake.keys["train"], fake.keys["test"]
    assert [e["id"].decode() for e in read_split(data_dir, "train")] == [train[5], train[7]]
    assert [e["id"].decode() for e in read_split(data_dir, "test")] == [test[1], test[3]]
    report = builder.report
    assert report.written == {"train": 2, "test": 2}
    assert (report.unreadable_images, report.missing_images) == (2, 1)
    assert report.unusable_caption_files == 2
    assert (report.missing_bboxes, report.bboxes_outside, report.clipped_bboxes) == (1, 1, 1)
    assert (report.unknown_captions, report.images_without_captions) == (3, 1)
    assert [line for line in logged if line.startswith("cub_birds:")] == [report.summary()]
    assert logged[-1] == report.summary()
    summary = "unreadable=2 missing=1 caption_file=2 no_caption=1 no_bbox=1 bbox_outside=1"
    assert summary in logged[-1]


def test_unknown_word_caption_is_dropped_and_others_kept(bad_build):
    fake, _, data_dir, _ = bad_build
    example = read_split(data_dir, "test")[0]
    texts = [c.decode() for c in example["captions"]]
    assert texts == [
        " ".join(tokenize(line)) for line in fake.caption_lines[example["id"].decode()][:10]
    ]


def test_bbox_overlapping_the_border_is_clipped(bad_build):
    fake, _, data_dir, _ = bad_build
    key = fake.keys["train"][5]
    example = read_split(data_dir, "train")[0]
    clipped = (Image.open(fake.image_path(key)).width - 10, 0, 10, 16)
    assert tuple(example["bbox"]) == clipped
    np.testing.assert_array_equal(
        example["image"], bird_crop_reference(fake.image_path(key), clipped)
    )


def test_missing_layout_lists_everything_before_writing(tmp_path):
    fake = fake_cub.make_fake_cub(tmp_path / "birds")
    (fake.root / "train" / "filenames.pickle").unlink()
    (fake.root / "captions.pickle").unlink()
    shutil.rmtree(fake.root / "text")
    shutil.rmtree(fake.root / "CUB_200_2011" / "images")
    with pytest.raises(FileNotFoundError) as error:
        build(fake.root, tmp_path / "tfds")
    message = str(error.value)
    assert str(fake.root) in message
    for item in ("train/filenames.pickle", "CUB_200_2011/images/", "captions.pickle or text/"):
        assert item in message
    assert "test/filenames.pickle" not in message
    assert "README" in message and "CUB-200-2011" in message
    fake_cub.assert_nothing_written(tmp_path / "tfds")


def test_empty_manual_dir_shows_the_layout(tmp_path):
    (tmp_path / "birds").mkdir()
    with pytest.raises(AssertionError, match=r"CUB_200_2011/bounding_boxes\.txt"):
        build(tmp_path / "birds", tmp_path / "tfds")


@pytest.mark.parametrize(
    "name", ["captions.pickle", "train/filenames.pickle", "test/class_info.pickle"]
)
def test_every_pickle_goes_through_the_restricted_unpickler(tmp_path, name):
    fake = fake_cub.make_fake_cub(tmp_path / "birds")
    marker = tmp_path / "ran"
    (fake.root / name).write_bytes(pickle.dumps(_MakeDirectory(str(marker)), protocol=2))
    with pytest.raises(UnsafePickleError, match=name.replace(".", r"\.")):
        build(fake.root, tmp_path / "tfds")
    assert not marker.exists()
    fake_cub.assert_nothing_written(tmp_path / "tfds")


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("captions.pickle", [[[1]] * 3, [], {0: "<end>"}, {"<end>": 0}], "train needs 80 captions"),
        ("captions.pickle", [[], [], {0: "<end>", 1: "a"}, {"a": 1}], "wordtoix"),
        ("train/class_info.pickle", [1, 2], "2 class ids for 8 filenames"),
        ("test/filenames.pickle", [1, 2], "list of str image keys"),
        ("test/filenames.pickle", ["a/b", "c/d", "a/b"], "more than once"),
    ],
)
def test_bad_metadata_names_the_file(tmp_path, name, value, match):
    fake = fake_cub.make_fake_cub(tmp_path / "birds")
    (fake.root / name).write_bytes(pickle.dumps(value, protocol=2))
    with pytest.raises(ValueError, match=match) as error:
        build(fake.root, tmp_path / "tfds")
    assert str(fake.root / name) in str(error.value)
    fake_cub.assert_nothing_written(tmp_path / "tfds")


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, RuntimeError])
def test_interrupted_build_leaves_no_complete_dataset(tmp_path, monkeypatch, interruption):
    fake = fake_cub.make_fake_cub(tmp_path / "birds")
    calls = []

    def read_then_fail(path):
        calls.append(path)
        if len(calls) == 10:
            raise interruption("stopped")
        return Image.open(path)

    monkeypatch.setattr(cub_birds, "read_image", read_then_fail)
    with pytest.raises(interruption):
        build(fake.root, tmp_path / "tfds")
    fake_cub.assert_nothing_written(tmp_path / "tfds")
    monkeypatch.undo()
    build(fake.root, tmp_path / "tfds")
    assert len(read_split(tmp_path / "tfds", "test")) == 4
