"""The combined method (Table III): FCN mask loss + SAD kernel 9, on CUB birds 256.

    jaxmani train --config=configs/bird_combined.py --workdir=runs/bird_combined

Expected: paper: FID 3.45, IS 5.037.
"""

import ml_collections

from configs import bird, methods


def get_config() -> ml_collections.ConfigDict:
    """Returns the bird_combined configuration."""
    config = bird.get_config()
    config.data.builder_config = "fcn_mask"
    methods.mask_loss(config, "fcn")
    methods.sad(config, 9)
    return config
