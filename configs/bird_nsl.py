"""Naive Sharpness Loss, alpha 1, gamma 0.1 (Table II), on CUB birds 256.

    jaxmani train --config=configs/bird_nsl.py --workdir=runs/bird_nsl

Expected: higher sharpness score than the baseline.
"""

import ml_collections

from configs import bird, methods


def get_config() -> ml_collections.ConfigDict:
    """Returns the bird_nsl configuration."""
    config = bird.get_config()
    methods.nsl(config)
    return config
