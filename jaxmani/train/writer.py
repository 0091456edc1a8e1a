"""The one metric writer: a JSON line per log step, TensorBoard events (no TensorFlow), PNGs."""

import json
import os
from collections.abc import Mapping

import jax
import numpy as np
from PIL import Image

from jaxmani.data.pipeline import to_uint8
from jaxmani.train.events import EventWriter


class MetricWriter:
    """Writes `<workdir>/metrics.jsonl`, TensorBoard events in `<workdir>/tb` and sample PNGs.

    Only process 0 writes; other processes get a writer that does nothing.
    """

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.active = jax.process_index() == 0
        if self.active:
            os.makedirs(workdir, exist_ok=True)
            self.tensorboard = EventWriter(os.path.join(workdir, "tb"))

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        """One JSON line {"step": n, "<prefix>/<name>": value, ...} and one event per scalar."""
        if not self.active:
            return
        record = {"step": step, **{k: float(v) for k, v in scalars.items()}}
        with open(os.path.join(self.workdir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
        for key, value in scalars.items():
            self.tensorboard.add_scalar(key, float(value), step)
        self.tensorboard.flush()

    def write_image(self, step: int, name: str, image: np.ndarray) -> str:
        """Saves a [-1, 1] (H, W, 3) image as `<workdir>/samples/<name>_<step>.png`; its path."""
        path = os.path.join(self.workdir, "samples", f"{name}_{step:08d}.png")
        if self.active:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            pixels = to_uint8(image)
            Image.fromarray(pixels).save(path)
            self.tensorboard.add_image(name, pixels, step)
        return path

    def close(self) -> None:
        """Flushes and closes the event file."""
        if self.active:
            self.tensorboard.close()
