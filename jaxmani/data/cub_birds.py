"""TFDS builder `cub_birds`: CUB-200-2011 birds with 10 captions per image, from a manual directory.

Nothing is downloaded. The manual directory has the layout of the baseline's `data/birds`
(BASELINE_SPEC §2.1): the preprocessed birds metadata (train/ and test/ filenames.pickle and
class_info.pickle, captions.pickle and/or text/<key>.txt) and the official CUB-200-2011 archive
(CUB_200_2011/images/<key>.jpg, images.txt, bounding_boxes.txt). Every pickle is read with the
restricted unpickler of `jaxmani.data.safe_pickle`.

Captions: when captions.pickle is present its word ids and vocabulary are used as they are, so
text encoders converted from the baseline see the same ids. Otherwise each text file is tokenised
(`jaxmani.data.text.tokenize`), at most 10 captions with words are kept per image, and the
vocabulary is numbered in first-occurrence order over train then test, as the baseline does. The
stored caption text is the caption's words joined by single spaces, so tokenising `captions[i]`
gives back `caption_ids[i]`.

Images: the stored image is the bird crop of BASELINE_SPEC §2.2 step 5 (a square of side
1.5 * max(w, h) around the box centre, clipped by the image border) at full resolution; resizing and
random crops happen in the input pipeline. `bbox` is the box of bounding_boxes.txt (x, y, w, h in
the original image, cast to int like the baseline), clipped to the image. Images that are not 8-bit
RGB are converted: grayscale, palette, CMYK and RGBA through Pillow's `convert("RGB")` as the
baseline does (alpha is dropped, CMYK is converted without a colour profile); 16-bit grayscale is
scaled to 8 bits (v / 257, rounded), where Pillow would clip it to 255.

Bad input: a missing part of the layout stops the build before anything is written, with a list of
what is missing and where to get it. A truncated or unreadable image, a missing or empty caption
file (text mode), a missing bounding box or one that lies outside the image skips that image; a
caption with no known word is skipped; a box that sticks out of the image is clipped to it. The
counts are logged in one summary line at the end. TFDS writes into a temporary directory and renames
it only when every split is complete, so a failed or interrupted build never looks like a finished
dataset.

Configs: `default` stores the features above. `fcn_mask` adds `mask`, the FCN-ResNet101 background
mask of each stored crop (uint8 (H, W) at the crop's resolution, 1 = background, 0 = bird; see
`jaxmani.masks.fcn`), computed at build time by onnxruntime from the ONNX graph whose path is the
builder's `fcn_onnx` argument, in batches of `fcn_batch_size` crops, with a progress bar.
"""

import dataclasses
import itertools
import os
import pathlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds
import tqdm
from absl import logging
from PIL import Image

from jaxmani import interrupts
from jaxmani.data.safe_pickle import load_pickle
from jaxmani.data.text import Vocabulary, tokenize
from jaxmani.masks.fcn import EXPORT_COMMAND, FcnMasker

CAPTIONS_PER_IMAGE = 10
SPLITS = ("train", "test")

_METADATA_SOURCE = (
    "the preprocessed birds metadata archive linked in the README of the upstream project "
    "(mrlibw/Lightweight-Manipulation), extracted into the manual directory"
)
_IMAGES_SOURCE = (
    "the official CUB-200-2011 archive (Caltech, CUB_200_2011.tgz), extracted into the manual "
    "directory"
)

_MANUAL_INSTRUCTIONS = f"""\
Put the baseline's data/birds directory in the manual directory:
  captions.pickle                      optional; without it text/ is tokenised
  train/filenames.pickle, test/filenames.pickle
  train/class_info.pickle, test/class_info.pickle
  text/<class>/<image>.txt             10 captions per image (needed without captions.pickle)
  CUB_200_2011/images/<class>/<image>.jpg, CUB_200_2011/images.txt,
  CUB_200_2011/bounding_boxes.txt
The metadata comes from {_METADATA_SOURCE}; the images and the .txt files of CUB_200_2011 come from
{_IMAGES_SOURCE}.
"""

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


@dataclasses.dataclass
class BuildReport:
    """Counts of what a build wrote, skipped, clipped and converted."""

    written: dict[str, int] = dataclasses.field(default_factory=dict)
    unreadable_images: int = 0
    missing_images: int = 0
    unusable_caption_files: int = 0
    images_without_captions: int = 0
    missing_bboxes: int = 0
    bboxes_outside: int = 0
    unknown_captions: int = 0
    unknown_word_ids: int = 0
    clipped_bboxes: int = 0
    converted_images: int = 0

    def summary(self) -> str:
        """One line naming every count."""
        written = ", ".join(f"{split}={count}" for split, count in self.written.items())
        return (
            f"cub_birds: wrote {written}; skipped images: unreadable={self.unreadable_images} "
            f"missing={self.missing_images} caption_file={self.unusable_caption_files} "
            f"no_caption={self.images_without_captions} no_bbox={self.missing_bboxes} "
            f"bbox_outside={self.bboxes_outside}; skipped captions without a known word: "
            f"{self.unknown_captions}; dropped unknown word ids: {self.unknown_word_ids}; "
            f"clipped bboxes: {self.clipped_bboxes}; converted to 8-bit RGB: "
            f"{self.converted_images}"
        )


@dataclasses.dataclass(frozen=True)
class _Split:
    """What one split needs to be written: keys, class ids and captions as word ids."""

    keys: list[str]
    class_ids: list[int]
    captions: list[list[list[int]] | None]


def find_missing(manual_dir: pathlib.Path) -> list[tuple[str, str]]:
    """Lists the parts of the manual directory's layout that are absent, each with its source."""
    metadata = [f"{split}/filenames.pickle" for split in SPLITS]
    cub = ["CUB_200_2011/images.txt", "CUB_200_2011/bounding_boxes.txt"]
    missing = [(name, _METADATA_SOURCE) for name in metadata if not (manual_dir / name).is_file()]
    missing += [(name, _IMAGES_SOURCE) for name in cub if not (manual_dir / name).is_file()]
    images = manual_dir / "CUB_200_2011" / "images"
    if not images.is_dir() or not any(images.iterdir()):
        missing.append(("CUB_200_2011/images/", _IMAGES_SOURCE))
    if not (manual_dir / "captions.pickle").is_file() and not (manual_dir / "text").is_dir():
        missing.append(("captions.pickle or text/", _METADATA_SOURCE))
    return missing


def check_layout(manual_dir: pathlib.Path) -> None:
    """Raises FileNotFoundError with one line listing every missing part, grouped by source."""
    missing = find_missing(manual_dir)
    if missing:
        sources = dict.fromkeys(source for _, source in missing)
        groups = [
            ", ".join(name for name, of in missing if of == source) + f" (from {source})"
            for source in sources
        ]
        raise FileNotFoundError(
            f"cub_birds: the manual directory {manual_dir} lacks {'; '.join(groups)}"
        )


def read_keys(path: pathlib.Path) -> list[str]:
    """Reads a filenames.pickle: the image keys `<class folder>/<image stem>` of one split."""
    keys = load_pickle(path)
    if not isinstance(keys, list | tuple) or not all(isinstance(key, str) for key in keys):
        raise ValueError(f"{path}: expected a list of str image keys")
    if len(set(keys)) != len(keys):
        raise ValueError(f"{path}: an image key appears more than once")
    return list(keys)


def read_class_ids(path: pathlib.Path, count: int) -> list[int]:
    """Reads a class_info.pickle (latin1); without the file, class ids are 0..count-1 (baseline)."""
    if not path.is_file():
        logging.warning("cub_birds: %s is missing, class ids are the image indices", path)
        return list(range(count))
    values = load_pickle(path, encoding="latin1", allow_numpy=True)
    try:
        class_ids = [int(value) for value in np.asarray(values).reshape(-1)]
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: expected a list of int class ids ({error})") from error
    if len(class_ids) != count:
        raise ValueError(f"{path}: {len(class_ids)} class ids for {count} filenames")
    return class_ids


def _read_table(path: pathlib.Path, columns: int) -> list[list[str]]:
    """Splits a whitespace-separated CUB text file into rows of `columns` fields."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != columns:
            raise ValueError(f"{path}:{number}: expected {columns} fields, got {line!r}")
        rows.append(fields)
    return rows


def read_bboxes(cub_dir: pathlib.Path) -> dict[str, tuple[int, int, int, int]]:
    """Maps image keys (images.txt path minus '.jpg') to bounding boxes (x, y, w, h) as ints."""
    paths = {image_id: path for image_id, path in _read_table(cub_dir / "images.txt", 2)}
    bboxes = {}
    for image_id, *values in _read_table(cub_dir / "bounding_boxes.txt", 5):
        if image_id not in paths:
            raise ValueError(
                f"{cub_dir / 'bounding_boxes.txt'}: image id {image_id} not in images.txt"
            )
        try:
            x, y, w, h = (int(float(value)) for value in values)
        except ValueError as error:
            raise ValueError(f"{cub_dir / 'bounding_boxes.txt'}: {error}") from error
        bboxes[paths[image_id].removesuffix(".jpg")] = (x, y, w, h)
    return bboxes


def read_caption_pickle(
    path: pathlib.Path, counts: dict[str, int]
) -> tuple[Vocabulary, dict[str, list[list[list[int]]]]]:
    """Reads captions.pickle: the vocabulary and, per split, each image's 10 captions as ids."""
    content = load_pickle(path)
    if not isinstance(content, list | tuple) or len(content) != 4:
        raise ValueError(f"{path}: expected [train_captions, test_captions, ixtoword, wordtoix]")
    *split_captions, ixtoword, wordtoix = content
    if not isinstance(ixtoword, dict) or sorted(ixtoword) != list(range(len(ixtoword))):
        raise ValueError(f"{path}: ixtoword must map the ids 0..n-1 to words")
    try:
        vocabulary = Vocabulary(tuple(ixtoword[i] for i in range(len(ixtoword))))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    if wordtoix != {word: i for i, word in enumerate(vocabulary.words)}:
        raise ValueError(f"{path}: wordtoix is not the inverse of ixtoword")
    per_split = {}
    for split, captions in zip(SPLITS, split_captions, strict=True):
        expected = CAPTIONS_PER_IMAGE * counts[split]
        if not isinstance(captions, list | tuple) or len(captions) != expected:
            raise ValueError(f"{path}: {split} needs {expected} captions ({counts[split]} images)")
        if not all(
            isinstance(ids, list | tuple) and all(isinstance(i, int) for i in ids)
            for ids in captions
        ):
            raise ValueError(f"{path}: {split} captions must be lists of int word ids")
        per_split[split] = [
            [list(ids) for ids in captions[i : i + CAPTIONS_PER_IMAGE]]
            for i in range(0, expected, CAPTIONS_PER_IMAGE)
        ]
    return vocabulary, per_split


def read_caption_file(path: pathlib.Path) -> tuple[list[list[str]], int]:
    """Tokenises up to 10 captions of one text file; also returns how many lines had no word."""
    captions, wordless = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").split("\n"):
        if not line.strip():
            continue
        tokens = tokenize(line)
        if not tokens:
            wordless += 1
            continue
        captions.append(tokens)
        if len(captions) == CAPTIONS_PER_IMAGE:
            break
    return captions, wordless


def clip_bbox(bbox: Sequence[int], width: int, height: int) -> tuple[int, int, int, int] | None:
    """Clips (x, y, w, h) to the image; None when the box does not overlap it."""
    x, y, w, h = bbox
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + w, width), min(y + h, height)
    if right <= left or bottom <= top:
        return None
    return left, top, right - left, bottom - top


def bird_crop_box(bbox: Sequence[int], width: int, height: int) -> tuple[int, int, int, int]:
    """The baseline's bird crop (left, top, right, bottom): 1.5 * max(w, h) around the centre."""
    x, y, w, h = bbox
    radius = int(0.75 * max(w, h))
    center_x, center_y = int((2 * x + w) / 2), int((2 * y + h) / 2)
    return (
        max(0, center_x - radius),
        max(0, center_y - radius),
        min(width, center_x + radius),
        min(height, center_y + radius),
    )


def to_rgb(image: Image.Image) -> Image.Image:
    """Converts any Pillow mode to 8-bit RGB; 16-bit grayscale is scaled, not clipped."""
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    return image.convert("RGB")


def read_image(path: pathlib.Path) -> Image.Image:
    """Opens and fully decodes an image (so a truncated file raises here)."""
    with Image.open(path) as image:
        image.load()
        return image.copy()


def flatten_caption_ids(captions: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Packs captions of word ids into one int64 vector of ids and one of caption lengths."""
    lengths = np.array([len(ids) for ids in captions], dtype=np.int64)
    flat = [i for ids in captions for i in ids]
    return np.array(flat, dtype=np.int64), lengths


def unflatten_caption_ids(ids: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """Splits the stored `caption_ids` back into one array per caption using `caption_lengths`."""
    return np.split(np.asarray(ids), np.cumsum(lengths)[:-1]) if len(lengths) else []


def get_vocabulary(info: tfds.core.DatasetInfo) -> Vocabulary:
    """The vocabulary stored in a built dataset's metadata."""
    return Vocabulary(tuple(info.metadata["vocabulary"]))


def add_fcn_masks(
    examples: Iterable[tuple[str, dict[str, Any]]], masker: FcnMasker
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Adds the FCN background `mask` of each example's image, masking `batch_size` at a time."""
    iterator = iter(examples)
    while chunk := list(itertools.islice(iterator, masker.batch_size)):
        masks = masker.background_masks([np.asarray(example["image"]) for _, example in chunk])
        for (key, example), mask in zip(chunk, masks, strict=True):
            yield key, {**example, "mask": mask}


@dataclasses.dataclass(eq=False)
class CubBirdsConfig(tfds.core.BuilderConfig):
    """A cub_birds variant; `fcn_mask` adds the FCN-ResNet101 background mask feature."""

    fcn_mask: bool = False


class CubBirds(tfds.core.GeneratorBasedBuilder):
    """CUB-200-2011 bird crops with their captions, split and vocabulary as the baseline."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "Bird crops, captions and word ids from the baseline's data/birds."
    }
    BUILDER_CONFIGS: ClassVar[list[CubBirdsConfig]] = [
        CubBirdsConfig(name="default", description="Bird crops, captions, boxes."),
        CubBirdsConfig(
            name="fcn_mask",
            description="As default, plus the FCN-ResNet101 background mask of each crop.",
            fcn_mask=True,
        ),
    ]
    DEFAULT_CONFIG_NAME = "default"
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_INSTRUCTIONS

    def __init__(
        self,
        *,
        file_format: str | None = None,
        fcn_onnx: str | os.PathLike | None = None,
        fcn_batch_size: int = 8,
        **kwargs: Any,
    ):
        """TFDS builder arguments; `fcn_onnx` (the FCN graph) is needed to build `fcn_mask`."""
        super().__init__(file_format=file_format or "array_record", **kwargs)
        self.report = BuildReport()
        self.fcn_onnx = fcn_onnx
        self.fcn_batch_size = fcn_batch_size

    def _info(self) -> tfds.core.DatasetInfo:
        """Features, and the vocabulary in the metadata."""
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    **self._mask_features(),
                    "id": tfds.features.Text(doc="key <class folder>/<image stem>"),
                    "image": tfds.features.Image(
                        shape=(None, None, 3),
                        dtype=np.uint8,
                        encoding_format="png",
                        doc="bird crop (BASELINE_SPEC §2.2 step 5), full resolution",
                    ),
                    "captions": tfds.features.Sequence(
                        tfds.features.Text(), doc="captions as space-joined words"
                    ),
                    "caption_ids": tfds.features.Tensor(
                        shape=(None,), dtype=np.int64, doc="word ids of all captions, concatenated"
                    ),
                    "caption_lengths": tfds.features.Tensor(
                        shape=(None,), dtype=np.int64, doc="number of word ids of each caption"
                    ),
                    "class_id": tfds.features.Scalar(
                        dtype=np.int64, doc="class id from class_info"
                    ),
                    "bbox": tfds.features.Tensor(
                        shape=(4,),
                        dtype=np.int64,
                        doc="bird box x, y, w, h in the original image, clipped to it",
                    ),
                }
            ),
            homepage="https://www.vision.caltech.edu/datasets/cub_200_2011/",
            metadata=tfds.core.MetadataDict(),
            disable_shuffling=True,
        )

    def _mask_features(self) -> dict[str, tfds.features.FeatureConnector]:
        """The `mask` feature of the fcn_mask config; nothing for the default config."""
        if not self.builder_config.fcn_mask:
            return {}
        return {
            "mask": tfds.features.Tensor(
                shape=(None, None),
                dtype=np.uint8,
                encoding="zlib",
                doc="FCN-ResNet101 background mask of the crop, 1 = background, 0 = bird",
            )
        }

    def _make_masker(self) -> FcnMasker | None:
        """The FCN masker of the fcn_mask config (None otherwise); needs `fcn_onnx`."""
        if not self.builder_config.fcn_mask:
            return None
        if self.fcn_onnx is None:
            raise ValueError(
                "cub_birds/fcn_mask needs the builder argument fcn_onnx, the FCN-ResNet101 ONNX "
                f"graph made by `{EXPORT_COMMAND.format(path='fcn.onnx')}`"
            )
        return FcnMasker(self.fcn_onnx, batch_size=self.fcn_batch_size)

    def download_and_prepare(self, **kwargs: Any) -> None:
        """Builds the dataset as `tfds.core.DatasetBuilder` does, then logs what was skipped."""
        self.report = BuildReport()
        super().download_and_prepare(**kwargs)
        if self.report.written:
            logging.info("%s", self.report.summary())

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        """Reads and checks all metadata, stores the vocabulary, returns one generator a split."""
        masker = self._make_masker()
        manual_dir = pathlib.Path(dl_manager.manual_dir)
        check_layout(manual_dir)
        keys = {split: read_keys(manual_dir / split / "filenames.pickle") for split in SPLITS}
        vocabulary, captions = self._read_captions(manual_dir, keys)
        self.info.metadata["vocabulary"] = list(vocabulary.words)
        bboxes = read_bboxes(manual_dir / "CUB_200_2011")
        images = manual_dir / "CUB_200_2011" / "images"
        return {
            split: self._generate_examples(
                split,
                _Split(
                    keys[split],
                    read_class_ids(manual_dir / split / "class_info.pickle", len(keys[split])),
                    captions[split],
                ),
                vocabulary,
                bboxes,
                images,
                masker,
            )
            for split in SPLITS
        }

    def _read_captions(
        self, manual_dir: pathlib.Path, keys: dict[str, list[str]]
    ) -> tuple[Vocabulary, dict[str, list[list[list[int]] | None]]]:
        """The vocabulary and each image's captions as word ids (None: no usable caption file)."""
        pickle_path = manual_dir / "captions.pickle"
        if pickle_path.is_file():
            counts = {split: len(split_keys) for split, split_keys in keys.items()}
            vocabulary, per_split = read_caption_pickle(pickle_path, counts)
            return vocabulary, {
                split: [self._count_known(ids, len(vocabulary)) for ids in captions]
                for split, captions in per_split.items()
            }
        tokens = {
            split: [self._read_text(manual_dir / "text" / f"{key}.txt") for key in keys[split]]
            for split in SPLITS
        }
        vocabulary = Vocabulary.build(
            caption for split in SPLITS for image in tokens[split] if image for caption in image
        )
        return vocabulary, {
            split: [
                [vocabulary.encode(caption) for caption in image] if image is not None else None
                for image in tokens[split]
            ]
            for split in SPLITS
        }

    def _count_known(self, captions: list[list[int]], size: int) -> list[list[int]]:
        """Keeps the known word ids of one image's captions, counting what is dropped."""
        kept = []
        for ids in captions:
            known = [i for i in ids if 0 < i < size]
            if known:
                self.report.unknown_word_ids += len(ids) - len(known)
                kept.append(known)
            else:
                self.report.unknown_captions += 1
        return kept

    def _read_text(self, path: pathlib.Path) -> list[list[str]] | None:
        """Tokenised captions of one text file; None (counted) when it is missing or has none."""
        if not path.is_file():
            self.report.unusable_caption_files += 1
            return None
        captions, wordless = read_caption_file(path)
        self.report.unknown_captions += wordless
        if not captions and not wordless:
            self.report.unusable_caption_files += 1
            return None
        return captions

    def _generate_examples(
        self,
        split: str,
        data: _Split,
        vocabulary: Vocabulary,
        bboxes: dict[str, tuple[int, int, int, int]],
        images: pathlib.Path,
        masker: FcnMasker | None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yields one example per usable image of the split, in filenames order."""
        self.report.written[split] = 0
        rows = zip(data.keys, data.class_ids, data.captions, strict=True)
        if masker is not None:
            rows = tqdm.tqdm(rows, total=len(data.keys), desc=f"cub_birds {split} FCN masks")
        examples = (
            (key, self._make_example(key, class_id, captions, vocabulary, bboxes, images))
            for key, class_id, captions in rows
        )
        examples = ((key, example) for key, example in examples if example is not None)
        if masker is not None:
            examples = add_fcn_masks(examples, masker)
        for key, example in examples:
            interrupts.check()
            self.report.written[split] += 1
            yield key, example

    def _make_example(
        self,
        key: str,
        class_id: int,
        captions: list[list[int]] | None,
        vocabulary: Vocabulary,
        bboxes: dict[str, tuple[int, int, int, int]],
        images: pathlib.Path,
    ) -> dict[str, Any] | None:
        """The example of one image, or None (counted) when the image has to be skipped."""
        if captions is None:
            return None
        if not captions:
            self.report.images_without_captions += 1
            return None
        if key not in bboxes:
            self.report.missing_bboxes += 1
            return None
        image = self._load_image(images / f"{key}.jpg")
        if image is None:
            return None
        bbox = clip_bbox(bboxes[key], *image.size)
        if bbox is None:
            self.report.bboxes_outside += 1
            return None
        self.report.clipped_bboxes += int(bbox != bboxes[key])
        ids, lengths = flatten_caption_ids(captions)
        return {
            "id": key,
            "image": image.crop(bird_crop_box(bbox, *image.size)),
            "captions": [" ".join(vocabulary.decode(caption)) for caption in captions],
            "caption_ids": ids,
            "caption_lengths": lengths,
            "class_id": class_id,
            "bbox": np.array(bbox, dtype=np.int64),
        }

    def _load_image(self, path: pathlib.Path) -> Image.Image | None:
        """The image as 8-bit RGB, or None (counted) when it is missing or cannot be decoded."""
        if not path.is_file():
            self.report.missing_images += 1
            return None
        try:
            image = read_image(path)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            logging.warning("cub_birds: skipping unreadable image %s (%s)", path, error)
            self.report.unreadable_images += 1
            return None
        self.report.converted_images += int(image.mode != "RGB")
        return to_rgb(image)
