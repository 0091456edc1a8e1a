"""Reads PyTorch state dicts without ever running code from the file (`weights_only=True`)."""

import os
from collections.abc import Mapping

import numpy as np

from jaxmani.errors import UserError


def read_state_dict(path: str, key: str = "") -> dict[str, np.ndarray]:
    """Loads a PyTorch checkpoint (zip or legacy format) as name -> float32/int numpy arrays.

    Args:
      path: the .pth/.pt file.
      key: for checkpoints that nest the state dict (e.g. {'netG': {...}}), the dotted key of it.
    """
    try:
        import torch  # optional: only the converters need torch
    except ImportError as e:
        raise UserError("converting needs torch: pip install 'jaxmani[export]'") from e
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged or unsafe files.
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: cannot be read as a PyTorch weights file ({reason})") from e
    for part in filter(None, key.split(".")):
        if not isinstance(obj, Mapping) or part not in obj:
            raise UserError(f"{path}: has no entry {key!r}")
        obj = obj[part]
    if not isinstance(obj, Mapping):
        raise UserError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    tensors = {name: value for name, value in obj.items() if isinstance(value, torch.Tensor)}
    if not tensors:
        nested = [name for name, value in obj.items() if isinstance(value, Mapping)]
        hint = f"; pick one of its entries with --key ({', '.join(nested)})" if nested else ""
        raise UserError(f"{path}: holds no tensors{hint}")
    return {name: value.detach().cpu().numpy() for name, value in tensors.items()}
