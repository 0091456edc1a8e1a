"""Bird configuration for parity with the original Lightweight code (upstream).

Upstream is mrlibw/Lightweight-Manipulation. Every `config.compat` switch is on except
`skip_init_bn_at_batch_one`, the seed fork's change (upstream applies the init-stage BatchNorm at
every batch size). It belongs to upstream's distributed generator `lightweight_bird.pth` and the
DAMSM bird encoders:

    jaxmani convert --config=configs/parity_lightweight.py --network=generator \\
        --src=models/lightweight_bird.pth --dst=params/generator.msgpack

prints `params/generator.msgpack: generator, 15809840 params`; the converted generator then gives
the PyTorch code's outputs up to float32 rounding (tests/parity checks this on seeded weights).
"""

import ml_collections

from configs import bird

SEED_ONLY = ("skip_init_bn_at_batch_one",)  # Compat switches of the seed fork only.


def get_config() -> ml_collections.ConfigDict:
    """Returns the bird configuration with the original Lightweight code's quirks switched on."""
    config = bird.get_config()
    for name in config.compat:
        config.compat[name] = name not in SEED_ONLY
    return config
