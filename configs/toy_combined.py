"""The combined method (Table III): ground-truth mask loss + SAD kernel 9, on toy_birds 64.

    jaxmani train --config=configs/toy_combined.py --workdir=runs/toy_combined

Expected: lower background change and higher sharpness than the baseline.
"""

import ml_collections

from configs import methods, toy_baseline


def get_config() -> ml_collections.ConfigDict:
    """Returns the toy_combined configuration."""
    config = toy_baseline.get_config()
    methods.mask_loss(config, "gt")
    methods.sad(config, 9)
    return config
