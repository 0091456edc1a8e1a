"""Bird configuration with every `config.compat` switch on: numerical parity with the PyTorch code.

Use it to load upstream checkpoints and reproduce their outputs bit for bit (up to float error):
    jaxmani info --config=configs/upstream_parity.py
"""

import ml_collections

from configs import bird


def get_config() -> ml_collections.ConfigDict:
    """Returns the bird configuration with all upstream quirks switched on."""
    config = bird.get_config()
    for name in config.compat:
        config.compat[name] = True
    return config
