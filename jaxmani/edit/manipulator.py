"""The editing API: a trained or converted model that edits images of any size with sentences.

    manipulator = Manipulator.from_workdir("runs/baseline")
    result = manipulator.edit(pixels, "a red bird with black wings", seed=0)
    result.images[0]  # (H, W, 3) uint8, the size of `pixels`

Geometry, the crop the model expects: training shows the networks S x S crops of images whose
shorter side was resized to int(S * 76 / 64) (BASELINE_SPEC §2.2), so a crop spans 64/76 of the
shorter side. An edit takes that window from the centre of the image: a square of side
round(min(H, W) * S / int(S * 76 / 64)), at ((W - side) // 2, (H - side) // 2), resized to S x S
(PIL bilinear, antialiased). The edited window is resized back to side x side (PIL bilinear) and
pasted into a copy of the image: pixels outside the window are the caller's, unchanged, and the
background mask is 1 (kept) there. Inside it the mask is the histogram-matching mask of real and
edit at S x S (config.loss.g.mask_threshold; the adaptive one when the config trains with it),
resized back bilinearly, so soft at its borders.

Noise: every row of a call gets the same z (and CA noise under compat.ca_noise_at_eval), drawn
from `seed` with numpy, so an edit depends only on its image, caption and seed: the same seed
gives the same edit, and one image with K captions gives the K single edits. That holds while the
baseline's batch-coupling switches compat.skip_init_bn_at_batch_one (the seed's init BatchNorm
skipped at batch 1), compat.attention_mask_other_sample and compat.channel_attention_batch_padding
are off (the default); with them on, the batch changes the result as it does in the baseline.

Captions are tokenised as the datasets are; words outside the vocabulary are skipped and named in
the result's warnings; a caption with more known words than config.data.words_num keeps that many
at random distinct positions in their order (the baseline's get_caption, drawn from `seed`).
"""

import dataclasses
import functools
import os
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
from PIL import Image

from jaxmani import generate, params_io
from jaxmani.data import pipeline
from jaxmani.data.text import Vocabulary, load_vocabulary_file, tokenize
from jaxmani.edit import images as image_io
from jaxmani.errors import UserError
from jaxmani.losses import mask
from jaxmani.models import registry
from jaxmani.train import checkpoint, loop

ADAPTIVE_SOURCE = "hm_adaptive"


@dataclasses.dataclass(frozen=True)
class Caption:
    """One caption as the model reads it."""

    ids: np.ndarray  # (T,) int32 word ids, 0 = padding.
    length: int
    words: tuple[str, ...]  # The words kept, in order (attention column t is words[t]).
    warnings: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class EditResult:
    """The edits of one `Manipulator.edit` call, one entry per caption."""

    images: list[np.ndarray]  # (H, W, 3) uint8, each at the size of its input image.
    masks: list[np.ndarray]  # (H, W) float32 in [0, 1]: 1 = background kept, 0 = edited.
    attention: np.ndarray  # (B, S/4, S/4, T) float32 word attention of G's last stage.
    words: list[tuple[str, ...]]  # The words each caption was read as.
    model_images: np.ndarray  # (B, S, S, 3) float32 in [-1, 1]: the edits at the model's size.
    warnings: list[str]  # Skipped unknown words and shortened captions, one line each.


def encode_caption(
    text: str, label: str, vocabulary: Vocabulary, words_num: int, seed: int
) -> Caption:
    """Word ids of `text` (padded to words_num), or a UserError when no word of it is known."""
    if not text.strip():
        raise UserError(f"{label} is empty; describe the edit in a sentence")
    tokens = tokenize(text)
    unknown = list(dict.fromkeys(token for token in tokens if not vocabulary.encode([token])))
    ids = np.asarray(vocabulary.encode(tokens), np.int32)
    if not len(ids):
        listed = f" (not in the vocabulary: {', '.join(unknown)})" if unknown else ""
        raise UserError(
            f"{label} {text!r} has no word the model knows{listed}; describe the edit in other "
            "words"
        )
    notes = []
    if unknown:
        notes.append(f"{label}: skipped words not in the vocabulary: {', '.join(unknown)}")
    if len(ids) > words_num:
        notes.append(
            f"{label}: {len(ids)} known words, more than the model's {words_num}; kept "
            f"{words_num} at random positions, in order, as the baseline does"
        )
    padded, length = pipeline.fit_caption(ids, words_num, np.random.default_rng(seed))
    return Caption(padded, int(length), tuple(vocabulary.decode(padded)), tuple(notes))


def window_box(width: int, height: int, image_size: int) -> tuple[int, int, int]:
    """(left, top, side) of the centred square the model edits (see the module docstring)."""
    load_size = pipeline.compute_load_size(image_size)
    side = max(1, round(min(width, height) * image_size / load_size))
    return (width - side) // 2, (height - side) // 2, side


def to_model(pixels: np.ndarray, box: tuple[int, int, int], image_size: int) -> np.ndarray:
    """The window of uint8 pixels resized to (S, S, 3) float32 in [-1, 1]."""
    left, top, side = box
    window = Image.fromarray(pixels).resize(
        (image_size, image_size),
        Image.Resampling.BILINEAR,
        box=(left, top, left + side, top + side),
    )
    return pipeline.to_unit_range(np.asarray(window))


def from_model(
    pixels: np.ndarray, edit: np.ndarray, background: np.ndarray, box: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Pastes a uint8 (S, S, 3) edit and its (S, S) mask back into the caller's window."""
    left, top, side = box
    image = pixels.copy()
    image[top : top + side, left : left + side] = Image.fromarray(edit).resize(
        (side, side), Image.Resampling.BILINEAR
    )
    kept = np.ones(pixels.shape[:2], np.float32)
    kept[top : top + side, left : left + side] = Image.fromarray(
        background.astype(np.float32)
    ).resize((side, side), Image.Resampling.BILINEAR)
    return image, np.clip(kept, 0.0, 1.0)


def edit_forward(
    networks: generate.Networks,
    mask_source: str,
    threshold: float,
    g_variables: dict[str, Any],
    frozen: dict[str, Any],
    images: jax.Array,
    captions: jax.Array,
    lengths: jax.Array,
    z: jax.Array,
    ca_eps: jax.Array,
) -> dict[str, jax.Array]:
    """`generate.edit` plus the background mask: `image`, `mask` (B, S, S), `attention`."""
    outputs = generate.edit(networks, g_variables, frozen, images, captions, lengths, z, ca_eps)
    real = generate.broadcast_images(images, captions.shape[0])
    kept = mask.background_mask(mask_source, real, outputs["image"], None, threshold)
    return {"image": outputs["image"], "mask": kept[..., 0], "attention": outputs["attention"]}


def edit_noise(
    seed: int, batch: int, config: ml_collections.ConfigDict
) -> tuple[np.ndarray, np.ndarray]:
    """(z, CA eps) of `seed`: one draw each, repeated for every row of the batch."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((1, config.model.g.z_dim), np.float32)
    eps = rng.standard_normal((1, config.model.g.condition_dim), np.float32)
    return np.repeat(z, batch, axis=0), np.repeat(eps, batch, axis=0)


def as_image_list(images: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """One (H, W, 3) uint8 image, a stack of them or a list of them, as a checked list."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    listed = [np.asarray(image) for image in images]
    for index, image in enumerate(listed):
        label = f"image {index + 1}"
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise UserError(
                f"{label}: {image.dtype} {image.shape}; give (H, W, 3) uint8 RGB pixels "
                "(jaxmani.edit.images.read_image reads any image file so)"
            )
        image_io.check_size(label, image.shape[1], image.shape[0])
    return listed


class Manipulator:
    """A generator with its frozen encoders and vocabulary, ready to edit images with sentences."""

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        vocabulary: Vocabulary,
        g_variables: dict[str, Any],
        frozen: dict[str, Any],
    ):
        if len(vocabulary) != config.model.text.vocab_size:
            raise UserError(
                f"the vocabulary has {len(vocabulary)} words but the text encoder "
                f"config.model.text.vocab_size={config.model.text.vocab_size}; give the "
                "vocabulary the model was trained with"
            )
        self.config = config
        self.vocabulary = vocabulary
        self.networks = generate.create_networks(config)
        self.g_variables, self.frozen = jax.device_put((g_variables, frozen))
        source = config.loss.g.mask_source
        self.mask_source = ADAPTIVE_SOURCE if source == ADAPTIVE_SOURCE else "hm"
        self.compiled: dict[tuple[int, int], Any] = {}

    @classmethod
    def from_workdir(cls, workdir: str) -> "Manipulator":
        """The latest checkpoint's G-EMA, the frozen networks of the saved config, its vocabulary.

        The frozen networks are the config's params files, else the seeded random weights that
        training drew (the same key), so a toy run edits with the encoders it was trained with.
        """
        config = checkpoint.read_run_config(workdir)
        vocabulary = load_vocabulary_file(os.path.join(workdir, "vocabulary.json"))
        step, g_variables = checkpoint.restore_generator(workdir)
        params_io.check_variables(
            f"checkpoint {step} in {checkpoint.checkpoint_dir(workdir)}",
            g_variables,
            registry.abstract_variables("generator", config),
        )
        frozen = loop.load_frozen(config, jax.random.fold_in(jax.random.PRNGKey(config.seed), 1))
        return cls(config, vocabulary, g_variables, frozen)

    @classmethod
    def from_pytorch(
        cls,
        *,
        generator: str,
        text_encoder: str,
        image_encoder: str,
        vgg: str,
        vocabulary: str,
        config: ml_collections.ConfigDict,
    ) -> "Manipulator":
        """Params files made by `jaxmani convert` from the baseline's checkpoints, its vocabulary
        (captions.pickle or a vocabulary.json) and the config they fit (vocab_size 0 = take it)."""
        words = load_vocabulary_file(vocabulary)
        config = loop.resolve_vocabulary(config, words.words)
        paths = {"text_encoder": text_encoder, "image_encoder": image_encoder, "vgg": vgg}
        frozen = {
            name: params_io.load_variables(path, name, config) for name, path in paths.items()
        }
        g_variables = params_io.load_variables(generator, "generator", config)
        return cls(config, words, g_variables, frozen)

    @property
    def image_size(self) -> int:
        """Side S of the square the networks edit."""
        return self.config.data.image_size

    def compile(self, num_images: int, num_captions: int) -> Any:
        """`edit_forward` compiled for N images and B captions, once per (N, B)."""
        key = (num_images, num_captions)
        if key not in self.compiled:
            size, words = self.image_size, self.config.data.words_num
            shapes = (
                jax.ShapeDtypeStruct((num_images, size, size, 3), np.float32),
                jax.ShapeDtypeStruct((num_captions, words), np.int32),
                jax.ShapeDtypeStruct((num_captions,), np.int32),
                jax.ShapeDtypeStruct((num_captions, self.config.model.g.z_dim), np.float32),
                jax.ShapeDtypeStruct((num_captions, self.config.model.g.condition_dim), np.float32),
            )
            forward = functools.partial(
                edit_forward, self.networks, self.mask_source, self.config.loss.g.mask_threshold
            )
            lowered = jax.jit(forward).lower(self.g_variables, self.frozen, *shapes)
            self.compiled[key] = lowered.compile()
        return self.compiled[key]

    def encode_captions(
        self, texts: Sequence[str], seed: int, labels: Sequence[str] | None = None
    ) -> list[Caption]:
        """Every caption encoded (UserErrors name them by `labels`, default 'caption 1', ...)."""
        labels = labels or [f"caption {i + 1}" for i in range(len(texts))]
        words_num = self.config.data.words_num
        return [
            encode_caption(text, label, self.vocabulary, words_num, seed)
            for text, label in zip(texts, labels, strict=True)
        ]

    def edit(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        texts: str | Sequence[str],
        *,
        seed: int = 0,
        labels: Sequence[str] | None = None,
    ) -> EditResult:
        """Edits image i with caption i, or one image with every caption (N = 1 or N = B).

        Images are (H, W, 3) uint8 of any size (a list, or one image); `labels` name the
        captions in warnings and errors.
        """
        pixels = as_image_list(images)
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts or len(pixels) not in (1, len(texts)):
            raise UserError(
                f"{len(pixels)} images for {len(texts)} captions: give one caption per image, "
                "or one image and any number of captions"
            )
        captions = self.encode_captions(texts, seed, labels)
        boxes = [window_box(p.shape[1], p.shape[0], self.image_size) for p in pixels]
        model_in = np.stack(
            [to_model(p, b, self.image_size) for p, b in zip(pixels, boxes, strict=True)]
        )
        z, eps = edit_noise(seed, len(texts), self.config)
        ids = np.stack([caption.ids for caption in captions])
        lengths = np.asarray([caption.length for caption in captions], np.int32)
        forward = self.compile(len(pixels), len(texts))
        out = jax.device_get(forward(self.g_variables, self.frozen, model_in, ids, lengths, z, eps))
        edits = pipeline.to_uint8(out["image"])
        pasted = [
            from_model(pixels[i % len(pixels)], edit, kept, boxes[i % len(pixels)])
            for i, (edit, kept) in enumerate(zip(edits, out["mask"], strict=True))
        ]
        return EditResult(
            images=[image for image, _ in pasted],
            masks=[kept for _, kept in pasted],
            attention=np.asarray(out["attention"]),
            words=[caption.words for caption in captions],
            model_images=np.asarray(out["image"]),
            warnings=[note for caption in captions for note in caption.warnings],
        )
