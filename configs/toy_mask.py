"""Image Comparing, ground-truth mask in place of FCN (Table I), on toy_birds 64.

    jaxmani train --config=configs/toy_mask.py --workdir=runs/toy_mask

Expected: the lowest background change of Table I's rows.
"""

import ml_collections

from configs import methods, toy_baseline


def get_config() -> ml_collections.ConfigDict:
    """Returns the toy_mask configuration."""
    config = toy_baseline.get_config()
    methods.mask_loss(config, "gt")
    return config
