"""The paper's methods as config changes, one function per row of its Tables I-III.

Each experiment config (configs/toy_*.py, configs/bird_*.py) is a base config with one of these
applied; nothing here changes code, only `config.loss`.
"""

import ml_collections

MASK_WEIGHT = 25.0  # MAE-mask alpha of the paper and the seed.


def mask_loss(config: ml_collections.ConfigDict, source: str) -> ml_collections.ConfigDict:
    """Image Comparing: the MAE-mask loss with background masks from `source`."""
    config.loss.g.mask_weight = MASK_WEIGHT
    config.loss.g.mask_source = source
    return config


def nsl(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Naive Sharpness Loss with the paper's alpha 1, gamma 0.1."""
    config.loss.g.nsl_weight = 1.0
    config.loss.g.nsl_gamma = 0.1
    return config


def gm(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Gradient Manipulation: gradients times k = 1.5 in the sharp region of G's output."""
    config.loss.g.gm_mode = "region"
    config.loss.g.gm_k = 1.5
    return config


def sad(config: ml_collections.ConfigDict, kernel: int) -> ml_collections.ConfigDict:
    """Sharpness-Aware Discriminator: box-blurred reals (kernel `kernel`) labelled fake."""
    config.loss.d.sad_weight = 1.0
    config.loss.d.sad_filter = "box"
    config.loss.d.sad_kernel = kernel
    return config
