"""toy_birds: procedural birds with ground-truth masks and edit targets, as a TFDS dataset.

Every example is a pure function of one integer seed (numpy Generators only, no global RNG):
a background scene (sky, foliage, branch or water) with part of it defocused, one bird made of
seven parts in named colours at a random position, scale, tilt and facing, ten template captions
and a ground-truth edit (one to three parts recoloured, same geometry and background) with its
caption. The train and test splits store the same features, edit targets included, so readers
need no split-specific code; the splits differ only in their seeds.

Conventions:
- `mask` is 1 on background pixels and 0 on bird pixels (the MAE-mask convention).
- `part_masks[..., p]` is 1 where part `PART_NAMES[p]` is visible; parts never overlap, so their
  sum is `1 - mask`.
- `attributes[p]` (and `edit_attributes[p]`) index `COLOR_NAMES` for part `PART_NAMES[p]`.
- `class_id = (body * 11 + wing) * 11 + head` over colour indices, in [0, NUM_CLASSES).
- Example `index` of split `s` has seed `example_seed(s, index)` and id `example_id(s, index)`.
- Read back with `tfds.data_source`: images come as uint8 arrays, text features as UTF-8 bytes.
- The vocabulary (`Vocabulary.build` over the tokenised captions and edit captions of all splits,
  train first) is stored as `info.metadata["vocabulary"]`.
"""

import dataclasses
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar, TypeVar

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, ImageFilter

from jaxmani import interrupts
from jaxmani.data.text import Vocabulary, tokenize

PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (25, 25, 28),
    "white": (238, 238, 232),
    "red": (205, 32, 32),
    "blue": (40, 80, 205),
    "green": (45, 155, 55),
    "yellow": (242, 218, 40),
    "orange": (242, 135, 25),
    "brown": (120, 72, 35),
    "grey": (128, 128, 128),
    "pink": (242, 150, 190),
    "purple": (120, 50, 165),
}
COLOR_NAMES: tuple[str, ...] = tuple(PALETTE)
PART_NAMES: tuple[str, ...] = ("body", "wing", "head", "crown", "tail", "beak", "eye")
SCENES: tuple[str, ...] = ("sky", "foliage", "branch", "water")
NUM_CAPTIONS = 10
NUM_CLASSES = len(COLOR_NAMES) ** 3
NUM_EXAMPLES: dict[str, int] = {"train": 4000, "test": 500}
SPLIT_SEEDS: dict[str, int] = {"train": 0, "test": 1}
# A sentence in the captions' own words that gives one colour to the two largest parts: the
# caption sweep of `jaxmani evaluate` and the colour cosines of `jaxmani pretrain` use it.
PROBE_TEMPLATE = "this bird has a {0} body and {0} wings"

PALETTE_RGB = np.array(list(PALETTE.values()), dtype=np.float32)  # Row i: COLOR_NAMES[i].
_ALL = tuple(range(len(COLOR_NAMES)))
_ALLOWED_COLORS: dict[str, tuple[int, ...]] = {
    "body": _ALL,
    "wing": _ALL,
    "head": _ALL,
    "crown": _ALL,
    "tail": _ALL,
    "beak": tuple(COLOR_NAMES.index(c) for c in ("black", "grey", "orange", "yellow", "brown")),
    "eye": tuple(COLOR_NAMES.index(c) for c in ("black", "brown", "red", "yellow", "white")),
}
_EDIT_WEIGHTS = np.array([3.0, 3.0, 3.0, 2.0, 2.0, 1.0, 1.0])
_SIZE_WORDS = ((0.29, "small"), (0.36, "medium sized"), (math.inf, "large"))
_SCENE_PHRASES: dict[str, tuple[str, ...]] = {
    "sky": ("against the sky", "under an open sky", "in front of some clouds"),
    "foliage": ("among the leaves", "in a leafy tree", "in front of dense foliage"),
    "branch": ("near a branch", "by a tree branch", "next to some twigs"),
    "water": ("over the water", "near a lake", "by the water"),
}
PART_NOUNS: dict[str, tuple[str, ...]] = {
    "body": ("body", "breast", "belly"),
    "wing": ("wings",),
    "head": ("head",),
    "crown": ("crown",),
    "tail": ("tail",),
    "beak": ("beak", "bill"),
    "eye": ("eyes",),
}
_PLURAL_NOUNS = frozenset({"wings", "eyes"})
_NOUN_PART = {noun: PART_NAMES.index(part) for part, nouns in PART_NOUNS.items() for noun in nouns}
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class BirdSpec:
    """Everything random about one example except pixel-level texture; unit is the image side."""

    scene: str
    center: tuple[float, float]
    scale: float
    tilt: float
    facing_left: bool
    colors: tuple[int, ...]
    edit_colors: tuple[int, ...]


def example_seed(split: str, index: int) -> int:
    """Returns the seed of example `index` of `split` (distinct across splits)."""
    return SPLIT_SEEDS[split] * 2**32 + index


def example_id(split: str, index: int) -> str:
    """Returns the `id` feature of example `index` of `split`."""
    return f"{split}_{index:05d}"


def class_id_of(colors: Sequence[int]) -> int:
    """Returns the class id of a colour assignment: (body * 11 + wing) * 11 + head."""
    n = len(COLOR_NAMES)
    body, wing, head = (colors[PART_NAMES.index(p)] for p in ("body", "wing", "head"))
    return (body * n + wing) * n + head


def size_word(scale: float) -> str:
    """Returns the caption word for a bird of half-extent `scale` (fraction of the image side)."""
    return next(word for limit, word in _SIZE_WORDS if scale < limit)


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng((seed, stream))


def _pick(rng: np.random.Generator, options: Sequence[_T]) -> _T:
    """One element of `options`, uniformly."""
    return options[int(rng.integers(len(options)))]


def _shuffled(rng: np.random.Generator, items: Sequence[str]) -> list[str]:
    return [items[i] for i in rng.permutation(len(items))]


def _sample_colors(rng: np.random.Generator) -> tuple[int, ...]:
    colors = {p: _pick(rng, _ALLOWED_COLORS[p]) for p in PART_NAMES}
    if rng.random() < 0.35:
        colors["head"] = colors["body"]
    if rng.random() < 0.5:
        colors["crown"] = colors["head"]
    if rng.random() < 0.5:
        colors["tail"] = colors["wing"]
    return tuple(colors[p] for p in PART_NAMES)


def _sample_edit(rng: np.random.Generator, colors: tuple[int, ...]) -> tuple[int, ...]:
    num_edits = int(rng.integers(1, 4))
    parts = np.argsort(rng.random(len(PART_NAMES)) ** (1 / _EDIT_WEIGHTS))[-num_edits:]
    edited = list(colors)
    for p in parts:
        choices = [c for c in _ALLOWED_COLORS[PART_NAMES[p]] if c != colors[p]]
        edited[p] = _pick(rng, choices)
    return tuple(edited)


def sample_bird(seed: int) -> BirdSpec:
    """Draws the scene, pose, part colours and edit colours of the example with this seed."""
    rng = _rng(seed, 0)
    scale = float(rng.uniform(0.22, 0.42))
    colors = _sample_colors(rng)
    return BirdSpec(
        scene=SCENES[int(rng.integers(len(SCENES)))],
        center=(float(rng.uniform(scale, 1 - scale)), float(rng.uniform(scale, 1 - scale))),
        scale=scale,
        tilt=float(rng.uniform(-0.35, 0.35)),
        facing_left=bool(rng.random() < 0.5),
        colors=colors,
        edit_colors=_sample_edit(rng, colors),
    )


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1]: (x, y), each (size, size)."""
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(coords, coords)


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a + (b - a) * t[..., None]


def _rotate(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = math.cos(angle), math.sin(angle)
    return c * x + s * y, -s * x + c * y


def _ellipse(
    x: np.ndarray,
    y: np.ndarray,
    center: tuple[float, float],
    radii: tuple[float, float],
    angle: float = 0.0,
) -> np.ndarray:
    u, v = _rotate(x - center[0], y - center[1], angle)
    return (u / radii[0]) ** 2 + (v / radii[1]) ** 2 <= 1.0


def _convex_polygon(
    x: np.ndarray, y: np.ndarray, vertices: Sequence[tuple[float, float]]
) -> np.ndarray:
    """Inside test for a convex polygon given in either winding order."""
    sides = [
        (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
        for (x0, y0), (x1, y1) in zip(vertices, [*vertices[1:], vertices[0]], strict=True)
    ]
    return np.all([side >= 0 for side in sides], 0) | np.all([side <= 0 for side in sides], 0)


def _sky(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    top = np.array([60, 120, 200]) + rng.normal(0, 15, 3)
    horizon = np.array([175, 205, 230]) + rng.normal(0, 10, 3)
    image = _lerp(top, horizon, y)
    for _ in range(int(rng.integers(2, 6))):
        cloud = np.zeros(x.shape, dtype=bool)
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0.05, 0.8), rng.uniform(0.05, 0.12)
        for _ in range(int(rng.integers(3, 6))):
            offset = rng.normal(0, r, 2) * np.array([1.0, 0.4])
            cloud |= _ellipse(x, y, (cx + offset[0], cy + offset[1]), (r, r * 0.6))
        image[cloud] = np.array([245, 245, 248]) - rng.uniform(0, 25)
    return image


def _window(center: float, radius: float, size: int) -> slice:
    """Pixel rows (or columns) whose centres may lie within `radius` of `center`."""
    return slice(
        max(0, math.floor((center - radius) * size)),
        max(0, math.ceil((center + radius) * size) + 1),
    )


def _foliage(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    size = x.shape[0]
    image = np.empty((size, size, 3))
    image[:] = np.array([25, 60, 25]) + rng.normal(0, 8, 3)
    count = int(rng.integers(70, 110))
    centers = rng.uniform(-0.05, 1.05, (count, 2))
    radii = np.stack([rng.uniform(0.04, 0.09, count), rng.uniform(0.015, 0.035, count)], 1)
    angles = rng.uniform(0, math.pi, count)
    colors = np.array([50, 130, 45]) + rng.normal(0, 22, (count, 3))
    colors[:, :2] += rng.normal(0, 15, (count, 1))
    rib = 0.003
    for (cx, cy), (a, b), angle, color in zip(centers, radii, angles, colors, strict=True):
        window = (_window(cy, a, size), _window(cx, a, size))
        along, across = _rotate(x[window] - cx, y[window] - cy, angle)
        leaf = (along / a) ** 2 + (across / b) ** 2 <= 1.0
        patch = image[window]
        patch[leaf] = color
        patch[leaf & (np.abs(across) < rib)] = color * 0.6
    return image


def _branch(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    top = np.array([200, 205, 200]) + rng.normal(0, 15, 3)
    image = _lerp(top, top * 0.8, y)
    for i in range(int(rng.integers(1, 4))):
        angle = rng.uniform(-0.6, 0.6) + (math.pi / 2 if rng.random() < 0.25 else 0.0)
        along, across = _rotate(x - rng.uniform(0.1, 0.9), y - rng.uniform(0.1, 0.9), angle)
        width = rng.uniform(0.03, 0.07) / (1 + i)
        bark = np.array([95, 65, 40]) + rng.normal(0, 12, 3)
        wood = np.abs(across) < width
        groove = np.sin(along * rng.uniform(60, 90) + 8 * across / width) > 0.6
        image[wood] = bark
        image[wood & groove] = bark * 0.55
    return image


def _water(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    horizon = rng.uniform(0.12, 0.35)
    sky = _lerp(np.array([120, 165, 215]) + rng.normal(0, 12, 3), np.array([200, 215, 230]), y)
    deep = np.array([20, 70, 110]) + rng.normal(0, 12, 3)
    depth = np.clip((y - horizon) / (1 - horizon), 0, 1)
    water = _lerp(deep * 1.4, deep, depth)
    phase = 2 * math.pi * (rng.uniform(8, 14) * depth**1.3 + 0.15 * np.sin(2 * math.pi * 3 * x))
    water[np.sin(phase) > 0.75] += 45
    shore = (y < horizon) & (y > horizon - rng.uniform(0.02, 0.06) * (1.3 + np.sin(x * 25)))
    image = np.where((y < horizon)[..., None], sky, water)
    image[shore] = np.array([35, 70, 40]) + rng.normal(0, 8, 3)
    return image


_SCENE_PAINTERS = {"sky": _sky, "foliage": _foliage, "branch": _branch, "water": _water}


def paint_scene(seed: int, scene: str, size: int) -> np.ndarray:
    """Paints the all-in-focus scene of the example with this seed: uint8 (size, size, 3)."""
    painted = _SCENE_PAINTERS[scene](_rng(seed, 1), *_grid(size))
    return np.clip(np.rint(painted), 0, 255).astype(np.uint8)


def render_background(seed: int, scene: str, size: int) -> np.ndarray:
    """The scene with a Gaussian defocus ramping in across a random line: uint8 (S, S, 3);
    pixels well on one side stay exactly as painted, those on the other are fully blurred."""
    sharp = paint_scene(seed, scene, size)
    rng = _rng(seed, 3)
    x, y = _grid(size)
    radius = size * rng.uniform(0.012, 0.03)
    blurred = np.asarray(Image.fromarray(sharp).filter(ImageFilter.GaussianBlur(radius)))
    along = _rotate(x - 0.5, y - 0.5, rng.uniform(0, 2 * math.pi))[0]
    weight = np.clip((along - rng.uniform(-0.2, 0.2)) / 0.15, 0, 1)
    mixed = _lerp(sharp.astype(np.float32), blurred.astype(np.float32), weight)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def _bird_frame(spec: BirdSpec, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates in the bird's frame: beak towards +u, crown towards -v, unit = scale."""
    x, y = _grid(size)
    u, v = _rotate((x - spec.center[0]) / spec.scale, (y - spec.center[1]) / spec.scale, spec.tilt)
    return (-u if spec.facing_left else u), v


def _part_shapes(u: np.ndarray, v: np.ndarray, pixels_per_unit: float) -> dict[str, np.ndarray]:
    """Boolean mask of each part before occlusion; the bird fits in the unit disc."""
    head_center, head_radius = (0.42, -0.24), 0.22
    eye_radius = max(0.05, 1.0 / pixels_per_unit)
    head = _ellipse(u, v, head_center, (head_radius, head_radius))
    return {
        "tail": _convex_polygon(u, v, [(-0.4, -0.04), (-0.97, -0.2), (-0.97, 0.08), (-0.4, 0.16)]),
        "body": _ellipse(u, v, (-0.02, 0.06), (0.52, 0.3)),
        "wing": _ellipse(u, v, (-0.16, -0.02), (0.33, 0.13), 0.15),
        "head": head,
        "crown": head & (v < head_center[1] - 0.08),
        "beak": _convex_polygon(u, v, [(0.58, -0.31), (0.86, -0.22), (0.58, -0.14)]),
        "eye": _ellipse(u, v, (0.51, -0.25), (eye_radius, eye_radius)),
    }


@dataclasses.dataclass(frozen=True)
class BirdLayout:
    """Per-pixel geometry of one bird, independent of its colours."""

    labels: np.ndarray
    shade: np.ndarray
    stripes: np.ndarray


def layout_bird(spec: BirdSpec, size: int) -> BirdLayout:
    """Rasterises the bird: visible part index per pixel (int8, -1 = background), shading and
    the wing's feather bars, all (size, size); parts are painted back to front."""
    u, v = _bird_frame(spec, size)
    labels = np.full((size, size), -1, dtype=np.int8)
    for name, shape in _part_shapes(u, v, spec.scale * size).items():
        labels[shape] = PART_NAMES.index(name)
    along = _rotate(u + 0.16, v + 0.02, 0.15)[0]
    bars = (np.mod(along * 5.0, 1.0) < 0.28) & (along < 0.08)
    return BirdLayout(
        labels=labels,
        shade=1.06 - 0.16 * np.clip(v + 0.5, 0, 1),
        stripes=bars & (labels == PART_NAMES.index("wing")),
    )


def paint_bird(background: np.ndarray, layout: BirdLayout, colors: Sequence[int]) -> np.ndarray:
    """Composites the bird in `colors` (one index per part) over `background`: uint8 (S, S, 3)."""
    bird = layout.labels >= 0
    rgb = PALETTE_RGB[np.asarray(colors)][layout.labels[bird]] * layout.shade[bird][:, None]
    dark = rgb.mean(-1, keepdims=True) < 90
    stripe_rgb = np.where(dark, rgb + (255 - rgb) * 0.45, rgb * 0.5)
    rgb = np.where(layout.stripes[bird][:, None], stripe_rgb, rgb)
    image = background.copy()
    image[bird] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return image


def _noun_phrase(rng: np.random.Generator, part: str, color: int) -> str:
    noun = _pick(rng, PART_NOUNS[part])
    name = COLOR_NAMES[color]
    if noun in _PLURAL_NOUNS:
        return f"{name} {noun}"
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name} {noun}"


def _clause(rng: np.random.Generator, part: str, color: int) -> str:
    noun = _pick(rng, PART_NOUNS[part])
    verb = "are" if noun in _PLURAL_NOUNS else "is"
    return f"{_pick(rng, ('its', 'the'))} {noun} {verb} {COLOR_NAMES[color]}"


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def compose_caption(
    rng: np.random.Generator, spec: BirdSpec, colors: Sequence[int], parts: Sequence[str]
) -> str:
    """Writes one caption naming the colours of `parts` (at least two) plus size or scene facts."""
    size = size_word(spec.scale)
    scene = _pick(rng, _SCENE_PHRASES[spec.scene])
    facing = "left" if spec.facing_left else "right"
    others = [p for p in parts if p != "body"]

    def phrases(names: Sequence[str]) -> str:
        return _join([_noun_phrase(rng, p, colors[PART_NAMES.index(p)]) for p in names])

    def clauses(names: Sequence[str]) -> str:
        return _join([_clause(rng, p, colors[PART_NAMES.index(p)]) for p in names])

    body = COLOR_NAMES[colors[PART_NAMES.index("body")]]
    templates = [
        lambda: f"this {size} bird has {phrases(parts)}.",
        lambda: f"a {size} bird {scene} with {phrases(parts)}.",
        lambda: f"{clauses(parts)}, and the bird sits {scene}.",
        lambda: f"{scene}, this bird has {phrases(parts)} and faces {facing}.",
        lambda: f"a bird with {phrases(parts)} and dark feather stripes, looking {facing}.",
        lambda: f"the bird is {size} and {clauses(parts)}.",
    ]
    if "body" in parts:
        templates += [
            lambda: f"a {size} {body} bird with {phrases(others)}.",
            lambda: f"this {body} bird {scene} has {phrases(others)}.",
        ]
    return templates[int(rng.integers(len(templates)))]()


def _caption_parts(rng: np.random.Generator) -> list[list[str]]:
    """Chooses 2-4 parts per caption so that every part appears in some caption."""
    chosen: list[set[str]] = [set() for _ in range(NUM_CAPTIONS)]
    for part in PART_NAMES:
        chosen[int(rng.integers(NUM_CAPTIONS))].add(part)
    parts = []
    for names in chosen:
        target = max(len(names), int(rng.integers(2, 5)))
        extra = [p for p in _shuffled(rng, PART_NAMES) if p not in names]
        names |= set(extra[: target - len(names)])
        parts.append([p for p in _shuffled(rng, PART_NAMES) if p in names])
    return parts


def token_parts(tokens: Sequence[str]) -> list[int]:
    """For each token of a tokenised toy_birds caption, the index in PART_NAMES of the part it
    names or colours (a part noun, the colour word before it, the colour after "<noun> is|are",
    the colour in "<colour> bird", which is the body's), -1 for every other token."""
    parts = [-1] * len(tokens)
    colours = frozenset(COLOR_NAMES)
    for i, token in enumerate(tokens):
        noun = _NOUN_PART.get(token, -1)
        if noun >= 0:
            parts[i] = noun
        part = PART_NAMES.index("body") if token == "bird" else noun
        if part < 0:
            continue
        if i > 0 and tokens[i - 1] in colours:
            parts[i - 1] = part
            continue
        after = tokens[i + 1 : i + 3]
        if noun >= 0 and len(after) == 2 and after[0] in ("is", "are") and after[1] in colours:
            parts[i + 2] = part
    return parts


def write_captions(seed: int, spec: BirdSpec) -> tuple[list[str], str]:
    """Returns the NUM_CAPTIONS captions of the example `spec = sample_bird(seed)` and its edit
    caption, which names every edited part (and up to two unchanged ones) in its new colour."""
    rng = _rng(seed, 2)
    captions = [compose_caption(rng, spec, spec.colors, p) for p in _caption_parts(rng)]
    edited = [
        p for p, a, b in zip(PART_NAMES, spec.colors, spec.edit_colors, strict=True) if a != b
    ]
    kept = [p for p in _shuffled(rng, PART_NAMES) if p not in edited]
    extra = int(rng.integers(max(0, 2 - len(edited)), 3))
    edit_parts = [p for p in _shuffled(rng, PART_NAMES) if p in {*edited, *kept[:extra]}]
    return captions, compose_caption(rng, spec, spec.edit_colors, edit_parts)


def generate_example(seed: int, size: int) -> dict[str, object]:
    """Renders every feature of one example as numpy arrays and strings (images not encoded)."""
    spec = sample_bird(seed)
    background = render_background(seed, spec.scene, size)
    layout = layout_bird(spec, size)
    labels = layout.labels
    captions, edit_caption = write_captions(seed, spec)
    part_masks = (labels[..., None] == np.arange(len(PART_NAMES), dtype=np.int8)).astype(np.uint8)
    return {
        "image": paint_bird(background, layout, spec.colors),
        "captions": captions,
        "class_id": class_id_of(spec.colors),
        "mask": (labels < 0).astype(np.uint8),
        "part_masks": part_masks,
        "attributes": np.array(spec.colors, dtype=np.int64),
        "edit_caption": edit_caption,
        "edit_image": paint_bird(background, layout, spec.edit_colors),
        "edit_attributes": np.array(spec.edit_colors, dtype=np.int64),
    }


def encode_png(image: np.ndarray) -> bytes:
    """Encodes a uint8 HxWx3 array as PNG bytes (what TFDS Image features store without TF)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def build_vocabulary(num_examples: Mapping[str, int]) -> Vocabulary:
    """Vocabulary of all captions and edit captions of the given split sizes, in split order."""
    captions = []
    for split, count in num_examples.items():
        for index in range(count):
            seed = example_seed(split, index)
            own, edit = write_captions(seed, sample_bird(seed))
            captions += [tokenize(c) for c in [*own, edit]]
    return Vocabulary.build(captions)


@dataclasses.dataclass(eq=False)
class ToyBirdsConfig(tfds.core.BuilderConfig):
    """A toy_birds variant; `image_size` is the side of the square images."""

    image_size: int = 64


class ToyBirds(tfds.core.GeneratorBasedBuilder):
    """Procedural birds: images, 10 captions, bird/part masks, attributes and edit targets."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "First release."}
    BUILDER_CONFIGS: ClassVar[list[ToyBirdsConfig]] = [
        ToyBirdsConfig(name="64", description="64x64 images.", image_size=64),
        ToyBirdsConfig(name="256", description="256x256 images.", image_size=256),
    ]
    DEFAULT_CONFIG_NAME = "64"

    def __init__(self, *, num_examples: Mapping[str, int] | None = None, **kwargs):
        """Accepts TFDS builder arguments and optional per-split example counts (for tests)."""
        self._num_examples = dict(num_examples or NUM_EXAMPLES)
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        side = self.builder_config.image_size
        image = tfds.features.Image(shape=(side, side, 3), dtype=np.uint8, encoding_format="png")
        num_parts = len(PART_NAMES)
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "id": tfds.features.Text(),
                    "image": image,
                    "captions": tfds.features.Sequence(tfds.features.Text(), length=NUM_CAPTIONS),
                    "class_id": tfds.features.Scalar(dtype=np.int64),
                    "mask": tfds.features.Tensor(
                        shape=(side, side), dtype=np.uint8, encoding="zlib"
                    ),
                    "part_masks": tfds.features.Tensor(
                        shape=(side, side, num_parts), dtype=np.uint8, encoding="zlib"
                    ),
                    "attributes": tfds.features.Tensor(shape=(num_parts,), dtype=np.int64),
                    "edit_caption": tfds.features.Text(),
                    "edit_image": image,
                    "edit_attributes": tfds.features.Tensor(shape=(num_parts,), dtype=np.int64),
                }
            ),
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        vocabulary = build_vocabulary(self._num_examples)
        self.info.metadata["vocabulary"] = list(vocabulary.words)
        return {split: self._generate_examples(split, n) for split, n in self._num_examples.items()}

    def _generate_examples(self, split: str, count: int) -> Iterator[tuple[str, dict]]:
        side = self.builder_config.image_size
        for index in range(count):
            interrupts.check()
            key = example_id(split, index)
            example = generate_example(example_seed(split, index), side)
            example["image"] = encode_png(example["image"])
            example["edit_image"] = encode_png(example["edit_image"])
            yield key, {"id": key, **example}
