"""`jaxmani train`: the GAN training loop with checkpoints, automatic resume, logs and samples."""

import ctypes
import dataclasses
import functools
import json
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxmani import generate, params_io
from jaxmani.data import pipeline, prepare
from jaxmani.errors import UserError
from jaxmani.losses import mask
from jaxmani.models import registry
from jaxmani.progress import Progress, status
from jaxmani.train import checkpoint
from jaxmani.train.state import TrainState, create_train_state
from jaxmani.train.step import StepModels, train_step
from jaxmani.train.writer import MetricWriter

# Batch keys the training step reads (data/pipeline.py documents them); the rest stay on the host.
STEP_KEYS = (
    "image",
    "caption",
    "caption_length",
    "class_id",
    "mask",
    "edit_image",
    "edit_caption",
    "edit_caption_length",
)
SAMPLE_ROWS = 4
XLA_CACHE = "xla_cache"  # <workdir>/xla_cache: the run's persistent compilation cache.
AXIS = "data"  # The batch axis: of the jit mesh, and the pmap axis name.
# Generator options that mix the samples of a batch inside G, which pmap does not gather.
BATCH_COUPLED_COMPAT = ("attention_mask_other_sample", "channel_attention_batch_padding")


def resolve_vocabulary(
    config: ml_collections.ConfigDict, vocabulary: tuple[str, ...]
) -> ml_collections.ConfigDict:
    """A copy of `config` whose text vocabulary size is the dataset's (0 means 'take it')."""
    config = config.copy_and_resolve_references()
    size = config.model.text.vocab_size
    if size and size != len(vocabulary):
        raise UserError(
            f"config.model.text.vocab_size={size} but the dataset's vocabulary has "
            f"{len(vocabulary)} words; set --config.model.text.vocab_size={len(vocabulary)} or 0"
        )
    with config.unlocked():
        config.model.text.vocab_size = len(vocabulary)
    return config


def dataset_vocabulary(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The word list of the configured dataset (a UserError naming `jaxmani prepare` if absent)."""
    pipeline.load_builder(config)
    data = config.data
    return prepare.load_vocabulary(data.name, data.data_dir, data.builder_config or None).words


def load_frozen(config: ml_collections.ConfigDict, rng: jax.Array) -> dict[str, Any]:
    """Frozen networks' variables: the configured params files, else seeded random weights."""
    frozen = {}
    for index, name in enumerate(generate.FROZEN_NETWORKS):
        path = config.pretrained[name]
        if path:
            frozen[name] = params_io.load_variables(path, name, config)
        else:
            frozen[name] = registry.init_variables(name, config, jax.random.fold_in(rng, index))
    return frozen


def check_parallel(config: ml_collections.ConfigDict) -> None:
    """Refuses parallel settings the trainer does not run."""
    mode = config.parallel.mode
    if mode not in ("jit", "pmap"):
        raise UserError(
            f"config.parallel.mode={mode!r}: choose 'jit' (the global batch sharded over a "
            "('data',) mesh) or 'pmap' (jax.pmap over each host's devices)"
        )
    coupled = [name for name in BATCH_COUPLED_COMPAT if config.compat[name]]
    if mode == "pmap" and coupled:
        raise UserError(
            f"config.compat.{coupled[0]} mixes the samples of a batch inside G, which "
            "config.parallel.mode='pmap' does not reproduce; use --config.parallel.mode=jit"
        )


def check_batch_split(batch_size: int) -> None:
    """Refuses a global batch that the devices of the run cannot share equally."""
    if batch_size % jax.device_count():
        raise UserError(
            f"config.train.batch_size={batch_size} is not divisible by the "
            f"{jax.device_count()} devices; set it to a multiple of {jax.device_count()}"
        )


def initialize_distributed(parallel: ml_collections.ConfigDict) -> None:
    """Joins a multi-process run as config.parallel.coordinator says (nothing for "")."""
    if not parallel.coordinator:
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if parallel.coordinator == "auto":
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(
            parallel.coordinator, parallel.num_processes, parallel.process_id
        )


def create_mesh() -> Mesh:
    """A 1-D ('data',) mesh over every device of every process."""
    return Mesh(np.asarray(jax.devices()), (AXIS,))


def create_step_models(config: ml_collections.ConfigDict) -> StepModels:
    """The step's modules; in pmap mode G's and D's BatchNorms use the global batch."""
    axis_name = AXIS if config.parallel.mode == "pmap" else None
    networks = dataclasses.replace(
        generate.create_networks(config),
        generator=registry.create_network("generator", config, bn_axis_name=axis_name),
    )
    return StepModels(
        networks=networks,
        discriminator=registry.create_network("discriminator", config, bn_axis_name=axis_name),
        config=config,
        axis_name=axis_name,
    )


def replicate(mode: str, mesh: Mesh, tree: Any) -> Any:
    """A pytree on the devices: replicated over the mesh (jit), or one copy per local device
    stacked along a leading axis (pmap)."""
    if mode == "jit":
        return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))
    devices = jax.local_devices()
    stacked = jax.tree.map(
        lambda x: np.broadcast_to(x, (len(devices), *np.shape(x))), jax.device_get(tree)
    )
    local = Mesh(np.asarray(devices), (AXIS,))
    return jax.device_put(stacked, NamedSharding(local, PartitionSpec(AXIS)))


def first_replica(mode: str, tree: Any) -> Any:
    """One copy of a replicated step output: device 0's in pmap mode, the tree itself in jit."""
    return jax.tree.map(lambda x: x[0], tree) if mode == "pmap" else tree


def unreplicate(mode: str, mesh: Mesh, state: TrainState) -> TrainState:
    """The state as jit mode holds it (replicated over the mesh): what checkpoints save."""
    if mode == "jit":
        return state
    return replicate("jit", mesh, jax.device_get(first_replica(mode, state)))


def device_batch(mode: str, mesh: Mesh, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The step's keys of a host batch for the step: global arrays (jit), or split into
    (local devices, rows per device, ...) for pmap."""
    batch = select_step_keys(batch)
    if mode == "jit":
        return pipeline.to_global_batch(batch, mesh)
    devices = jax.local_device_count()
    return {key: value.reshape(devices, -1, *value.shape[1:]) for key, value in batch.items()}


def select_step_keys(batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The subset of a host batch the step reads."""
    return {key: batch[key] for key in STEP_KEYS if key in batch}


def make_step(mode: str, models: StepModels, mesh: Mesh) -> Any:
    """The train step of `mode`, state donated: jit with the batch sharded over the mesh and the
    rest replicated, or jax.pmap over each host's devices (axis AXIS)."""
    step = functools.partial(train_step, models=models)
    if mode == "pmap":
        return jax.pmap(step, axis_name=AXIS, donate_argnums=0)
    replicated = NamedSharding(mesh, PartitionSpec())
    sharded = NamedSharding(mesh, PartitionSpec(AXIS))
    return jax.jit(
        step,
        in_shardings=(replicated, sharded, replicated),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )


def release_freed_memory() -> None:
    """Hands the C heap's free pages back to the OS (glibc's malloc_trim; elsewhere nothing).

    Compiling the bird step frees over a GB that glibc would otherwise keep resident, and the
    step's own buffers come from elsewhere, so without this it would add to the run's peak RSS.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except AttributeError:  # Not glibc.
        return
    trim(0)


def compile_step(
    mode: str,
    models: StepModels,
    mesh: Mesh,
    state: TrainState,
    batch: dict[str, jax.Array],
    frozen: Any,
) -> tuple[Any, float]:
    """make_step(mode) compiled for these inputs (it refuses others, so it never recompiles);
    seconds. The compiler's freed memory is released before the step first runs."""
    start = time.perf_counter()
    compiled = make_step(mode, models, mesh).lower(state, batch, frozen).compile()
    seconds = time.perf_counter() - start
    release_freed_memory()
    return compiled, seconds


def make_sampler(models: StepModels, frozen: Any) -> Any:
    """jit_sample(state, batch): G-EMA (eval mode) edits with the mismatched captions."""

    def sample(state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        encoded = generate.encode(
            models.networks,
            frozen,
            batch["image"],
            batch["wrong_caption"],
            batch["wrong_caption_length"],
        )
        z = generate.sample_z(jax.random.PRNGKey(0), batch["image"].shape[0], models.config)
        variables = {"params": state.g_ema, "batch_stats": state.g_batch_stats}
        outputs, _ = generate.generate(
            models.networks, variables, encoded, z, train=False, noise_rng=jax.random.PRNGKey(1)
        )
        source = "gt" if "mask" in batch else "hm"
        background = mask.background_mask(
            source, batch["image"], outputs["image"], batch.get("mask"), 32.5
        )
        return {"edit": outputs["image"], "mask": background}

    return jax.jit(sample)


def sample_grid(images: np.ndarray, edits: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Rows of original | edit | background mask (white = kept), as one [-1, 1] image."""
    masks = np.broadcast_to(masks * 2.0 - 1.0, images.shape)
    rows = [np.concatenate(row, axis=1) for row in zip(images, edits, masks, strict=True)]
    return np.concatenate(rows, axis=0)


def check_finite(step: int, metrics: Mapping[str, float], workdir: str) -> None:
    """Stops the run with one line naming the first non-finite loss term."""
    for name, value in metrics.items():
        if not np.isfinite(value):
            raise UserError(
                f"step {step}: {name} is {value}; training stopped. The last good checkpoint is "
                f"in {checkpoint.checkpoint_dir(workdir)} (lower the learning rates or check "
                "the data)"
            )


def save_run_files(workdir: str, config: ml_collections.ConfigDict, vocabulary: Any) -> None:
    """Writes config.json (checked against an existing one) and vocabulary.json in the workdir
    (process 0 writes, every process checks)."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "config.json")
    if os.path.exists(path):
        with open(path) as f:
            checkpoint.check_same_run(f"workdir {workdir}", json.load(f), config)
    if jax.process_index() == 0:
        write_atomically(path, config.to_json(indent=2))
        write_atomically(os.path.join(workdir, "vocabulary.json"), json.dumps(list(vocabulary)))


def write_atomically(path: str, text: str) -> None:
    """Writes `path` through a renamed temporary file: other processes never read half of it."""
    with open(f"{path}.tmp", "w") as f:
        f.write(text)
    os.replace(f"{path}.tmp", path)


def use_workdir_compilation_cache(workdir: str) -> str:
    """Points JAX's persistent compilation cache at <workdir>/xla_cache unless a cache directory
    is already set (jax_compilation_cache_dir, JAX_COMPILATION_CACHE_DIR); returns the one in use.

    Call it before the first compilation: a resumed run then loads its compiled step from the
    cache instead of compiling it again.
    """
    if not jax.config.values["jax_compilation_cache_dir"]:
        path = os.path.join(os.path.abspath(workdir), XLA_CACHE)
        jax.config.update("jax_compilation_cache_dir", path)
    return jax.config.values["jax_compilation_cache_dir"]


def train(
    config: ml_collections.ConfigDict, workdir: str, compilation_cache: bool = False
) -> TrainState:
    """Trains (or resumes) the configured GAN in `workdir` up to config.train.num_steps.

    With `compilation_cache`, the run's compilations use <workdir>/xla_cache
    (use_workdir_compilation_cache) from the moment the workdir holds the run's files: a run
    refused before that leaves no workdir behind.
    """
    check_parallel(config)
    initialize_distributed(config.parallel)
    check_batch_split(config.train.batch_size)
    vocabulary = dataset_vocabulary(config)
    config = resolve_vocabulary(config, vocabulary)
    root = jax.random.PRNGKey(config.seed)
    frozen = load_frozen(config, jax.random.fold_in(root, 1))  # Before writing: a missing file.
    save_run_files(workdir, config, vocabulary)
    if compilation_cache:
        use_workdir_compilation_cache(workdir)
    mesh = create_mesh()
    models = create_step_models(config)
    state = create_train_state(config, jax.random.fold_in(root, 0))
    edits = config.loss.g.paired_edit_weight > 0
    iterator = iter(pipeline.create_dataset(config, "train", edits=edits))
    manager = checkpoint.create_manager(workdir, config.train.max_to_keep)
    meta = checkpoint.run_meta(config, vocabulary)
    restored = checkpoint.restore_latest(manager, state, iterator, config)
    if restored is not None:
        state = restored[0]
    start = int(state.step)
    if start >= config.train.num_steps:
        print(f"{workdir}: already at step {start} of {config.train.num_steps}", flush=True)
        return state
    state, frozen = replicate(config.parallel.mode, mesh, (state, frozen))
    try:
        return run_loop(config, workdir, models, mesh, state, frozen, iterator, manager, meta)
    finally:
        manager.wait_until_finished()


def run_loop(
    config: ml_collections.ConfigDict,
    workdir: str,
    models: StepModels,
    mesh: Mesh,
    state: TrainState,
    frozen: Any,
    iterator: Iterator[Mapping[str, np.ndarray]],
    manager: Any,
    meta: dict[str, Any],
) -> TrainState:
    """Steps from state.step to num_steps: log, check, sample and checkpoint on schedule."""
    train_cfg, mode = config.train, config.parallel.mode
    writer = MetricWriter(workdir)
    first = next(iterator)
    sample_batch = jax.device_put({k: jnp.asarray(v[:SAMPLE_ROWS]) for k, v in first.items()})
    sampler = make_sampler(models, first_replica(mode, frozen))
    batch = device_batch(mode, mesh, first)
    step_fn, seconds = compile_step(mode, models, mesh, state, batch, frozen)
    status("train", f"step compiled (or loaded from the compilation cache) in {seconds:.1f} s")
    start = int(first_replica(mode, state.step))
    progress = Progress(start, train_cfg.num_steps, "train")
    try:
        while True:
            state, metrics = step_fn(state, batch, frozen)
            step = int(first_replica(mode, state.step))
            last = step >= train_cfg.num_steps
            logged = None
            if step % train_cfg.log_every == 0 or step % train_cfg.checkpoint_every == 0 or last:
                values = jax.device_get(first_replica(mode, metrics))
                logged = {k: float(v) for k, v in values.items()}
                check_finite(step, logged, workdir)
                writer.write_scalars(step, {f"train/{k}": v for k, v in logged.items()})
            progress.update(step, logged and {k: logged[k] for k in ("d_loss", "g_loss")})
            if step % train_cfg.sample_every == 0 or last:
                out = jax.device_get(sampler(unreplicate(mode, mesh, state), sample_batch))
                grid = sample_grid(np.asarray(sample_batch["image"]), out["edit"], out["mask"])
                writer.write_image(step, "samples", grid)
            if step % train_cfg.checkpoint_every == 0 or last:
                checkpoint.save(manager, unreplicate(mode, mesh, state), iterator, meta)
            if last:
                return unreplicate(mode, mesh, state)
            batch = device_batch(mode, mesh, next(iterator))
    finally:
        progress.close()
        writer.close()
