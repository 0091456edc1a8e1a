"""Sharpness-Aware Discriminator, box kernel 5 (Table II), on CUB birds 256.

    jaxmani train --config=configs/bird_sad5.py --workdir=runs/bird_sad5

Expected: higher sharpness score than the baseline.
"""

import ml_collections

from configs import bird, methods


def get_config() -> ml_collections.ConfigDict:
    """Returns the bird_sad5 configuration."""
    config = bird.get_config()
    methods.sad(config, 5)
    return config
