"""Writes a small fake copy of the baseline's data/birds layout (BASELINE_SPEC §2.1) for tests."""

import dataclasses
import io
import pathlib
import pickle

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxmani.data.text import END_TOKEN, tokenize

TRAIN_CLASSES = ("001.Black_footed_Albatross", "002.Laysan_Albatross")
TEST_CLASSES = ("003.Sooty_Albatross",)
IMAGES_PER_CLASS = 4
MODES = ("RGB", "L", "CMYK", "RGBA", "I;16", "P")
LOSSLESS_MODES = ("RGBA", "I;16", "P")
UNUSED_WORD = "zygodactyl"
PALETTE = tuple((30 * i, 255 - 30 * i, 7 * i) for i in range(8))

_COLOURS = ("red", "white", "black", "grey", "yellow", "brown", "blue", "orange")
_PARTS = ("crown", "wings", "belly", "beak", "tail", "breast", "nape", "throat")
_SHAPES = ("small", "large", "pointed", "short", "long", "curved")


@dataclasses.dataclass
class FakeCub:
    """A fake data/birds directory and the values written into it."""

    root: pathlib.Path
    keys: dict[str, list[str]]
    class_ids: dict[str, list[int]]
    bboxes: dict[str, tuple[int, int, int, int]]
    modes: dict[str, str]
    pixels: dict[str, np.ndarray]
    caption_lines: dict[str, list[str]]
    vocabulary: list[str]
    caption_ids: dict[str, list[list[int]]]

    def image_path(self, key: str) -> pathlib.Path:
        """Where the image of `key` lives."""
        return self.root / "CUB_200_2011" / "images" / f"{key}.jpg"

    def text_path(self, key: str) -> pathlib.Path:
        """Where the caption file of `key` lives."""
        return self.root / "text" / f"{key}.txt"

    def all_keys(self) -> list[str]:
        """Train keys, then test keys."""
        return self.keys["train"] + self.keys["test"]

    def write_bboxes(self) -> None:
        """Writes images.txt and bounding_boxes.txt (in reverse order) from `bboxes`."""
        cub = self.root / "CUB_200_2011"
        ids = {key: i + 1 for i, key in enumerate(self.all_keys())}
        (cub / "images.txt").write_text("".join(f"{ids[k]} {k}.jpg\n" for k in ids))
        lines = [
            f"{ids[k]} {x:.1f} {y:.1f} {w:.1f} {h:.1f}\n" for k, (x, y, w, h) in self.bboxes.items()
        ]
        (cub / "bounding_boxes.txt").write_text("".join(reversed(lines)))


def make_caption_lines(rng: np.random.Generator, count: int) -> list[str]:
    """Random bird captions; the first has capitals, punctuation and a U+FFFD pair."""
    lines = []
    for _ in range(count):
        colour, other = rng.choice(_COLOURS, 2, replace=False)
        part, second = rng.choice(_PARTS, 2, replace=False)
        shape = rng.choice(_SHAPES)
        lines.append(f"this bird has a {colour} {part} and {shape} {other} {second}")
    lines[0] = "This BIRD\ufffd\ufffd" + lines[0].removeprefix("this bird ") + ", truly."
    return lines


def make_pixels(rng: np.random.Generator, mode: str, height: int, width: int) -> np.ndarray:
    """Random source pixels for a mode: RGB for the lossy modes, the stored values otherwise."""
    if mode == "RGBA":
        return rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    if mode == "I;16":
        return rng.integers(0, 65536, (height, width), dtype=np.uint16)
    if mode == "P":
        return rng.integers(0, len(PALETTE), (height, width), dtype=np.uint8)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def encode_image(pixels: np.ndarray, mode: str) -> bytes:
    """Encodes pixels as an image of `mode`: PNG for the lossless modes, JPEG otherwise."""
    if mode == "P":
        image = Image.frombytes("P", pixels.shape[::-1], pixels.tobytes())
        image.putpalette([value for colour in PALETTE for value in colour])
    elif mode in ("RGBA", "I;16"):
        image = Image.fromarray(pixels)
    else:
        image = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG" if mode in LOSSLESS_MODES else "JPEG", quality=90)
    return buffer.getvalue()


def expected_lossless_rgb(pixels: np.ndarray, mode: str) -> np.ndarray:
    """The 8-bit RGB image the builder must produce for a losslessly stored fake image."""
    if mode == "RGBA":
        return pixels[..., :3]
    if mode == "I;16":
        gray = np.rint(pixels / 257.0).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    return np.array(PALETTE, dtype=np.uint8)[pixels]


def make_fake_cub(root: pathlib.Path, *, captions_pickle: bool = True, seed: int = 0) -> FakeCub:
    """Writes the fake layout under `root`; pickles use protocol 2 like the baseline."""
    rng = np.random.default_rng(seed)
    classes = {"train": TRAIN_CLASSES, "test": TEST_CLASSES}
    keys = {
        split: [f"{c}/{c[4:]}_{i:04d}_{100 + i}" for c in names for i in range(IMAGES_PER_CLASS)]
        for split, names in classes.items()
    }
    fake = FakeCub(root, keys, {}, {}, {}, {}, {}, [], {})
    for index, key in enumerate(fake.all_keys()):
        width, height = 40 + 3 * index, 34 + 2 * index
        fake.modes[key] = MODES[index % len(MODES)]
        fake.pixels[key] = make_pixels(rng, fake.modes[key], height, width)
        fake.image_path(key).parent.mkdir(parents=True, exist_ok=True)
        fake.image_path(key).write_bytes(encode_image(fake.pixels[key], fake.modes[key]))
        fake.bboxes[key] = (2 + index % 4, 3 + index % 3, width // 2, height // 3 + index % 5)
        fake.caption_lines[key] = make_caption_lines(rng, 11)
        fake.text_path(key).parent.mkdir(parents=True, exist_ok=True)
        lines = fake.caption_lines[key]
        fake.text_path(key).write_text("\n".join([lines[0], "", *lines[1:]]) + "\n")
    fake.write_bboxes()
    for split in classes:
        fake.class_ids[split] = [int(key[:3]) for key in keys[split]]
        (root / split).mkdir()
        _dump(keys[split], root / split / "filenames.pickle")
        _dump(fake.class_ids[split], root / split / "class_info.pickle")
    tokens = {
        key: [tokenize(line) for line in fake.caption_lines[key][:10]] for key in keys["train"]
    }
    tokens |= {
        key: [tokenize(line) for line in fake.caption_lines[key][:10]] for key in keys["test"]
    }
    words = sorted(
        {word for captions in tokens.values() for caption in captions for word in caption}
    )
    fake.vocabulary = [END_TOKEN, *words, UNUSED_WORD]
    ids = {word: i for i, word in enumerate(fake.vocabulary)}
    fake.caption_ids = {
        k: [[ids[w] for w in c] for c in captions] for k, captions in tokens.items()
    }
    if captions_pickle:
        flat = {split: [c for key in keys[split] for c in fake.caption_ids[key]] for split in keys}
        ixtoword = dict(enumerate(fake.vocabulary))
        _dump([flat["train"], flat["test"], ixtoword, ids], root / "captions.pickle")
    return fake


def _dump(value: object, path: pathlib.Path) -> None:
    """Pickles with protocol 2, as the baseline's metadata files are."""
    path.write_bytes(pickle.dumps(value, protocol=2))


def assert_nothing_written(data_dir: pathlib.Path) -> None:
    """No dataset version directory and no file but TFDS's config-name record under `data_dir`."""
    assert not list(data_dir.glob("cub_birds/*/1.0.0"))
    written = [p.relative_to(data_dir) for p in data_dir.rglob("*") if p.is_file()]
    assert written in ([], [pathlib.Path("cub_birds/.config/metadata.json")])
    assert not tfds.builder("cub_birds", data_dir=data_dir).is_prepared()
    assert not tfds.data_source("cub_birds", data_dir=data_dir, download=False)
