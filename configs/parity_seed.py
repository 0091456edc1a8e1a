"""Bird configuration for parity with the seed fork (fransiskusyoga/Lightweight-Manipulation).

Every `config.compat` switch is on, `skip_init_bn_at_batch_one` included. It belongs to the
generator of a seed-fork training run, `netG_epoch_N.pth`:

    jaxmani convert --config=configs/parity_seed.py --network=generator \\
        --src=output/.../Model/netG_epoch_100.pth --dst=params/generator.msgpack

prints `params/generator.msgpack: generator, 15809840 params`; the converted generator then gives
the seed code's outputs up to float32 rounding, at batch size 1 too (tests/parity checks this on
seeded weights).
"""

import ml_collections

from configs import bird


def get_config() -> ml_collections.ConfigDict:
    """Returns the bird configuration with every quirk of the seed fork switched on."""
    config = bird.get_config()
    for name in config.compat:
        config.compat[name] = True
    return config
