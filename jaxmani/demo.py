"""The embedded demo: toy_birds built offline, every network initialised, one manipulation pass.

The networks carry seeded random weights (no training yet), so the edited images are noise; the demo
shows that data, input pipeline, text and image encoders, VGG and the generator run end to end.
Each step prints a status line on stderr.
"""

import os

import jax
import ml_collections
import numpy as np
from PIL import Image

from jaxmani import generate
from jaxmani.data import pipeline, prepare
from jaxmani.models import registry
from jaxmani.progress import stage

DEMO_EXAMPLES = {"train": 16, "test": 8}
NETWORKS = ("generator", *generate.FROZEN_NETWORKS)
LABEL = "demo"


def demo_config(config: ml_collections.ConfigDict, vocab_size: int) -> ml_collections.ConfigDict:
    """A copy of `config` on toy_birds with the dataset's vocabulary and a batch the test split
    fills (at most its DEMO_EXAMPLES["test"] images)."""
    config = config.copy_and_resolve_references()
    with config.unlocked():
        config.data.name = "toy_birds"
        config.model.text.vocab_size = vocab_size
        config.train.batch_size = min(config.train.batch_size, DEMO_EXAMPLES["test"])
    return config


def edit(
    config: ml_collections.ConfigDict,
    networks: generate.Networks,
    variables: dict[str, dict],
    batch: dict[str, jax.Array],
    rng: jax.Array,
) -> jax.Array:
    """The generator's eval-mode edit of the batch's images for their edit captions."""
    frozen = {name: variables[name] for name in generate.FROZEN_NETWORKS}
    z_rng, noise_rng = jax.random.split(rng)
    z = generate.sample_z(z_rng, batch["image"].shape[0], config)
    captions, lengths = batch["edit_caption"], batch["edit_caption_length"]
    args = (frozen, batch["image"], captions, lengths, z)
    return generate.edit(networks, variables["generator"], *args, noise_rng=noise_rng)["image"]


def run_demo(config: ml_collections.ConfigDict, workdir: str) -> str:
    """Builds a small toy_birds, edits its test images with random-weight networks, saves a grid.

    The grid has one row per image: original | ground-truth edit | generator output for the edit
    caption.
    """
    data_dir = os.path.join(workdir, "data")
    prepare.prepare_dataset("toy_birds", data_dir, num_examples=DEMO_EXAMPLES)
    config = demo_config(config, len(prepare.load_vocabulary("toy_birds", data_dir)))
    test = pipeline.create_dataset(config, "test", data_dir=data_dir, train=False)
    batch = {key: np.asarray(value) for key, value in next(iter(test)).items()}
    rng = jax.random.key(config.seed)
    variables = {}
    for index, name in enumerate(NETWORKS):
        with stage(LABEL, f"initialising the {name} (seeded random weights)"):
            variables[name] = registry.init_variables(name, config, jax.random.fold_in(rng, index))
    networks = generate.create_networks(config)
    inputs = {key: batch[key] for key in ("image", "edit_caption", "edit_caption_length")}
    with stage(LABEL, f"compiling and running the edit of {len(batch['image'])} test images"):
        fn = jax.jit(lambda v, b, r: edit(config, networks, v, b, r))
        output = np.asarray(fn(variables, inputs, jax.random.fold_in(rng, len(NETWORKS))))
    rows = zip(batch["image"], batch["edit_image"], output, strict=True)
    grid = np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)
    path = os.path.join(workdir, "demo_grid.png")
    Image.fromarray(pipeline.to_uint8(grid)).save(path)
    return path
