"""Weight initialisation applied to G and D before any checkpoint is loaded (upstream model.py)."""

from torch import nn


def weights_init(module: nn.Module) -> None:
    """Initialise one module by class name; use as ``net.apply(weights_init)``.

    "Conv": orthogonal (gain 1) weight, bias left at the PyTorch default. "BatchNorm": weight
    ~ N(1, 0.02), bias 0. "Linear": orthogonal (gain 1) weight, bias 0.
    """
    name = type(module).__name__
    if "Conv" in name:
        nn.init.orthogonal_(module.weight, 1.0)
    elif "BatchNorm" in name:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    elif "Linear" in name:
        nn.init.orthogonal_(module.weight, 1.0)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
