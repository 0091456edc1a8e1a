"""Image Comparing with the histogram-matching mask (Table I, HM rows), on CUB birds 256.

    jaxmani train --config=configs/bird_hm.py --workdir=runs/bird_hm

Expected: lower background change than the baseline.
"""

import ml_collections

from configs import bird, methods


def get_config() -> ml_collections.ConfigDict:
    """Returns the bird_hm configuration."""
    config = bird.get_config()
    methods.mask_loss(config, "hm")
    return config
