"""The caption sweep of a toy_birds model: test images edited with sentences naming colours.

Every toy_birds test image i < config.evaluate.sweep_images is edited (seed i) with
`toy_birds.PROBE_TEMPLATE` in each SWEEP_COLOURS colour, and with BINDING_TEMPLATE for each
BINDING_PAIRS pair. `colour_following` measures, for each colour and over all of them, how often
the edit asked for a colour is the one whose body and wings come nearest to it (chance 1/6), the
same over the parts the sentence does not name (1/6 when the edits keep them), and how often the
body and the wings take their own colour of a pair rather than the other part's (BINDING: 0.5
when the edits ignore which part a colour names); the figure `caption_sweep` shows the probe
edits of the first SWEEP_IMAGES rows, so one look shows whether the colours follow the words.
`jaxmani evaluate` writes both for every toy_birds model.
"""

import dataclasses

import numpy as np
from PIL import Image

from jaxmani.data import toy_birds
from jaxmani.edit.manipulator import Manipulator
from jaxmani.evaluate import figures, metrics
from jaxmani.progress import stage

SWEEP_FILE = "caption_sweep.png"
SWEEP_COLOURS = ("red", "blue", "yellow", "green", "white", "black")
SWEEP_IMAGES = 4  # Rows of the figure.
PROBE_PARTS = ("body", "wing")  # The parts toy_birds.PROBE_TEMPLATE gives its colour.
UNNAMED_PARTS = tuple(part for part in toy_birds.PART_NAMES if part not in PROBE_PARTS)
ACCURACY = "sweep_colour_accuracy"  # The metric over all colours; per colour, accuracy_name(c).
UNNAMED = "sweep_unnamed_following"  # ACCURACY's measure over UNNAMED_PARTS: 1/6 if kept.
BINDING_TEMPLATE = "this bird has a {0} body and {1} wings"  # PROBE_PARTS' colours, in order.
# Neighbouring sweep colours, each pair in both orders, so an edit blind to the order scores 0.5.
_NEIGHBOURS = tuple(zip(SWEEP_COLOURS, SWEEP_COLOURS[1:] + SWEEP_COLOURS[:1], strict=True))
BINDING_PAIRS = _NEIGHBOURS + tuple((b, a) for a, b in _NEIGHBOURS)
BINDING = "sweep_binding_accuracy"  # Body and wings nearer their own colour of a pair: 0.5 blind.


def accuracy_name(colour: str) -> str:
    """The metric name of one sweep colour's accuracy."""
    return f"sweep_accuracy_{colour}"


@dataclasses.dataclass(frozen=True)
class SweepRow:
    """One test image and its edits (uint8, the image's size): one per `sweep_texts()` text."""

    example: dict[str, object]
    edits: list[np.ndarray]


def sweep_texts() -> list[str]:
    """The sweep's sentences: the probe in every SWEEP_COLOURS colour, then every binding pair."""
    probes = [toy_birds.PROBE_TEMPLATE.format(colour) for colour in SWEEP_COLOURS]
    return probes + [BINDING_TEMPLATE.format(*pair) for pair in BINDING_PAIRS]


def sweep_rows(manipulator: Manipulator, count: int) -> list[SweepRow]:
    """Test images 0 .. count-1, each edited (seed = its index) with every sweep sentence."""
    texts = sweep_texts()
    rows = []
    with stage("evaluate", f"caption sweep of {count} test images, {len(texts)} sentences each"):
        for index in range(count):
            example = toy_birds.generate_example(
                toy_birds.example_seed("test", index), manipulator.image_size
            )
            edits = manipulator.edit(np.asarray(example["image"]), texts, seed=index).images
            rows.append(SweepRow(example, edits))
    return rows


def edits_of(rows: list[SweepRow], index: int) -> np.ndarray:
    """The edits for sentence `sweep_texts()[index]` of every row: (rows, H, W, 3) uint8."""
    return np.stack([row.edits[index] for row in rows])


def probe_part_masks(rows: list[SweepRow], part_names: tuple[str, ...]) -> np.ndarray:
    """The rows' masks of `part_names`: (rows, H, W, parts) float32."""
    parts = [toy_birds.PART_NAMES.index(part) for part in part_names]
    masks = np.stack([np.asarray(row.example["part_masks"])[..., parts] for row in rows])
    return masks.astype(np.float32)


def colour_following(rows: list[SweepRow]) -> dict[str, float]:
    """Per sweep colour (accuracy_name) and averaged over them (ACCURACY): for each visible
    PROBE_PARTS part of each image, whether of the image's six edits the one asked for that colour
    has the part's mean colour nearest to it (ties share the credit), so an edit that ignores the
    words scores 1/6 and one that paints each named colour 1. UNNAMED is the same average over the
    parts the sentence does not name: 1/6 when the edits keep them, 1 when they paint the whole
    bird; BINDING is `binding_credit`."""
    per_colour = following_credit(rows, PROBE_PARTS)
    named = {accuracy_name(c): v for c, v in zip(SWEEP_COLOURS, per_colour, strict=True)}
    unnamed = float(np.mean(following_credit(rows, UNNAMED_PARTS)))
    return {
        ACCURACY: float(np.mean(per_colour)),
        **named,
        UNNAMED: unnamed,
        BINDING: binding_credit(rows),
    }


def following_credit(rows: list[SweepRow], part_names: tuple[str, ...]) -> list[float]:
    """Per SWEEP_COLOURS colour: the mean credit, over the visible `part_names` parts of every
    image, of that colour's edit being the one whose part mean is nearest to the colour."""
    masks = probe_part_masks(rows, part_names)
    visible = np.asarray(metrics.visible_parts(masks))
    means = np.stack(
        [
            np.asarray(metrics.part_means(edits_of(rows, index).astype(np.float32), masks))
            for index in range(len(SWEEP_COLOURS))
        ]
    )  # (colours, images, parts, 3)
    credits = []
    for index, colour in enumerate(SWEEP_COLOURS):
        target = toy_birds.PALETTE_RGB[toy_birds.COLOR_NAMES.index(colour)]
        distances = np.sum(np.square(means - target), axis=-1)
        nearest = distances == distances.min(axis=0)
        credits.append(float(np.mean((nearest[index] / nearest.sum(axis=0))[visible])))
    return credits


def binding_credit(rows: list[SweepRow]) -> float:
    """Over every BINDING_PAIRS edit and visible PROBE_PARTS part of every row: whether the part's
    mean colour is nearer the colour the sentence gives it than the other part's colour (ties
    half). Each pair comes in both orders, so an edit that ignores which part a colour names
    scores 0.5, one that paints each part its own colour 1, one that swaps them 0."""
    masks = probe_part_masks(rows, PROBE_PARTS)
    visible = np.asarray(metrics.visible_parts(masks))
    palette = {c: toy_birds.PALETTE_RGB[toy_birds.COLOR_NAMES.index(c)] for c in SWEEP_COLOURS}
    credits = []
    for index, pair in enumerate(BINDING_PAIRS, start=len(SWEEP_COLOURS)):
        edits = edits_of(rows, index).astype(np.float32)
        means = np.asarray(metrics.part_means(edits, masks))  # (rows, parts, 3)
        own = np.stack([palette[c] for c in pair])
        other = own[::-1]
        to_own = np.sum(np.square(means - own), axis=-1)
        to_other = np.sum(np.square(means - other), axis=-1)
        credit = (to_own < to_other) + 0.5 * (to_own == to_other)
        credits.append(credit[visible])
    return float(np.mean(np.concatenate(credits)))


def caption_sweep(rows: list[SweepRow]) -> Image.Image:
    """A grid: the first SWEEP_IMAGES rows, each a test image and its edits in every colour."""
    shown = rows[:SWEEP_IMAGES]
    images = [[np.asarray(row.example["image"]), *row.edits[: len(SWEEP_COLOURS)]] for row in shown]
    captions = [row.example["captions"][0] for row in shown]
    headers = ["test image", *SWEEP_COLOURS]
    return figures.grid_rows(images, captions, headers, text_width=240)
