"""Naive Sharpness Loss, alpha 1, gamma 0.1 (Table II), on toy_birds 64.

    jaxmani train --config=configs/toy_nsl.py --workdir=runs/toy_nsl

Expected: higher sharpness score than the baseline.
"""

import ml_collections

from configs import methods, toy_baseline


def get_config() -> ml_collections.ConfigDict:
    """Returns the toy_nsl configuration."""
    config = toy_baseline.get_config()
    methods.nsl(config)
    return config
