"""The embedded demo runs end to end on the tiny config, reports each step and writes its grid."""

import numpy as np
import pytest
from PIL import Image

from configs import tiny
from jaxmani import demo


@pytest.mark.usefixtures("fast_compilation")
def test_demo_clamps_the_batch_and_writes_original_target_and_output(tmp_path, capsys):
    config = tiny.get_config()
    config.train.batch_size = 10  # More than the demo's 8 test images: the demo uses 8.
    path = demo.run_demo(config, str(tmp_path))
    grid = np.asarray(Image.open(path))
    size, rows = config.data.image_size, demo.DEMO_EXAMPLES["test"]
    assert grid.shape == (rows * size, 3 * size, 3)
    original, target, output = (grid[:size, i * size : (i + 1) * size] for i in range(3))
    assert not np.array_equal(original, target)  # The ground-truth edit recolours the bird.
    assert output.std() > 0  # The generator produced an image, not a constant.
    status = capsys.readouterr().err
    for name in demo.NETWORKS:
        assert f"demo: initialising the {name} (seeded random weights): done in " in status
    assert "prepare: building toy_birds in " in status
    assert "\x1b[" not in status and "\r" not in status
