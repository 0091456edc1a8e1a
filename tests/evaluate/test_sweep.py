"""The caption sweep's colour-following metric, with stand-ins for the manipulator."""

import types

import numpy as np
import pytest

from jaxmani.data import toy_birds
from jaxmani.evaluate import sweep

COUNT = 5


def named_colours(text: str) -> tuple[str, str]:
    """The body's and the wings' colour a sweep sentence names (written independently)."""
    words = text.split()
    return words[4], words[7]


def named_colour(text: str) -> str:
    """The body's colour a sweep sentence names."""
    return named_colours(text)[0]


class Painter:
    """Stands in for a Manipulator: every edit is the whole image in one palette colour."""

    image_size = 64

    def __init__(self, colour_of):
        self.colour_of, self.seeds = colour_of, []

    def edit(self, image, texts, seed):
        self.seeds.append(seed)
        colours = [toy_birds.PALETTE[self.colour_of(text)] for text in texts]
        return types.SimpleNamespace(images=[np.full(image.shape, c, np.uint8) for c in colours])


class PartPainter:
    """Stands in for a Manipulator: paints the body and the wings of the (regenerated) test image
    with the colours `colours_of(text)` gives them, and keeps the other pixels."""

    image_size = 64

    def __init__(self, colours_of):
        self.colours_of = colours_of

    def edit(self, image, texts, seed):
        example = toy_birds.generate_example(toy_birds.example_seed("test", seed), 64)
        masks = np.asarray(example["part_masks"]) > 0.5
        body, wing = (masks[..., toy_birds.PART_NAMES.index(p)] for p in ("body", "wing"))
        edits = []
        for text in texts:
            body_colour, wing_colour = self.colours_of(text)
            edit = np.array(image)
            edit[body] = toy_birds.PALETTE[body_colour]
            edit[wing] = toy_birds.PALETTE[wing_colour]
            edits.append(edit)
        return types.SimpleNamespace(images=edits)


def test_sentences_are_the_probes_then_each_pair_in_both_orders():
    texts = sweep.sweep_texts()
    colours = sweep.SWEEP_COLOURS
    assert texts[: len(colours)] == [f"this bird has a {c} body and {c} wings" for c in colours]
    pairs = [named_colours(text) for text in texts[len(colours) :]]
    assert len(pairs) == 2 * len(colours) and len(set(pairs)) == len(pairs)
    assert {(b, a) for a, b in pairs} == set(pairs) and all(a != b for a, b in pairs)


def test_rows_are_the_test_images_edited_with_their_index_as_seed():
    painter = Painter(named_colour)
    rows = sweep.sweep_rows(painter, COUNT)
    assert painter.seeds == list(range(COUNT))
    for index, row in enumerate(rows):
        example = toy_birds.generate_example(toy_birds.example_seed("test", index), 64)
        np.testing.assert_array_equal(row.example["image"], example["image"])
        assert len(row.edits) == len(sweep.sweep_texts())


def test_edits_in_the_named_colour_score_one_everywhere():
    values = sweep.colour_following(sweep.sweep_rows(Painter(named_colour), COUNT))
    every = {sweep.accuracy_name(colour): 1.0 for colour in sweep.SWEEP_COLOURS}
    assert values == {sweep.ACCURACY: 1.0, **every, sweep.UNNAMED: 1.0, sweep.BINDING: 0.5}


def test_parts_in_their_own_colours_bind_and_swapped_ones_score_zero():
    bound = sweep.colour_following(sweep.sweep_rows(PartPainter(named_colours), COUNT))
    assert bound[sweep.BINDING] == 1.0 and bound[sweep.ACCURACY] == 1.0
    swapped = PartPainter(lambda text: named_colours(text)[::-1])
    assert sweep.binding_credit(sweep.sweep_rows(swapped, COUNT)) == 0.0


def test_one_swapped_pair_in_every_row_costs_one_pair_of_the_credit():
    rows = sweep.sweep_rows(PartPainter(named_colours), COUNT)
    first_pair = len(sweep.SWEEP_COLOURS)
    body_colour, wing_colour = named_colours(sweep.sweep_texts()[first_pair])
    swapped = PartPainter(lambda text: (wing_colour, body_colour))
    for index, row in enumerate(rows):
        row.edits[first_pair] = swapped.edit(row.example["image"], ["first pair"], index).images[0]
    assert sweep.binding_credit(rows) == pytest.approx(1 - 1 / len(sweep.BINDING_PAIRS))


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
    chance = {name: 1 / len(sweep.SWEEP_COLOURS) for name in values} | {sweep.BINDING: 0.5}
    assert values == pytest.approx(chance)


def test_edits_in_the_wrong_colours_score_zero():
    colours = sweep.SWEEP_COLOURS
    shifted = dict(zip(colours, colours[1:] + colours[:1], strict=True))
    rows = sweep.sweep_rows(Painter(lambda text: shifted[named_colour(text)]), COUNT)
    values = sweep.colour_following(rows)
    del values[sweep.BINDING]  # The shift paints the body's colour of one order, not a binding.
    assert set(values.values()) == {0.0}
