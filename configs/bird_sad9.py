"""Sharpness-Aware Discriminator, box kernel 9 (Table II), on CUB birds 256.

    jaxmani train --config=configs/bird_sad9.py --workdir=runs/bird_sad9

Expected: the highest sharpness score of Table II's rows.
"""

import ml_collections

from configs import bird, methods


def get_config() -> ml_collections.ConfigDict:
    """Returns the bird_sad9 configuration."""
    config = bird.get_config()
    methods.sad(config, 9)
    return config
