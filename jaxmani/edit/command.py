"""`jaxmani manipulate`: edit one image, or a folder of images, with sentences.

One image: `image` + `text` -> the file `out`. A folder: `images` (a folder) + `captions` (a
UTF-8 text file, one edit per line: an image file name of that folder, a tab, the caption) -> the
folder `out`, one file `<image stem>_<k>.png` per caption (k counts that image's captions from 0;
all captions of an image are edited in one batch). With `side_by_side`, each output is original |
edited | background mask (white = kept) side by side.

Every input is checked before the model is loaded and every output path before anything is
written: a mistake is one UserError line and leaves no file behind.
"""

import dataclasses
import os
from collections.abc import Sequence

import ml_collections
import numpy as np

from jaxmani.edit import images as image_io
from jaxmani.edit.manipulator import Manipulator
from jaxmani.errors import UserError
from jaxmani.progress import Progress

CONVERTED = ("generator", "text_encoder", "image_encoder", "vgg", "vocabulary")


@dataclasses.dataclass(frozen=True)
class Report:
    """What `manipulate` did: the files it wrote and the caption warnings, one line each."""

    written: list[str]
    warnings: list[str]


@dataclasses.dataclass(frozen=True)
class Job:
    """One input image and its edits."""

    image: str  # The input file.
    texts: list[str]
    labels: list[str]  # Names of the captions in messages.
    outputs: list[str]  # One file per caption.


def read_lines(path: str) -> list[str]:
    """The lines of a UTF-8 text file (a leading byte-order mark is dropped)."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such captions file")
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise UserError(
            f"{path}: line {line} is not UTF-8 (byte {data[e.start : e.start + 1]!r} at offset "
            f"{e.start}); save the file as UTF-8"
        ) from e
    return text.splitlines()


def folder_jobs(images: str, captions: str, out: str) -> list[Job]:
    """The jobs a captions file asks for, in its order of first mention of each image."""
    if not os.path.isdir(images):
        raise UserError(f"{images}: no such folder of images")
    jobs: dict[str, Job] = {}
    for number, line in enumerate(read_lines(captions), start=1):
        if not line.strip():
            continue
        name, tab, text = line.partition("\t")
        label = f"{captions}:{number}"
        if not tab or not name.strip():
            raise UserError(f"{label}: expected '<image file name><tab><caption>'")
        path = os.path.join(images, name.strip())
        if not os.path.isfile(path):
            raise UserError(f"{label}: {path} does not exist")
        job = jobs.setdefault(path, Job(path, [], [], []))
        stem = os.path.splitext(os.path.basename(path))[0]
        job.outputs.append(os.path.join(out, f"{stem}_{len(job.texts)}.png"))
        job.texts.append(text)
        job.labels.append(label)
    if not jobs:
        raise UserError(f"{captions}: holds no caption")
    return list(jobs.values())


def check_outputs(jobs: Sequence[Job], overwrite: bool) -> None:
    """Refuses outputs that collide, exist (unless `overwrite`) or lie in a missing folder."""
    seen: dict[str, str] = {}
    for job in jobs:
        for output in job.outputs:
            if output in seen and seen[output] != job.image:
                raise UserError(
                    f"{job.image} and {seen[output]} would both write {output}; rename one"
                )
            seen[output] = job.image
            image_io.check_output(output, overwrite)


def make_output_folder(out: str) -> None:
    """Creates the output folder of folder mode; its parent folder must exist."""
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise UserError(f"{out}: the folder {parent} does not exist; create it first")
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"{out}: is a file; give a folder for the edits of a folder")
    os.makedirs(out, exist_ok=True)


def side_by_side_view(original: np.ndarray, edited: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """original | edited | background mask (white = kept), as one uint8 image."""
    mask = np.round(kept * 255.0).astype(np.uint8)
    return np.concatenate([original, edited, np.repeat(mask[..., None], 3, axis=-1)], axis=1)


def load_manipulator(
    workdir: str | None, converted: dict[str, str | None], config: ml_collections.ConfigDict | None
) -> Manipulator:
    """From a workdir, or from the converted baseline files and their config."""
    given = [name for name, path in converted.items() if path]
    if workdir and given:
        raise UserError(f"give --workdir or converted files ({', '.join(given)}), not both")
    if workdir:
        return Manipulator.from_workdir(workdir)
    missing = [name for name, path in converted.items() if not path]
    if missing or config is None:
        names = ", ".join(f"--{name}" for name in missing or ["config"])
        raise UserError(f"manipulate needs --workdir, or the converted files ({names} missing)")
    return Manipulator.from_pytorch(config=config, **converted)


def manipulate(
    *,
    out: str,
    workdir: str | None = None,
    generator: str | None = None,
    text_encoder: str | None = None,
    image_encoder: str | None = None,
    vgg: str | None = None,
    vocabulary: str | None = None,
    config: ml_collections.ConfigDict | None = None,
    image: str | None = None,
    text: str | None = None,
    images: str | None = None,
    captions: str | None = None,
    side_by_side: bool = False,
    overwrite: bool = False,
    seed: int = 0,
) -> Report:
    """Edits `image` with `text` into the file `out`, or the folder `images` with the lines of
    `captions` into the folder `out` (see the module docstring); returns what it wrote."""
    if (image is None) == (images is None):
        raise UserError("manipulate needs either --image and --text, or --images and --captions")
    if image is not None:
        if text is None:
            raise UserError("manipulate --image needs --text (the sentence of the edit)")
        jobs = [Job(image, [text], ["--text"], [out])]
    else:
        if captions is None:
            raise UserError("manipulate --images needs --captions (a file of edits)")
        jobs = folder_jobs(images, captions, out)
        make_output_folder(out)
    check_outputs(jobs, overwrite)
    for job in jobs:
        image_io.read_image(job.image)
    converted = dict(
        zip(CONVERTED, (generator, text_encoder, image_encoder, vgg, vocabulary), strict=True)
    )
    manipulator = load_manipulator(workdir, converted, config)
    for job in jobs:
        manipulator.encode_captions(job.texts, seed, job.labels)
    written, notes = [], []
    progress = Progress(0, len(jobs), "manipulate")
    try:
        for step, job in enumerate(jobs, start=1):
            pixels = image_io.read_image(job.image)
            result = manipulator.edit(pixels, job.texts, seed=seed, labels=job.labels)
            notes += result.warnings
            for output, edited, kept in zip(job.outputs, result.images, result.masks, strict=True):
                view = side_by_side_view(pixels, edited, kept) if side_by_side else edited
                image_io.write_image(output, view, overwrite=overwrite)
                written.append(output)
            progress.update(step)
    finally:
        progress.close()
    return Report(written, notes)
