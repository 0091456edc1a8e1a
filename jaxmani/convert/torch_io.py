"""Reads PyTorch state dicts without ever running code from the file (`weights_only=True`)."""

import os
import pickletools
import re
import warnings
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
        with warnings.catch_warnings():
            # torch warns about every pickle protocol but 2 and then either loads or refuses.
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged or unsafe files.
        raise UserError(
            f"{path}: not a loadable PyTorch checkpoint ({load_failure(path, e)})"
        ) from e
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


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_WEIGHTS_ONLY = "Weights only load failed."
_UNPICKLER = "WeightsUnpickler error:"
_DOCS = "Check the documentation of torch.load"
_UNSAFE = (  # torch's advice to retry with weights_only=False, which jaxmani never does.
    "In PyTorch 2.6, we changed the default value of the `weights_only` argument",
    "Do it only if you got the file from a trusted source.",
)


def load_failure(path: str, error: BaseException) -> str:
    """Says in one line why torch.load(weights_only=True) refused `path`, without torch's advice."""
    if isinstance(error, OSError):  # e.g. no read permission.
        return error.strerror or str(error)
    text = _ANSI.sub("", str(error))
    head = file_head(path)
    if head == b"":
        return "empty file"
    legacy_tar = "legacy .tar format" in text  # torch < 0.1.10, refused with weights_only.
    if head is not None and not head.startswith((b"PK\x03\x04", b"\x80")) and not legacy_tar:
        return "neither a zip archive nor a pickle"  # torch.save writes a zip or a pickle 2.
    weights_only = _WEIGHTS_ONLY in text or "weights_only" in text
    text = text.split(_DOCS)[0]
    start, end = text.find(_UNSAFE[0]), text.find(_UNSAFE[1])
    if 0 <= start < end:
        text = text[:start] + text[end + len(_UNSAFE[1]) :]
    text = text.split(_UNPICKLER, 1)[-1].replace(_WEIGHTS_ONLY, "")
    reason = re.sub(r"\s+", " ", text).strip()
    reason = re.split(r"(?<=\.) (?=[A-Z])", reason)[0].rstrip(".") or type(error).__name__
    unsafe_global = re.search(r"Unsupported global: GLOBAL (\S+)", reason)
    operand = re.fullmatch(r"Unsupported operand (\d+)", reason)
    if unsafe_global:
        name = unsafe_global.group(1)  # torch drops the "builtins." of builtins.
        reason = f"Unsupported global: GLOBAL {name if '.' in name else f'builtins.{name}'}"
        if reason.endswith(" torch.storage._load_from_bytes"):  # Storage.__reduce__ of pickle.
            reason += ", so tensors saved by pickle.dump, not torch.save"
    elif operand and int(operand.group(1)) < 256:
        op = pickletools.code2op.get(chr(int(operand.group(1))))
        if op is not None and op.proto > 2:
            reason += f": {op.name}, from pickle protocol {op.proto}; torch.save writes protocol 2"
        elif op is not None:
            reason += f": {op.name}"
    return f"{reason}; jaxmani loads weights only" if weights_only else reason


def file_head(path: str) -> bytes | None:
    """The first four bytes of `path`, or None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read(4)
    except OSError:
        return None
