"""Sharpness-Aware Discriminator, box kernel 9 (Table II), on toy_birds 64.

    jaxmani train --config=configs/toy_sad9.py --workdir=runs/toy_sad9

Expected: the highest sharpness score of Table II's rows.
"""

import ml_collections

from configs import methods, toy_baseline


def get_config() -> ml_collections.ConfigDict:
    """Returns the toy_sad9 configuration."""
    config = toy_baseline.get_config()
    methods.sad(config, 9)
    return config
