"""The embedded demo: toy_birds built offline, every network initialised, one manipulation pass.

The networks carry seeded random weights (no training yet), so the edited images are noise; the demo
shows that data, text and image encoders, VGG and the generator run end to end on this machine.
"""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxmani.data import prepare
from jaxmani.data.text import Vocabulary, tokenize
from jaxmani.models import registry

DEMO_EXAMPLES = {"train": 16, "test": 8}


def encode_captions(
    captions: list[str], vocabulary: Vocabulary, words_num: int
) -> tuple[np.ndarray, np.ndarray]:
    """Word ids (B, words_num) zero-padded and first-`words_num` truncated, with lengths."""
    tokens = np.zeros((len(captions), words_num), np.int32)
    lengths = np.zeros((len(captions),), np.int32)
    for i, caption in enumerate(captions):
        ids = vocabulary.encode(tokenize(caption))[:words_num]
        tokens[i, : len(ids)] = ids
        lengths[i] = len(ids)
    return tokens, lengths


def to_model_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 NHWC images -> float32 in [-1, 1] at `size` x `size` (PIL bilinear)."""
    resized = [
        np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images
    ]
    return np.stack(resized).astype(np.float32) / 127.5 - 1.0


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] float images -> uint8, rounded and clipped."""
    return np.clip(np.round((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def run_demo(config: ml_collections.ConfigDict, workdir: str) -> str:
    """Builds a small toy_birds, edits its test images with random-weight networks, saves a grid."""
    data_dir = os.path.join(workdir, "data")
    prepare.prepare_dataset("toy_birds", data_dir, num_examples=DEMO_EXAMPLES)
    vocabulary = prepare.load_vocabulary("toy_birds", data_dir)
    source = tfds.data_source("toy_birds", data_dir=data_dir, split="test", download=False)
    examples = [source[i] for i in range(config.train.batch_size)]
    config = config.copy_and_resolve_references()
    with config.unlocked():
        config.model.vocab_size = len(vocabulary)
    size = config.data.image_size
    images = to_model_images(np.stack([e["image"] for e in examples]), size)
    tokens, lengths = encode_captions(
        [e["edit_caption"].decode() for e in examples], vocabulary, config.data.words_num
    )
    rng = jax.random.key(config.seed)
    variables = {
        name: registry.init_variables(name, config, jax.random.fold_in(rng, i))
        for i, name in enumerate(("generator", "text_encoder", "image_encoder", "vgg"))
    }
    apply = {n: registry.create_network(n, config).apply for n in variables}
    words, sentence = apply["text_encoder"](variables["text_encoder"], tokens, lengths)
    region, code = apply["image_encoder"](variables["image_encoder"], images)
    vgg = apply["vgg"](variables["vgg"], images)
    outputs = apply["generator"](
        variables["generator"],
        z=jax.random.normal(jax.random.fold_in(rng, 99), (len(examples), config.model.z_dim)),
        sent_emb=sentence,
        words_emb=words,
        mask=jnp.asarray(tokens == 0),
        cnn_code=code,
        region_features=region,
        vgg_features=vgg,
        train=False,
        rngs={"noise": jax.random.fold_in(rng, 100)},
    )
    targets = to_model_images(np.stack([e["edit_image"] for e in examples]), size)
    rows = [
        np.concatenate(row, axis=1) for row in zip(images, targets, outputs["image"], strict=True)
    ]
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "demo_grid.png")
    Image.fromarray(to_uint8(np.concatenate(rows, axis=0))).save(path)
    return path
