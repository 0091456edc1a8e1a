"""The caption sweep of a toy_birds model: test images edited with one sentence in many colours.

Each row is a toy_birds test image followed by its edits with `toy_birds.PROBE_TEMPLATE` in every
SWEEP_COLOURS colour, so one look shows whether the colours follow the words. `jaxmani evaluate`
writes it as SWEEP_FILE beside the edit grid for every toy_birds model.
"""

import numpy as np
from PIL import Image

from jaxmani.data import toy_birds
from jaxmani.edit.manipulator import Manipulator
from jaxmani.evaluate import figures

SWEEP_FILE = "caption_sweep.png"
SWEEP_COLOURS = ("red", "blue", "yellow", "green", "white", "black")
SWEEP_IMAGES = 4


def caption_sweep(manipulator: Manipulator) -> Image.Image:
    """A grid: rows of a toy_birds test image and its probe-sentence edits in each colour."""
    texts = [toy_birds.PROBE_TEMPLATE.format(colour) for colour in SWEEP_COLOURS]
    rows, captions = [], []
    for index in range(SWEEP_IMAGES):
        seed = toy_birds.example_seed("test", index)
        example = toy_birds.generate_example(seed, manipulator.image_size)
        image = np.asarray(example["image"])
        rows.append([image, *manipulator.edit(image, texts, seed=index).images])
        captions.append(example["captions"][0])
    headers = ["test image", *SWEEP_COLOURS]
    return figures.grid_rows(rows, captions, headers, text_width=240)
