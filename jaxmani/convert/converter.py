"""Turns a PyTorch state dict into the flax variables of one jaxmani network, strictly."""

import os
from typing import Any

import ml_collections
import numpy as np
from absl import logging
from flax import traverse_util

from jaxmani import params_io
from jaxmani.convert import rules, torch_io
from jaxmani.errors import UserError
from jaxmani.models import registry


def to_flax_layout(tensor: np.ndarray, leaf: str, target_shape: tuple[int, ...]) -> np.ndarray:
    """Transposes a PyTorch tensor into flax layout (OIHW -> HWIO, (out, in) -> (in, out)).

    A 1x1 convolution becomes a Dense kernel when the flax module is a Dense; embeddings keep
    PyTorch's (vocabulary, width) layout.
    """
    if tensor.ndim == 4:
        tensor = tensor.transpose(2, 3, 1, 0)
        if len(target_shape) == 2 and tensor.shape[:2] == (1, 1):
            tensor = tensor.reshape(tensor.shape[2:])
    elif tensor.ndim == 2 and leaf != "embedding":
        tensor = tensor.T
    return tensor


def convert_state_dict(
    network: str, state_dict: dict[str, np.ndarray], config: ml_collections.ConfigDict, label: str
) -> dict[str, Any]:
    """Maps every tensor of `state_dict` onto network `network`; errors name any mismatch."""
    expected = traverse_util.flatten_dict(dict(registry.abstract_variables(network, config)))
    flat: dict[tuple[str, ...], np.ndarray] = {}
    sources: dict[tuple[str, ...], str] = {}
    unexpected = []
    for key, tensor in state_dict.items():
        if rules.is_ignored(network, key):
            continue
        collection, path = rules.flax_path(network, key, tensor.ndim)
        flat_key = (collection, *path)
        target = expected.get(flat_key)
        if target is None:
            unexpected.append(key)
            continue
        if flat_key in sources:  # e.g. both features.0.weight and vgg.0.weight.
            raise UserError(
                f"{label}: {sources[flat_key]} and {key} both give {'/'.join(flat_key)}; "
                "keep one of them"
            )
        sources[flat_key] = key
        flat[flat_key] = to_flax_layout(tensor, path[-1], tuple(target.shape)).astype(target.dtype)
    variables = traverse_util.unflatten_dict(flat)
    if unexpected:
        missing = sorted("/".join(k) for k in expected.keys() - flat.keys())
        raise UserError(
            f"{label}: does not fit network {network!r}; unexpected ({len(unexpected)}): "
            f"{params_io.summarize(unexpected)}; missing ({len(missing)}): "
            f"{params_io.summarize(missing)}"
        )
    params_io.check_variables(label, variables, traverse_util.unflatten_dict(expected))
    return variables


def check_destination(src: str, dst: str, overwrite: bool) -> None:
    """Refuses a `dst` that is the source, a directory, in a missing folder or (without
    `overwrite`) an existing file."""
    if os.path.abspath(src) == os.path.abspath(dst):
        raise UserError(f"{dst}: the destination must differ from the source")
    if os.path.isdir(dst):
        raise UserError(
            f"--dst={dst} is a directory; give a file name such as {dst}/params.msgpack"
        )
    folder = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(folder):
        raise UserError(f"--dst={dst}: folder {folder} does not exist; create it first")
    if os.path.exists(dst) and not overwrite:
        raise UserError(f"--dst={dst} exists; pass --overwrite to replace it")


def convert_file(
    network: str,
    src: str,
    dst: str,
    config: ml_collections.ConfigDict,
    key: str = "",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Converts the PyTorch file `src` into the params file `dst` and returns the variables.

    `dst` is checked before anything is read and written atomically; an existing `dst` is
    replaced only with `overwrite`.
    """
    registry.check_network_name(network)
    check_destination(src, dst, overwrite)
    state_dict = torch_io.read_state_dict(src, key)
    variables = convert_state_dict(network, state_dict, config, label=src)
    params_io.save_variables(dst, network, variables, source=os.path.basename(src))
    logging.info("%s: %d tensors -> %s", src, len(state_dict), dst)
    return variables
