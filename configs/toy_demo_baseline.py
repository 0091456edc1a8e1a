"""The demo's recipe without the paper's methods: the baseline side of the demo-scale comparison.

    ROWS= KEY="toy_demo_baseline toy_demo" STEPS=1200 PRETRAIN_STEPS=600 \
      launch/ablation.sh runs/demo_study

toy_demo (paired-edit terms, G lr 1e-3, batch 8, no perceptual term, EMA 0.99) with the MAE-mask
and SAD weights at 0, so the Lightweight losses plus the paired-edit terms remain. Against
toy_demo over three seeds it tests the paper's claims at a budget where the edits follow the
captions' colours (README, "The reproduction study").
"""

import ml_collections

from configs import toy_demo


def get_config() -> ml_collections.ConfigDict:
    """Returns the demo's recipe without MAE-mask and SAD."""
    config = toy_demo.get_config()
    config.loss.g.mask_weight = 0.0
    config.loss.d.sad_weight = 0.0
    return config
