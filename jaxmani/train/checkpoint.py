"""Checkpoints of a run in <workdir>/checkpoints: train state, data iterator, config, vocabulary.

orbax writes each step into a temporary directory and renames it when complete, so a process
killed during a save leaves the previous checkpoints intact and the next run resumes from the last
complete one; the manager deletes such leftover temporary directories when it opens the workdir.
Every parallel mode saves the same thing: the state as jit mode holds it, replicated.
"""

import hashlib
import json
import os
from typing import Any

import grain
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from jaxmani.errors import UserError
from jaxmani.train.state import TrainState

# Config groups that decide the shapes and meaning of the saved state; a resumed run must agree.
FINGERPRINT_GROUPS = ("model", "data", "loss", "optim", "compat")


def checkpoint_dir(workdir: str) -> str:
    """Where a workdir keeps its checkpoints."""
    return os.path.join(os.path.abspath(workdir), "checkpoints")


def create_manager(workdir: str, max_to_keep: int) -> ocp.CheckpointManager:
    """An orbax CheckpointManager over the workdir's checkpoints (items: state, data, meta)."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, cleanup_tmp_directories=True
    )
    handlers = {
        "state": ocp.StandardCheckpointHandler(),
        "data": grain.checkpoint.CheckpointHandler(),
        "meta": ocp.JsonCheckpointHandler(),
    }
    return ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_handlers=handlers)


def run_meta(config: ml_collections.ConfigDict, vocabulary: tuple[str, ...]) -> dict[str, Any]:
    """The JSON record saved with every checkpoint: the full config and the vocabulary."""
    return {"config": json.loads(config.to_json()), "vocabulary": list(vocabulary)}


def save(
    manager: ocp.CheckpointManager,
    state: TrainState,
    iterator: Any,
    meta: dict[str, Any],
) -> None:
    """Saves state, data-iterator position and meta under the state's step (asynchronously)."""
    step = int(jax.device_get(state.step))
    manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=grain.checkpoint.CheckpointSave(iterator),
            meta=ocp.args.JsonSave(meta),
        ),
    )


def check_same_run(label: str, saved: dict[str, Any], config: ml_collections.ConfigDict) -> None:
    """Raises a UserError naming the first field where a saved config differs from `config`."""
    current = json.loads(config.to_json())
    for group in FINGERPRINT_GROUPS:
        mismatch = first_difference(saved.get(group), current.get(group), f"config.{group}")
        if mismatch:
            raise UserError(
                f"{label} was made with another config ({mismatch}); use a new --workdir or the "
                "config it was trained with"
            )


def first_difference(saved: Any, current: Any, path: str) -> str | None:
    """'path: saved vs current' for the first differing leaf of two JSON trees, else None."""
    if isinstance(saved, dict) and isinstance(current, dict):
        for key in sorted(saved.keys() | current.keys()):
            found = first_difference(saved.get(key), current.get(key), f"{path}.{key}")
            if found:
                return found
        return None
    return None if saved == current else f"{path}: {saved!r} there, {current!r} here"


def restore_latest(
    manager: ocp.CheckpointManager,
    abstract_state: TrainState,
    iterator: Any,
    config: ml_collections.ConfigDict,
) -> tuple[TrainState, dict[str, Any]] | None:
    """Restores the latest checkpoint into `iterator` and returns (state, meta), or None."""
    step = manager.latest_step()
    if step is None:
        return None
    meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    check_same_run(f"checkpoint {step} in {checkpoint_dir_of(manager)}", meta["config"], config)
    restored = manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            data=grain.checkpoint.CheckpointRestore(iterator),
        ),
    )
    return restored["state"], meta


def checkpoint_dir_of(manager: ocp.CheckpointManager) -> str:
    """The directory a manager writes to, as a string."""
    return os.fspath(manager.directory)


# The state fields `jaxmani info --workdir` fingerprints: parameters and BatchNorm buffers.
FINGERPRINT_FIELDS = ("g_params", "g_batch_stats", "g_ema", "d_params", "d_batch_stats")


def fingerprint(tree: Any) -> str:
    """sha256 over every leaf (path, dtype, shape, bytes) in sorted path order."""
    digest = hashlib.sha256()
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    for path, leaf in sorted(leaves, key=lambda item: jax.tree_util.keystr(item[0])):
        array = np.ascontiguousarray(np.asarray(leaf))
        digest.update(jax.tree_util.keystr(path).encode())
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def restore_saved_state(workdir: str) -> tuple[int, dict[str, Any]]:
    """(step, state leaves as a dict) of the latest complete checkpoint in `workdir`, on this
    process's first device whatever devices the run saved from; a UserError if there is none."""
    directory = checkpoint_dir(workdir)
    if not os.path.isdir(directory):
        raise UserError(f"{workdir}: no checkpoints (no {directory}); train with `jaxmani train`")
    manager = ocp.CheckpointManager(
        directory,
        options=ocp.CheckpointManagerOptions(read_only=True),
        item_handlers={"state": ocp.StandardCheckpointHandler()},
    )
    step = manager.latest_step()
    if step is None:
        raise UserError(f"{directory}: holds no complete checkpoint; train with `jaxmani train`")
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
        manager.item_metadata(step)["state"],
    )
    state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
    return step, state["state"]


def latest_fingerprint(workdir: str) -> tuple[int, str]:
    """(step, fingerprint) of the latest checkpoint in `workdir`; a UserError if there is none."""
    step, state = restore_saved_state(workdir)
    return step, fingerprint({name: state[name] for name in FINGERPRINT_FIELDS})


def restore_generator(workdir: str) -> tuple[int, dict[str, Any]]:
    """(step, G-EMA variables) of the latest checkpoint: the EMA params with G's BatchNorm
    buffers, which is what the baseline saves and evaluates."""
    step, state = restore_saved_state(workdir)
    return step, {"params": state["g_ema"], "batch_stats": state["g_batch_stats"]}


def read_json(path: str, what: str) -> Any:
    """A JSON file (a UserError naming `what` when it is missing or unreadable)."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no {what}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, OSError) as e:
        raise UserError(f"{path}: unreadable {what} ({e})") from e


def with_defaults(saved: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """`saved` plus every field of `defaults` it lacks (fields added after it was written)."""
    merged = dict(defaults)
    for key, value in saved.items():
        inner = defaults.get(key)
        both = isinstance(value, dict) and isinstance(inner, dict)
        merged[key] = with_defaults(value, inner) if both else value
    return merged


def read_run_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a workdir was trained with (its config.json), with the default value of every
    field a later jaxmani added (an older workdir still evaluates and edits)."""
    from configs import default

    if not os.path.isdir(workdir):
        raise UserError(f"{workdir}: no such workdir")
    path = os.path.join(workdir, "config.json")
    saved = read_json(path, "config.json (not a jaxmani workdir)")
    return ml_collections.ConfigDict(
        with_defaults(saved, json.loads(default.get_config().to_json()))
    )
