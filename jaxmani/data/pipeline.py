"""The grain input pipeline: a prepared TFDS dataset in, host-local numpy batches out.

A batch is a dict of numpy arrays. B is the per-host batch (config.train.batch_size divided by the
number of processes), S = config.data.image_size, T = config.data.words_num. This is the one place
that documents the batch keys:

- `image` (B, S, S, 3) float32 in [-1, 1]: the augmented real image, NHWC.
- `caption` (B, T) int32: word ids of one of the image's captions, 0 = padding.
- `caption_length` (B,) int32: number of non-padding ids in `caption` (at most T).
- `wrong_caption` (B, T) int32, `wrong_caption_length` (B,) int32: the caption in the same slot of
  an image of the split drawn uniformly (it may be the image itself), the mismatched text of the
  discriminator loss.
- `class_id` (B,) int32, `wrong_class_id` (B,) int32: class ids of the image and of the image the
  wrong caption came from.
- `mask` (B, S, S, 1) float32 in [0, 1], 1 = background: only for datasets with a `mask` feature
  (toy_birds always, cub_birds in its FCN-mask config); it follows the image geometry exactly.
- `edit_image` (B, S, S, 3) float32, `edit_caption` (B, T) int32, `edit_caption_length` (B,)
  int32: only for toy_birds, in evaluation pipelines (`train=False`) and in training pipelines
  made with `edits=True` (GAN training with `loss.g.paired_edit_weight` > 0): the ground-truth
  edit of the image (same crop and flip) and the caption that asks for it. Evaluation pipelines
  also hold `part_masks` (B, S, S, 7) float32 (each toy_birds part mask through the image
  geometry) and `attributes`, `edit_attributes` (B, 7) int32 (palette colour index per part
  before and after the edit).
- `valid` (B,) bool: False on the padding rows of an evaluation pipeline's last global batch
  (copies of the split's last example), True everywhere else (always, in training).

Host i of n holds rows [i * B, (i + 1) * B) of every global batch of n * B rows, and the global
batches are the same sequence for any n (`jax.make_array_from_process_local_data` assembles the
single-host batch). An evaluation pipeline (`train=False`) yields every example of the split
exactly once over all hosts, in order, and pads the last global batch instead of dropping rows.

Per example (BASELINE_SPEC §2.2): the image is resized with PIL bilinear (Pillow's antialiasing, as
torchvision's Resize on PIL images) so that its shorter side becomes L = int(S * 76 / 64), cropped
at offsets x, y drawn uniformly from 0..L-S-1 (upstream's randint(0, 48) at S = 256), flipped
horizontally with probability 0.5 and scaled to [-1, 1] as ToTensor + Normalize(0.5, 0.5). The
mask is resized bilinearly as float with the same crop and flip. The caption slot is uniform over
the 10 slots (taken modulo the number of captions an image has); a caption longer than T keeps T
distinct random positions in their original order rather than its first T words. All randomness
comes from grain's per-element generator, seeded from config.seed and the element's index in the
repeated dataset: the same seed gives the same batches, every epoch gets a new shuffle and new
augmentation, and the augmentation of an example does not depend on the number of hosts.

Rows keep uint8 pixels and are stacked by grain (in shared memory when config.data.workers > 0);
`normalize_batch` then scales whole batches in the consuming process.

Unlike upstream's prepare_data, batches are not sorted by caption length (jaxmani's text encoder
takes unsorted lengths), so row i of every key belongs to the same example; the wrong captions are
not re-sorted either.
"""

import dataclasses
import io
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import grain
import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from absl import flags
from PIL import Image

from jaxmani.data import prepare
from jaxmani.data.cub_birds import unflatten_caption_ids
from jaxmani.data.text import Vocabulary, tokenize
from jaxmani.errors import UserError

CAPTION_SLOTS = 10
EDIT_FEATURES = ("edit_image", "edit_caption")
# toy_birds ground truth that evaluation reads beside the edit (part masks, part colour indices).
GROUND_TRUTH_FEATURES = ("part_masks", "attributes", "edit_attributes")
IMAGE_KEYS = ("image", "edit_image")
CAPTION_FEATURES = ("captions", "caption_ids", "caption_lengths", "class_id")


def compute_load_size(image_size: int) -> int:
    """Side the shorter image side is resized to before the random crop: int(S * 76 / 64)."""
    return int(image_size * 76 / 64)


def compute_resized_shape(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) after torchvision's Resize(short_side) on a PIL image of this size."""
    if width <= height:
        return short_side, int(short_side * height / width)
    return int(short_side * width / height), short_side


def sample_crop(rng: np.random.Generator, image_size: int) -> tuple[int, int, bool]:
    """Draws upstream's augmentation in its order: flip, then crop offsets x (left) and y (top)."""
    flip = bool(rng.random() > 0.5)
    limit = compute_load_size(image_size) - image_size
    x, y = (int(v) for v in rng.integers(0, limit, size=2))
    return x, y, flip


def transform_image(image: Image.Image, crop: tuple[int, int, bool], image_size: int) -> np.ndarray:
    """Resizes the shorter side to int(S * 76 / 64), crops S x S at (x, y), flips (same dtype)."""
    x, y, flip = crop
    size = compute_resized_shape(*image.size, compute_load_size(image_size))
    resized = image.resize(size, Image.Resampling.BILINEAR)
    cropped = resized.crop((x, y, x + image_size, y + image_size))
    return np.asarray(cropped.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else cropped)


def to_unit_range(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [-1, 1], computed as ToTensor then Normalize(0.5, 0.5)."""
    values = pixels.astype(np.float32)
    values /= np.float32(255)
    values -= np.float32(0.5)
    values /= np.float32(0.5)
    return values


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] float images to uint8 pixels, rounded and clipped (jaxmani's one conversion; the
    baseline truncates instead)."""
    return np.clip(np.round((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def normalize_batch(batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Stacked rows to the documented batch: uint8 images (IMAGE_KEYS) become [-1, 1] float32."""
    return {
        key: to_unit_range(value) if key in IMAGE_KEYS else value for key, value in batch.items()
    }


def decode_rgb(data: bytes | np.ndarray) -> Image.Image:
    """An RGB PIL image from encoded image bytes (or from an already decoded uint8 array)."""
    image = Image.fromarray(data) if isinstance(data, np.ndarray) else Image.open(io.BytesIO(data))
    return image if image.mode == "RGB" else image.convert("RGB")


def transform_mask(mask: np.ndarray, crop: tuple[int, int, bool], image_size: int) -> np.ndarray:
    """A 0/1 uint8 (H, W) mask through the image geometry as float (PIL mode F): (S, S, 1)."""
    image = Image.fromarray(np.asarray(mask, dtype=np.uint8)).convert("F")
    return transform_image(image, crop, image_size)[..., None]


def decode_captions(example: Mapping[str, Any], vocabulary: Vocabulary | None) -> list[np.ndarray]:
    """Every caption of a dataset example as word ids.

    cub_birds stores ids (`caption_ids` concatenated, split by `caption_lengths`); toy_birds stores
    text (`captions`), tokenised and encoded with `vocabulary`.
    """
    if "caption_ids" in example:
        return unflatten_caption_ids(example["caption_ids"], example["caption_lengths"])
    if vocabulary is None:
        raise ValueError("an example with text captions needs a vocabulary")
    return [encode_text(text, vocabulary) for text in example["captions"]]


def encode_text(text: bytes, vocabulary: Vocabulary) -> np.ndarray:
    """Word ids of one UTF-8 caption, tokenised as the dataset builders tokenise."""
    return np.asarray(vocabulary.encode(tokenize(text.decode())), dtype=np.int32)


@dataclasses.dataclass(frozen=True)
class CaptionTable:
    """The captions (word ids) and class ids of every example of a split, read once."""

    ids: np.ndarray  # Every word id of the split, caption after caption (int32).
    bounds: np.ndarray  # (M + 1,): caption c is ids[bounds[c] : bounds[c + 1]].
    first: np.ndarray  # (N + 1,): example i owns captions first[i] .. first[i + 1] - 1.
    class_ids: np.ndarray  # (N,) int32.

    def __len__(self) -> int:
        return len(self.class_ids)

    def caption(self, index: int, slot: int) -> np.ndarray:
        """Word ids of caption `slot` (modulo its caption count) of example `index`."""
        start, stop = self.first[index], self.first[index + 1]
        caption = start + slot % (stop - start)
        return self.ids[self.bounds[caption] : self.bounds[caption + 1]]


def build_caption_table(
    examples: Iterable[Mapping[str, Any]], vocabulary: Vocabulary | None
) -> CaptionTable:
    """Collects the captions and class ids of `examples` (a split, in order)."""
    captions, counts, class_ids = [], [], []
    for example in examples:
        own = decode_captions(example, vocabulary)
        captions += own
        counts.append(len(own))
        class_ids.append(example["class_id"])
    lengths = [len(ids) for ids in captions]
    return CaptionTable(
        ids=np.concatenate([np.zeros((0,), np.int32), *captions]).astype(np.int32),
        bounds=np.cumsum([0, *lengths]),
        first=np.cumsum([0, *counts]),
        class_ids=np.asarray(class_ids, dtype=np.int32),
    )


def fit_caption(
    ids: np.ndarray, words_num: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.int32]:
    """Upstream's get_caption: zero-pads to words_num, or keeps words_num random distinct
    positions in order when longer; returns (ids (words_num,) int32, length)."""
    caption = np.zeros((words_num,), np.int32)
    if len(ids) > words_num:
        ids = ids[np.sort(rng.choice(len(ids), words_num, replace=False))]
    caption[: len(ids)] = ids
    return caption, np.int32(len(ids))


def preprocess_example(
    example: Mapping[str, Any],
    rng: np.random.Generator,
    *,
    index: int,
    captions: CaptionTable,
    config: ml_collections.ConfigDict,
    vocabulary: Vocabulary | None = None,
    with_edit: bool = False,
    with_ground_truth: bool = False,
) -> dict[str, np.ndarray]:
    """Example `index` of a split to one batch row: the keys in the module docstring, except that
    the images are still uint8 pixels (`normalize_batch` converts whole batches, which is faster).

    `example` holds `image` as encoded bytes or a uint8 array and, if the dataset has one, the
    uint8 `mask`; the captions come from the split's `captions` table. With `with_edit`, it also
    holds `edit_image` and the `edit_caption` text, encoded with `vocabulary`; with
    `with_ground_truth` too, the ground truth of GROUND_TRUTH_FEATURES. Draw order: flip,
    x, y, caption slot, caption positions, wrong index, wrong caption positions, edit positions.
    """
    size, words_num = config.data.image_size, config.data.words_num
    crop = sample_crop(rng, size)
    row = {"image": transform_image(decode_rgb(example["image"]), crop, size)}
    slot = int(rng.integers(CAPTION_SLOTS))
    row["caption"], row["caption_length"] = fit_caption(
        captions.caption(index, slot), words_num, rng
    )
    row["class_id"] = captions.class_ids[index]
    wrong = int(rng.integers(len(captions)))
    row["wrong_caption"], row["wrong_caption_length"] = fit_caption(
        captions.caption(wrong, slot), words_num, rng
    )
    row["wrong_class_id"] = captions.class_ids[wrong]
    if "mask" in example:
        row["mask"] = transform_mask(example["mask"], crop, size)
    if with_edit:
        row["edit_image"] = transform_image(decode_rgb(example["edit_image"]), crop, size)
        ids = encode_text(example["edit_caption"], vocabulary)
        row["edit_caption"], row["edit_caption_length"] = fit_caption(ids, words_num, rng)
    if with_ground_truth:
        parts = np.moveaxis(np.asarray(example["part_masks"]), -1, 0)
        row["part_masks"] = np.concatenate([transform_mask(p, crop, size) for p in parts], -1)
        for key in ("attributes", "edit_attributes"):
            row[key] = np.asarray(example[key], np.int32)
    return row


@dataclasses.dataclass(frozen=True)
class _Preprocess:
    """grain random map from an example index to its batch row (picklable for workers)."""

    source: Sequence[Mapping[str, Any]]
    captions: CaptionTable
    config: ml_collections.ConfigDict
    vocabulary: Vocabulary | None
    with_edit: bool
    with_ground_truth: bool

    def __call__(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return preprocess_example(
            self.source[index],
            rng,
            index=index,
            captions=self.captions,
            config=self.config,
            vocabulary=self.vocabulary,
            with_edit=self.with_edit,
            with_ground_truth=self.with_ground_truth,
        )


def load_builder(
    config: ml_collections.ConfigDict, data_dir: str | None = None
) -> tfds.core.DatasetBuilder:
    """The prepared builder of config.data.name (and builder_config) in data_dir.

    Raises a UserError naming the `jaxmani prepare` command when the dataset is not built.
    """
    name, data_dir = config.data.name, data_dir or config.data.data_dir
    builder_config = config.data.builder_config or None
    builder = prepare.make_builder(name, data_dir, builder_config)
    if not builder.is_prepared():
        config_flag = f" --config.data.builder_config={builder_config}" if builder_config else ""
        raise UserError(
            f"dataset {name!r} is not prepared in {data_dir!r}; build it with "
            f"`jaxmani prepare --config.data.name={name} --config.data.data_dir={data_dir}"
            f"{config_flag}`"
        )
    return builder


def open_split(
    builder: tfds.core.DatasetBuilder, split: str, decoded: Collection[str]
) -> Sequence[Mapping[str, Any]]:
    """Random access to a split; features outside `decoded` stay serialized (images: bytes)."""
    skipped = {
        key: tfds.decode.SkipDecoding()
        for key, feature in builder.info.features.items()
        if key not in decoded and not isinstance(feature, tfds.features.Sequence)
    }
    return builder.as_data_source(split, decoders=skipped)


def read_vocabulary(builder: tfds.core.DatasetBuilder) -> Vocabulary | None:
    """The vocabulary of a dataset with text captions; None when it stores word ids."""
    if "caption_ids" in builder.info.features:
        return None
    return Vocabulary(tuple(builder.info.metadata["vocabulary"]))


class _HostBlocks(grain.MapDataset):
    """Host `process_index`'s rows of the global batches of `parent`, with a `valid` key.

    Global batch k of size G = process_count * host_batch is parent[k * G : (k + 1) * G]; the host
    holds its contiguous block [process_index * host_batch, (process_index + 1) * host_batch).
    The last global batch is padded with copies of the last element (valid False).
    """

    def __init__(
        self, parent: grain.MapDataset, process_index: int, process_count: int, host_batch: int
    ):
        super().__init__(parent)
        self._offset = process_index * host_batch
        self._global_batch = process_count * host_batch
        self._host_batch = host_batch
        batches = -(-len(parent) // self._global_batch)
        # A repeated parent has length sys.maxsize; its shard must stay index-sized too.
        self._length = min(batches, sys.maxsize // host_batch) * host_batch

    def __len__(self) -> int:
        return self._length

    def __str__(self) -> str:
        return f"HostBlocks(offset={self._offset}, global_batch={self._global_batch})"

    def global_index(self, index: int) -> int:
        """The parent index of this host's element `index` (it may be past the parent's end)."""
        batch, row = divmod(index, self._host_batch)
        return batch * self._global_batch + self._offset + row

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.slice(index)
        position = self.global_index(index)
        valid = position < len(self._parent)
        row = self._parent[position if valid else len(self._parent) - 1]
        return {**row, "valid": np.bool_(valid)}


def shard_for_host(
    ds: grain.MapDataset, process_index: int, process_count: int, host_batch: int
) -> grain.MapDataset:
    """Host process_index's rows of `ds` (dicts) cut into global batches of process_count *
    host_batch: its contiguous block of each, so the hosts' batches in process order are the
    single-host batch. Each row gains `valid`; the last global batch is padded (valid False)."""
    return _HostBlocks(ds, process_index, process_count, host_batch)


def create_host_dataset(
    config: ml_collections.ConfigDict,
    split: str,
    *,
    process_index: int,
    process_count: int,
    data_dir: str | None = None,
    train: bool = True,
    batch_size: int | None = None,
    edits: bool = False,
) -> grain.IterDataset:
    """`create_dataset` for an explicit host (process_index of process_count).

    Reads every caption of the split once (a CaptionTable for the wrong captions). Elements are
    keyed by their index in the source before shuffling, so a host's block of the global
    (shuffled, repeated) stream has exactly the augmentation a single host would give it. The
    iterator state restores exactly under the same config.data.workers (its format depends on it).
    `batch_size` is the global batch (default config.train.batch_size). `edits` adds the
    ground-truth edit to training batches (paired-edit training; evaluation batches always have it).
    """
    batch_size = batch_size or config.train.batch_size
    if batch_size % process_count:
        raise UserError(
            f"batch size {batch_size} is not divisible by the {process_count} processes; "
            f"set --config.train.batch_size to a multiple of {process_count}"
        )
    host_batch = batch_size // process_count
    builder = load_builder(config, data_dir)
    vocabulary = read_vocabulary(builder)
    captions = open_split(builder, split, CAPTION_FEATURES)
    has_edits = all(key in builder.info.features for key in EDIT_FEATURES)
    if train and edits and not has_edits:
        raise UserError(
            f"config.loss.g.paired_edit_weight={config.loss.g.paired_edit_weight}: dataset "
            f"{config.data.name!r} has no ground-truth edits (toy_birds has them); set it to 0"
        )
    with_edit = has_edits and (edits or not train)
    with_ground_truth = with_edit and not train
    decoded = ("mask", "edit_caption", *(GROUND_TRUTH_FEATURES if with_ground_truth else ()))
    preprocess = _Preprocess(
        source=open_split(builder, split, decoded),
        captions=build_caption_table((captions[i] for i in range(len(captions))), vocabulary),
        config=config,
        vocabulary=vocabulary,
        with_edit=with_edit,
        with_ground_truth=with_ground_truth,
    )
    ds = grain.MapDataset.range(len(captions)).seed(config.seed).random_map(preprocess)
    if train:
        ds = ds.shuffle().repeat()
    ds = shard_for_host(ds, process_index, process_count, host_batch)
    ds = ds.batch(host_batch, drop_remainder=True)
    read_options = grain.ReadOptions(
        num_threads=config.data.threads, prefetch_buffer_size=config.data.prefetch
    )
    if config.data.workers and not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()  # grain workers read absl flags; outside an absl app.
    workers = grain.MultiprocessingOptions(
        num_workers=config.data.workers, per_worker_buffer_size=config.data.prefetch
    )
    return ds.to_iter_dataset(read_options).mp_prefetch(workers).map(normalize_batch)


def create_dataset(
    config: ml_collections.ConfigDict,
    split: str,
    *,
    data_dir: str | None = None,
    train: bool = True,
    batch_size: int | None = None,
    edits: bool = False,
) -> grain.IterDataset:
    """This host's batches of `split`: shuffled and repeated forever when `train`, else one pass
    in order with the last global batch padded (`valid`); per-host batch `batch_size` (default
    config.train.batch_size) // jax.process_count(); `edits` as in create_host_dataset."""
    return create_host_dataset(
        config,
        split,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        data_dir=data_dir,
        train=train,
        batch_size=batch_size,
        edits=edits,
    )


def to_global_batch(
    batch: Mapping[str, np.ndarray], mesh: jax.sharding.Mesh
) -> dict[str, jax.Array]:
    """Host-local numpy batch to global arrays sharded along the batch over the ('data',) mesh."""
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    return {
        key: jax.make_array_from_process_local_data(sharding, value) for key, value in batch.items()
    }
