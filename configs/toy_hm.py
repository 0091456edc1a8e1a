"""Image Comparing with the histogram-matching mask (Table I, HM rows), on toy_birds 64.

    jaxmani train --config=configs/toy_hm.py --workdir=runs/toy_hm

Expected: lower background change than the baseline.
"""

import ml_collections

from configs import methods, toy_baseline


def get_config() -> ml_collections.ConfigDict:
    """Returns the toy_hm configuration."""
    config = toy_baseline.get_config()
    methods.mask_loss(config, "hm")
    return config
