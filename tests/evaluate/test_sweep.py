"""The caption sweep's colour-following metric, with stand-ins for the manipulator."""

import types

import numpy as np
import pytest

from jaxmani.data import toy_birds
from jaxmani.evaluate import sweep

COUNT = 5


def named_colour(text: str) -> str:
    """The sweep colour a probe sentence names."""
    return next(c for c in sweep.SWEEP_COLOURS if text == toy_birds.PROBE_TEMPLATE.format(c))


class Painter:
    """Stands in for a Manipulator: every edit is the whole image in one palette colour."""

    image_size = 64

    def __init__(self, colour_of):
        self.colour_of, self.seeds = colour_of, []

    def edit(self, image, texts, seed):
        self.seeds.append(seed)
        colours = [toy_birds.PALETTE[self.colour_of(text)] for text in texts]
        return types.SimpleNamespace(images=[np.full(image.shape, c, np.uint8) for c in colours])


def test_rows_are_the_test_images_edited_with_their_index_as_seed():
    painter = Painter(named_colour)
    rows = sweep.sweep_rows(painter, COUNT)
    assert painter.seeds == list(range(COUNT))
    for index, row in enumerate(rows):
        example = toy_birds.generate_example(toy_birds.example_seed("test", index), 64)
        np.testing.assert_array_equal(row.example["image"], example["image"])
        assert len(row.edits) == len(sweep.SWEEP_COLOURS)


def test_edits_in_the_named_colour_score_one_everywhere():
    values = sweep.colour_following(sweep.sweep_rows(Painter(named_colour), COUNT))
    every = {sweep.accuracy_name(colour): 1.0 for colour in sweep.SWEEP_COLOURS}
    assert values == {sweep.ACCURACY: 1.0, **every, sweep.UNNAMED: 1.0}


def test_edits_of_only_the_named_parts_leave_the_unnamed_ones_at_one_sixth():
    probe = [toy_birds.PART_NAMES.index(part) for part in sweep.PROBE_PARTS]
    rows = []
    for row in sweep.sweep_rows(Painter(named_colour), COUNT):
        image = np.asarray(row.example["image"])
        named = np.asarray(row.example["part_masks"])[..., probe].sum(-1, keepdims=True) > 0
        edits = [np.where(named, painted, image) for painted in row.edits]
        rows.append(sweep.SweepRow(row.example, edits))
    values = sweep.colour_following(rows)
    assert values[sweep.ACCURACY] == 1.0
    assert values[sweep.UNNAMED] == pytest.approx(1 / len(sweep.SWEEP_COLOURS))


@pytest.mark.parametrize("edit", ["one colour", "the input"])
def test_edits_that_ignore_the_sentence_score_one_sixth(edit):
    rows = sweep.sweep_rows(Painter(lambda text: "blue"), COUNT)
    if edit == "the input":
        rows = [sweep.SweepRow(r.example, [r.example["image"]] * len(r.edits)) for r in rows]
    values = sweep.colour_following(rows)
    chance = 1 / len(sweep.SWEEP_COLOURS)
    assert values == pytest.approx({name: chance for name in values})


def test_edits_in_the_wrong_colours_score_zero():
    colours = sweep.SWEEP_COLOURS
    shifted = dict(zip(colours, colours[1:] + colours[:1], strict=True))
    rows = sweep.sweep_rows(Painter(lambda text: shifted[named_colour(text)]), COUNT)
    assert set(sweep.colour_following(rows).values()) == {0.0}
