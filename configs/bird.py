"""CUB birds at 256x256 with the Inception DAMSM image encoder and the seed paper's training values
(batch 10, 100 epochs of 885 steps).

    jaxmani info --config=configs/bird.py

prints the baseline's parameter counts: params/generator 15809840, params/discriminator 71858946,
params/text_encoder 2075320, params/image_encoder 22506720, params/vgg 260160, params/total
112510986.
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
    """Returns the bird configuration."""
    config = default.get_config()
    config.data.name = "cub_birds"
    config.data.image_size = 256
    config.model.image.encoder = "inception"
    return config
