"""Image Comparing with the precomputed FCN-ResNet101 mask (Table I), on CUB birds 256.

    jaxmani train --config=configs/bird_fcn.py --workdir=runs/bird_fcn

Expected: paper: mask score 267.11 against 518.21 for the baseline.
"""

import ml_collections

from configs import bird, methods


def get_config() -> ml_collections.ConfigDict:
    """Returns the bird_fcn configuration."""
    config = bird.get_config()
    config.data.builder_config = "fcn_mask"
    methods.mask_loss(config, "fcn")
    return config
