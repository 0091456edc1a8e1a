"""Tiny networks on toy_birds for tests and smoke runs (minutes on a laptop CPU).

jaxmani info --config=configs/tiny.py
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
    """Returns the tiny test configuration."""
    config = default.get_config()
    config.model.gf_dim = 4
    config.model.df_dim = 4
    config.model.z_dim = 8
    config.model.condition_dim = 8
    config.model.embedding_dim = 16
    config.model.word_dim = 12
    config.model.vocab_size = 64
    config.model.r_num = 1
    config.train.batch_size = 2
    config.train.num_steps = 2
    config.bench.warmup = 1
    config.bench.iters = 1
    return config
