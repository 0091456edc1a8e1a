"""CUB birds with the seed paper's training values (batch 10, 100 epochs of 885 steps).

jaxmani info --config=configs/bird.py
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
    """Returns the bird configuration."""
    config = default.get_config()
    config.data.name = "cub_birds"
    return config
