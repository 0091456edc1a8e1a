"""The embedded demo: toy_birds built offline, every network initialised, one manipulation pass.

The networks carry seeded random weights (no training yet), so the edited images are noise; the demo
shows that data, input pipeline, text and image encoders, VGG and the generator run end to end.
"""

import os

import jax
import ml_collections
import numpy as np
from PIL import Image

from jaxmani.data import pipeline, prepare
from jaxmani.models import registry

DEMO_EXAMPLES = {"train": 16, "test": 8}
NETWORKS = ("generator", "text_encoder", "image_encoder", "vgg")


def run_demo(config: ml_collections.ConfigDict, workdir: str) -> str:
    """Builds a small toy_birds, edits its test images with random-weight networks, saves a grid.

    The grid has one row per image: original | ground-truth edit | generator output for the edit
    caption.
    """
    data_dir = os.path.join(workdir, "data")
    prepare.prepare_dataset("toy_birds", data_dir, num_examples=DEMO_EXAMPLES)
    config = config.copy_and_resolve_references()
    with config.unlocked():
        config.data.name = "toy_birds"
        config.model.text.vocab_size = len(prepare.load_vocabulary("toy_birds", data_dir))
    batch = next(iter(pipeline.create_dataset(config, "test", data_dir=data_dir, train=False)))
    rng = jax.random.key(config.seed)
    variables = {
        name: registry.init_variables(name, config, jax.random.fold_in(rng, i))
        for i, name in enumerate(NETWORKS)
    }
    apply = {name: registry.create_network(name, config).apply for name in NETWORKS}
    words, sentence = apply["text_encoder"](
        variables["text_encoder"], batch["edit_caption"], batch["edit_caption_length"]
    )
    region, code = apply["image_encoder"](variables["image_encoder"], batch["image"])
    outputs = apply["generator"](
        variables["generator"],
        z=jax.random.normal(
            jax.random.fold_in(rng, len(NETWORKS)), (len(code), config.model.g.z_dim)
        ),
        sent_emb=sentence,
        words_emb=words,
        mask=batch["edit_caption"] == 0,
        cnn_code=code,
        region_features=region,
        vgg_features=apply["vgg"](variables["vgg"], batch["image"]),
        train=False,
        rngs={"noise": jax.random.fold_in(rng, len(NETWORKS) + 1)},
    )
    rows = zip(batch["image"], batch["edit_image"], np.asarray(outputs["image"]), strict=True)
    grid = np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "demo_grid.png")
    Image.fromarray(pipeline.to_uint8(grid)).save(path)
    return path
