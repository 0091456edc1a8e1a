"""Tiny networks on toy_birds at 64x64 with the small image encoder, for tests and smoke runs.

    jaxmani info --config=configs/tiny.py

prints params/generator 163908, params/discriminator 25970, params/text_encoder 2176,
params/image_encoder 7072, params/vgg 260160 (VGG16 up to relu2_2 has no width setting),
params/total 459286.
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
    """Returns the tiny test configuration."""
    config = default.get_config()
    config.model.g.gf_dim = 4
    config.model.d.df_dim = 4
    config.model.g.z_dim = 8
    config.model.g.condition_dim = 8
    config.model.embedding_dim = 16
    config.model.text.word_dim = 12
    config.model.text.vocab_size = 64
    config.model.g.r_num = 1
    config.model.image.width = 8
    config.train.batch_size = 2
    config.train.num_steps = 2
    config.bench.warmup = 1
    config.bench.iters = 1
    return config
