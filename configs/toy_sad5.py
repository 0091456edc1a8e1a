"""Sharpness-Aware Discriminator, box kernel 5 (Table II), on toy_birds 64.

    jaxmani train --config=configs/toy_sad5.py --workdir=runs/toy_sad5

Expected: higher sharpness score than the baseline.
"""

import ml_collections

from configs import methods, toy_baseline


def get_config() -> ml_collections.ConfigDict:
    """Returns the toy_sad5 configuration."""
    config = toy_baseline.get_config()
    methods.sad(config, 5)
    return config
