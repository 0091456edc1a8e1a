"""Gradient Manipulation, k 1.5 in the sharp region (Table II), on CUB birds 256.

    jaxmani train --config=configs/bird_gm.py --workdir=runs/bird_gm

Expected: higher sharpness score than the baseline.
"""

import ml_collections

from configs import bird, methods


def get_config() -> ml_collections.ConfigDict:
    """Returns the bird_gm configuration."""
    config = bird.get_config()
    methods.gm(config)
    return config
