"""Tests of the toy_birds renderer, its TFDS builder and the prepare entry point."""

import pathlib
import tempfile

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxmani.data import prepare, toy_birds
from jaxmani.data.text import Vocabulary, tokenize

COUNTS = {"train": 3, "test": 4}
SIDE = 64
PARTS = toy_birds.PART_NAMES
NOUNS = {
    "body": "body",
    "breast": "body",
    "belly": "body",
    "wings": "wing",
    "head": "head",
    "crown": "crown",
    "tail": "tail",
    "beak": "beak",
    "bill": "beak",
    "eyes": "eye",
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    """A tiny toy_birds/64 build shared by the read-back tests."""
    root = str(tmp_path_factory.mktemp("toy"))
    prepare.prepare_dataset("toy_birds", root, "64", num_examples=COUNTS)
    return root


def read_split(data_dir: str, split: str) -> list[dict]:
    """All examples of a built split, ordered by id."""
    source = tfds.data_source("toy_birds", data_dir=data_dir, split=split)
    return sorted((source[i] for i in range(len(source))), key=lambda ex: ex["id"])


def parse_colors(caption: str) -> dict[str, str]:
    """Part -> colour pairs named in a caption; fails on a colour word tied to no part."""
    tokens = tokenize(caption)
    named = {}
    used = set()
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token in toy_birds.COLOR_NAMES and i not in used:
            assert following in NOUNS or following == "bird", caption
            part = NOUNS.get(following, "body")
            named.setdefault(part, token)
            assert named[part] == token, caption
            used.add(i)
        elif token in NOUNS and following in ("is", "are"):
            assert tokens[i + 2] in toy_birds.COLOR_NAMES, caption
            named.setdefault(NOUNS[token], tokens[i + 2])
            assert named[NOUNS[token]] == tokens[i + 2], caption
            used.add(i + 2)
    return named


def part_color(image: np.ndarray, part_mask: np.ndarray) -> str:
    """Name of the palette colour nearest to the median colour of a part."""
    median = np.median(image[part_mask.astype(bool)].astype(np.float64), axis=0)
    palette = np.array(list(toy_birds.PALETTE.values()), dtype=np.float64)
    return toy_birds.COLOR_NAMES[int(np.argmin(((palette - median) ** 2).sum(-1)))]


def test_features_have_documented_shapes_and_values(data_dir):
    for split, count in COUNTS.items():
        examples = read_split(data_dir, split)
        assert [ex["id"].decode() for ex in examples] == [f"{split}_{i:05d}" for i in range(count)]
        for ex in examples:
            for key in ("image", "edit_image"):
                assert ex[key].shape == (SIDE, SIDE, 3) and ex[key].dtype == np.uint8
            assert ex["mask"].shape == (SIDE, SIDE) and ex["mask"].dtype == np.uint8
            assert ex["part_masks"].shape == (SIDE, SIDE, len(PARTS))
            assert ex["part_masks"].dtype == np.uint8
            assert len(ex["captions"]) == toy_birds.NUM_CAPTIONS
            for key in ("attributes", "edit_attributes"):
                assert ex[key].shape == (len(PARTS),) and ex[key].dtype == np.int64
                assert ex[key].min() >= 0 and ex[key].max() < len(toy_birds.COLOR_NAMES)
            body, wing, head = ex["attributes"][:3]
            assert ex["class_id"] == body * 121 + wing * 11 + head


def test_mask_is_one_exactly_on_background(data_dir):
    for ex in read_split(data_dir, "train") + read_split(data_dir, "test"):
        parts = ex["part_masks"]
        assert set(np.unique(ex["mask"])) == {0, 1} and set(np.unique(parts)) <= {0, 1}
        assert parts.sum(-1).max() == 1
        np.testing.assert_array_equal(ex["mask"], 1 - parts.sum(-1))
        assert (parts.sum((0, 1)) > 0).all()


def test_stored_examples_are_the_seeded_renders(data_dir):
    for split in COUNTS:
        for index, ex in enumerate(read_split(data_dir, split)):
            expected = toy_birds.generate_example(toy_birds.example_seed(split, index), SIDE)
            for key in ("image", "edit_image", "mask", "part_masks", "attributes"):
                np.testing.assert_array_equal(ex[key], expected[key])
            assert [c.decode() for c in ex["captions"]] == expected["captions"]
            assert ex["edit_caption"].decode() == expected["edit_caption"]


def test_same_seed_same_bytes_and_different_ids_differ(data_dir, tmp_path):
    again = prepare.prepare_dataset("toy_birds", str(tmp_path), "64", num_examples=COUNTS)
    first = pathlib.Path(data_dir, "toy_birds", "64", "1.0.0")
    records = sorted(path.name for path in first.glob("*.array_record*"))
    assert len(records) == 2
    for name in records:
        assert (first / name).read_bytes() == pathlib.Path(again, name).read_bytes()
    examples = read_split(data_dir, "train") + read_split(data_dir, "test")
    for i, a in enumerate(examples):
        for b in examples[i + 1 :]:
            assert not np.array_equal(a["image"], b["image"])
            assert a["captions"] != b["captions"]


def test_captions_name_the_attribute_colours():
    for index in range(60):
        seed = toy_birds.example_seed("train", index)
        spec = toy_birds.sample_bird(seed)
        captions, edit_caption = toy_birds.write_captions(seed, spec)
        truth = {p: toy_birds.COLOR_NAMES[c] for p, c in zip(PARTS, spec.colors, strict=True)}
        edit = {p: toy_birds.COLOR_NAMES[c] for p, c in zip(PARTS, spec.edit_colors, strict=True)}
        mentioned = set()
        for caption in captions:
            named = parse_colors(caption)
            assert len(named) >= 2 and named == {p: truth[p] for p in named}, caption
            mentioned |= set(named)
        assert mentioned == set(PARTS)
        named = parse_colors(edit_caption)
        assert named == {p: edit[p] for p in named}
        assert {p for p in PARTS if truth[p] != edit[p]} <= set(named)


def test_token_parts_mark_each_part_noun_and_its_colour_word():
    for index in range(60):
        seed = toy_birds.example_seed("test", index)
        spec = toy_birds.sample_bird(seed)
        captions, edit_caption = toy_birds.write_captions(seed, spec)
        for caption, colours in [(c, spec.colors) for c in captions] + [
            (edit_caption, spec.edit_colors)
        ]:
            tokens = tokenize(caption)
            parts = toy_birds.token_parts(tokens)
            assert len(parts) == len(tokens)
            named = parse_colors(caption)
            marked = {PARTS[p] for p in parts if p >= 0}
            assert marked == set(named), caption
            for token, part in zip(tokens, parts, strict=True):
                if token in NOUNS:
                    assert part == PARTS.index(NOUNS[token]), caption
                elif token in toy_birds.COLOR_NAMES:
                    assert toy_birds.COLOR_NAMES[colours[part]] == token, caption
                else:
                    assert part == -1, (caption, token)


def test_stored_captions_parse_to_stored_attributes(data_dir):
    for ex in read_split(data_dir, "test"):
        truth = {p: toy_birds.COLOR_NAMES[c] for p, c in zip(PARTS, ex["attributes"], strict=True)}
        for caption in ex["captions"]:
            named = parse_colors(caption.decode())
            assert named == {p: truth[p] for p in named}


def test_edit_image_recolours_only_the_edited_parts(data_dir):
    for split in COUNTS:
        for index, ex in enumerate(read_split(data_dir, split)):
            seed = toy_birds.example_seed(split, index)
            background = toy_birds.render_background(seed, toy_birds.sample_bird(seed).scene, SIDE)
            outside = ex["mask"].astype(bool)
            np.testing.assert_array_equal(ex["image"][outside], background[outside])
            np.testing.assert_array_equal(ex["edit_image"][outside], background[outside])
            check_edit(ex)


def check_edit(ex: dict) -> None:
    """The edit changes every pixel of the edited parts, nothing else, to the right colours."""
    edited = ex["attributes"] != ex["edit_attributes"]
    assert 1 <= edited.sum() <= 3
    changed = (ex["image"] != ex["edit_image"]).any(-1)
    np.testing.assert_array_equal(changed, ex["part_masks"][..., edited].any(-1))
    for p, part in enumerate(PARTS):
        mask = ex["part_masks"][..., p]
        assert part_color(ex["image"], mask) == toy_birds.COLOR_NAMES[ex["attributes"][p]]
        assert (
            part_color(ex["edit_image"], mask) == toy_birds.COLOR_NAMES[ex["edit_attributes"][p]]
        ), part


def test_vocabulary_round_trips_and_covers_every_caption(data_dir):
    vocabulary = prepare.load_vocabulary("toy_birds", data_dir, "64")
    captions = []
    for split in COUNTS:
        for ex in read_split(data_dir, split):
            captions += [tokenize(c.decode()) for c in [*ex["captions"], ex["edit_caption"]]]
    assert vocabulary == Vocabulary.build(captions)
    for tokens in captions:
        assert vocabulary.decode(vocabulary.encode(tokens)) == tokens


def test_failed_build_leaves_no_complete_dataset(tmp_path, monkeypatch):
    calls = []
    render = toy_birds.generate_example

    def failing(seed: int, size: int) -> dict:
        calls.append(seed)
        if len(calls) == 3:
            raise RuntimeError("renderer broke midway")
        return render(seed, size)

    monkeypatch.setattr(toy_birds, "generate_example", failing)
    with pytest.raises(RuntimeError, match="midway"):
        prepare.prepare_dataset("toy_birds", str(tmp_path), num_examples=COUNTS)
    assert len(calls) == 3
    assert not prepare.make_builder("toy_birds", str(tmp_path)).is_prepared()
    assert not list(tmp_path.rglob("dataset_info.json"))
    assert not list(tmp_path.rglob("*incomplete*"))
    with pytest.raises(FileNotFoundError):
        prepare.load_vocabulary("toy_birds", str(tmp_path))
    monkeypatch.setattr(toy_birds, "generate_example", render)
    built = prepare.prepare_dataset("toy_birds", str(tmp_path), num_examples=COUNTS)
    assert built == str(tmp_path / "toy_birds" / "64" / "1.0.0")
    assert len(tfds.data_source("toy_birds", data_dir=str(tmp_path), split="test")) == 4


def test_unknown_dataset_or_config_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="'mnist'"):
        prepare.prepare_dataset("mnist", str(tmp_path))
    with pytest.raises(ValueError, match=r"'128'.*'toy_birds'"):
        prepare.prepare_dataset("toy_birds", str(tmp_path), "128")
    assert not list(tmp_path.iterdir())


def laplacian(image: np.ndarray) -> np.ndarray:
    """Absolute 5-point Laplacian of the grey image, on interior pixels."""
    g = image.astype(np.float64).mean(-1)
    return np.abs(4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:])


def test_background_is_partly_defocused():
    seeds = [s for s in range(100) if toy_birds.sample_bird(s).scene == "foliage"][:4]
    assert len(seeds) == 4
    for seed in seeds:
        sharp = toy_birds.paint_scene(seed, "foliage", SIDE)
        background = toy_birds.render_background(seed, "foliage", SIDE)
        kept = (sharp == background).all(-1)
        assert 0.2 < kept.mean() < 0.9
        blurred = ~kept[1:-1, 1:-1]
        assert laplacian(background)[blurred].mean() < 0.6 * laplacian(sharp)[blurred].mean()


def test_larger_config_renders_the_same_bird():
    seed = toy_birds.example_seed("test", 7)
    small = toy_birds.generate_example(seed, 64)
    large = toy_birds.generate_example(seed, 256)
    assert large["image"].shape == (256, 256, 3)
    assert large["captions"] == small["captions"]
    pooled = large["mask"].reshape(64, 4, 64, 4).mean((1, 3))
    assert np.abs(pooled - small["mask"]).mean() < 0.05


def test_a_builder_of_an_unbuilt_dataset_leaves_no_temp_dir(tmp_path, monkeypatch):
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    builder = prepare.make_builder("toy_birds", str(tmp_path / "data"), "64")
    assert not builder.is_prepared()
    assert list(temp.iterdir()) == []  # TFDS's GCS-metadata mkdtemp went into our scratch dir
    assert tempfile.tempdir == str(temp)
