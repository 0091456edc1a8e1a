"""PNG figures drawn with PIL: edit grids, attention maps, loss curves and bar charts."""

import math
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
BAR_COLOURS = ((70, 110, 190), (220, 130, 50), (90, 160, 90), (170, 80, 160))
LINE_HEIGHT = 12  # Pixels per text line of PIL's default font.
CHAR_WIDTH = 6  # Pixels per character of PIL's default font.
MIN_TILE = 128  # Images smaller than this are enlarged (nearest) by an integer factor.


def enlarge(pixels: np.ndarray) -> np.ndarray:
    """Nearest-neighbour enlargement of a uint8 (H, W, C) image to at least MIN_TILE pixels."""
    factor = max(1, math.ceil(MIN_TILE / pixels.shape[0]))
    return np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1)


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    """A uint8 (H, W, 1) or (H, W, 3) image as (H, W, 3)."""
    return np.broadcast_to(pixels, (*pixels.shape[:2], 3)) if pixels.shape[-1] == 1 else pixels


def grid_rows(
    rows: Sequence[Sequence[np.ndarray]],
    captions: Sequence[str],
    headers: Sequence[str],
    text_width: int = 360,
) -> Image.Image:
    """Rows of uint8 tiles (each tile enlarged) with a header line and a wrapped caption per row."""
    tiles = [[enlarge(to_rgb(tile)) for tile in row] for row in rows]
    side = tiles[0][0].shape[0]
    width = side * len(tiles[0]) + text_width
    canvas = Image.new("RGB", (width, LINE_HEIGHT + 4 + side * len(tiles)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for column, header in enumerate(headers):
        draw.text((column * side + 4, 2), header, fill=INK)
    for index, (row, caption) in enumerate(zip(tiles, captions, strict=True)):
        top = LINE_HEIGHT + 4 + index * side
        canvas.paste(Image.fromarray(np.concatenate(row, axis=1)), (0, top))
        lines = textwrap.wrap(caption, max(1, (text_width - 8) // CHAR_WIDTH))
        for line_index, line in enumerate(lines):
            draw.text((side * len(row) + 4, top + 4 + line_index * LINE_HEIGHT), line, fill=INK)
    return canvas


def attention_tiles(attention: np.ndarray, length: int, side: int) -> list[np.ndarray]:
    """The first `length` word maps of (h, w, T) attention as uint8 tiles of side `side`, each
    scaled to its own maximum."""
    tiles = []
    for word in range(length):
        values = attention[..., word]
        scaled = values / max(float(values.max()), 1e-12)
        pixels = np.round(scaled * 255).astype(np.uint8)[..., None]
        factor = max(1, side // pixels.shape[0])
        tiles.append(np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1))
    return tiles


def attention_figure(
    images: Sequence[np.ndarray],
    attentions: Sequence[np.ndarray],
    words: Sequence[Sequence[str]],
) -> Image.Image:
    """Per row: the edited image, then each word's attention map with the word beneath it."""
    side = enlarge(images[0]).shape[0]
    columns = 1 + max(len(w) for w in words)
    canvas = Image.new("RGB", (side * columns, (side + LINE_HEIGHT + 2) * len(images)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for index, (image, attention, row_words) in enumerate(
        zip(images, attentions, words, strict=True)
    ):
        top = index * (side + LINE_HEIGHT + 2)
        canvas.paste(Image.fromarray(enlarge(image)), (0, top))
        for column, tile in enumerate(attention_tiles(attention, len(row_words), side), 1):
            canvas.paste(Image.fromarray(to_rgb(tile).copy()), (column * side, top))
            draw.text((column * side + 2, top + side), row_words[column - 1][:12], fill=INK)
    return canvas


def line_charts(series: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> Image.Image:
    """Small multiples: one panel per named (steps, values) series, four panels per row."""
    panel_w, panel_h, columns = 260, 150, 4
    rows = max(1, math.ceil(len(series) / columns))
    canvas = Image.new("RGB", (panel_w * columns, panel_h * rows), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for index, (name, (steps, values)) in enumerate(series.items()):
        left, top = (index % columns) * panel_w, (index // columns) * panel_h
        box = (left + 40, top + 18, left + panel_w - 10, top + panel_h - 18)
        draw.rectangle(box, outline=INK)
        draw.text((left + 4, top + 2), name, fill=INK)
        low, high = float(np.min(values)), float(np.max(values))
        span, first, last = (high - low) or 1.0, float(steps[0]), float(steps[-1])
        points = [
            (
                box[0] + (box[2] - box[0]) * ((s - first) / ((last - first) or 1.0)),
                box[3] - (box[3] - box[1]) * ((v - low) / span),
            )
            for s, v in zip(steps, values, strict=True)
        ]
        if len(points) > 1:
            draw.line(points, fill=BAR_COLOURS[0], width=2)
        draw.text((left + 2, box[1]), f"{high:.3g}", fill=INK)
        draw.text((left + 2, box[3] - LINE_HEIGHT), f"{low:.3g}", fill=INK)
        draw.text((box[0], box[3] + 2), f"step {first:g}..{last:g}", fill=INK)
    return canvas


def bar_chart(
    title: str, labels: Sequence[str], groups: Mapping[str, Sequence[float | None]]
) -> Image.Image:
    """Grouped horizontal bars: one group per label, one bar per named series (None = no bar)."""
    bar_h, gap, label_w, plot_w = 14, 10, 220, 360
    names = list(groups)
    group_h = bar_h * len(names) + gap
    height = 2 * LINE_HEIGHT + 12 + group_h * len(labels) + LINE_HEIGHT * len(names)
    canvas = Image.new("RGB", (label_w + plot_w + 80, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), title, fill=INK)
    finite = [abs(v) for series in groups.values() for v in series if v is not None]
    scale = plot_w / max(max(finite, default=1.0), 1e-12)
    top = LINE_HEIGHT + 8
    for index, label in enumerate(labels):
        y = top + index * group_h
        draw.text((4, y), label[: label_w // CHAR_WIDTH], fill=INK)
        for series_index, name in enumerate(names):
            value = groups[name][index]
            if value is None:
                continue
            y0 = y + series_index * bar_h
            colour = BAR_COLOURS[series_index % len(BAR_COLOURS)]
            draw.rectangle((label_w, y0, label_w + abs(value) * scale, y0 + bar_h - 2), fill=colour)
            draw.text((label_w + abs(value) * scale + 4, y0), f"{value:.4g}", fill=INK)
    legend = top + group_h * len(labels) + 4
    for series_index, name in enumerate(names):
        y = legend + series_index * LINE_HEIGHT
        colour = BAR_COLOURS[series_index % len(BAR_COLOURS)]
        draw.rectangle((4, y + 2, 12, y + 10), fill=colour)
        draw.text((16, y), name, fill=INK)
    return canvas
