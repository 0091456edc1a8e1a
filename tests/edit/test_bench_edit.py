"""`bench edit`'s inputs and printed lines (the timing itself runs in `jaxmani bench edit`)."""

import numpy as np

from configs import tiny
from jaxmani import bench


def test_edit_inputs_fit_the_config():
    """Shapes of a batch of 3, full-length captions of known ids, zero CA noise."""
    config = tiny.get_config()
    inputs = bench.edit_inputs(config, 3, seed=0)
    assert list(inputs) == list(bench.EDIT_INPUTS)
    assert inputs["images"].shape == (3, 64, 64, 3) and np.abs(inputs["images"]).max() <= 1.0
    assert inputs["captions"].shape == (3, config.data.words_num)
    assert inputs["captions"].min() >= 1 and inputs["captions"].max() < config.model.text.vocab_size
    assert inputs["lengths"].tolist() == [config.data.words_num] * 3
    assert inputs["z"].shape == (3, config.model.g.z_dim) and not inputs["ca_eps"].any()


def test_format_edit_prints_ratios_and_milliseconds_per_image():
    """The jax/torch ratio per batch, ms/image = seconds / batch, and the note last."""
    rows = [
        bench.Row("edit_batch1", "jax", 0.1, None),
        bench.Row("edit_batch10", "jax", 0.5, None),
        bench.Row("edit_batch1", "torch", 0.4, None),
        bench.Row("edit_batch10", "torch", 2.0, None),
    ]
    lines = bench.format_edit(bench.EditBench(rows, (1, 10), "a note"))
    assert lines[0].startswith("device: ")
    assert lines[1].endswith("100.0 ms  peak n/a  jax/torch time 0.25")
    assert lines[2].endswith("500.0 ms  peak n/a  jax/torch time 0.25")
    assert lines[5] == "edit_batch1    jax        100.0 ms/image"
    assert lines[6] == "edit_batch10   jax         50.0 ms/image"
    assert lines[8] == "edit_batch10   torch      200.0 ms/image"
    assert lines[-1] == "a note" and len(lines) == 10
    assert bench.format_edit(bench.EditBench(rows[:1], (1,), ""))[-1].endswith("ms/image")
