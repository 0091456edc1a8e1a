"""Gradient Manipulation, k 1.5 in the sharp region (Table II), on toy_birds 64.

    jaxmani train --config=configs/toy_gm.py --workdir=runs/toy_gm

Expected: higher sharpness score than the baseline.
"""

import ml_collections

from configs import methods, toy_baseline


def get_config() -> ml_collections.ConfigDict:
    """Returns the toy_gm configuration."""
    config = toy_baseline.get_config()
    methods.gm(config)
    return config
