"""The embedded demo runs end to end on the tiny config and writes its grid."""

import numpy as np
from PIL import Image

from configs import tiny
from jaxmani import demo


def test_demo_writes_original_target_and_output_columns(tmp_path):
    config = tiny.get_config()
    path = demo.run_demo(config, str(tmp_path))
    grid = np.asarray(Image.open(path))
    size, batch = config.data.image_size, config.train.batch_size
    assert grid.shape == (batch * size, 3 * size, 3)
    original, target, output = (grid[:size, i * size : (i + 1) * size] for i in range(3))
    assert not np.array_equal(original, target)  # The ground-truth edit recolours the bird.
    assert output.std() > 0  # The generator produced an image, not a constant.
