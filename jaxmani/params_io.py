"""Params files: one network's flax variables as msgpack, checked against the model on load."""

import os
from typing import Any

import jax
import ml_collections
import numpy as np
from flax import serialization, traverse_util

from jaxmani.errors import UserError
from jaxmani.models import registry

FORMAT = "jaxmani.params.v1"


def save_variables(path: str, network: str, variables: dict[str, Any], source: str = "") -> None:
    """Writes `variables` of `network` to `path` atomically (a temp file renamed at the end)."""
    payload = {
        "format": FORMAT,
        "network": network,
        "source": source,
        "variables": jax.tree_util.tree_map(np.asarray, variables),
    }
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    partial = f"{path}.partial"
    with open(partial, "wb") as f:
        f.write(serialization.msgpack_serialize(payload))
    os.replace(partial, path)


def load_variables(path: str, network: str, config: ml_collections.ConfigDict) -> dict[str, Any]:
    """Reads a params file for `network` and checks every leaf against the config's model."""
    if not os.path.isfile(path):
        pretrain = (
            " (or train DAMSM encoders with `jaxmani pretrain`)"
            if network in ("text_encoder", "image_encoder")
            else ""
        )
        raise UserError(
            f"{path}: no such params file; make it with "
            f"`jaxmani convert --network={network} --src=<pytorch file> --dst={path}`{pretrain}"
        )
    with open(path, "rb") as f:
        data = f.read()
    try:
        payload = serialization.msgpack_restore(data)
    except Exception as e:  # msgpack raises several unrelated types on damaged input.
        raise UserError(f"{path}: not a jaxmani params file ({type(e).__name__})") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path}: not a jaxmani params file (format {FORMAT} expected)")
    if payload["network"] != network:
        raise UserError(f"{path}: holds network {payload['network']!r}, not {network!r}")
    variables = payload["variables"]
    check_variables(path, variables, registry.abstract_variables(network, config))
    return variables


def check_variables(label: str, variables: dict[str, Any], expected: dict[str, Any]) -> None:
    """Raises a one-line UserError listing missing, unexpected and mis-shaped leaves."""
    have = {"/".join(k): v for k, v in traverse_util.flatten_dict(variables).items()}
    want = {"/".join(k): v for k, v in traverse_util.flatten_dict(dict(expected)).items()}
    missing = sorted(want.keys() - have.keys())
    unexpected = sorted(have.keys() - want.keys())
    misshaped = [
        f"{k} {tuple(np.shape(have[k]))}!={tuple(want[k].shape)}"
        for k in sorted(want.keys() & have.keys())
        if tuple(np.shape(have[k])) != tuple(want[k].shape)
    ]
    if missing or unexpected or misshaped:
        parts = [
            f"{title} ({len(names)}): {summarize(names)}"
            for title, names in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("mis-shaped", misshaped),
            )
            if names
        ]
        raise UserError(f"{label}: does not fit the configured network; " + "; ".join(parts))


def summarize(names: list[str], limit: int = 8) -> str:
    """Joins the first `limit` names and counts the rest."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... {len(names) - limit} more"
