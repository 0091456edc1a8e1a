"""`jaxmani train`: the GAN training loop with checkpoints, automatic resume, logs and samples."""

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
from jaxmani.progress import Progress
from jaxmani.train import checkpoint
from jaxmani.train.state import TrainState, create_train_state
from jaxmani.train.step import StepModels, train_step
from jaxmani.train.writer import MetricWriter

# Batch keys the training step reads (data/pipeline.py documents them); the rest stay on the host.
STEP_KEYS = ("image", "caption", "caption_length", "class_id", "mask")
SAMPLE_ROWS = 4


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


def check_parallel(parallel: ml_collections.ConfigDict) -> None:
    """Refuses parallel settings the trainer does not run."""
    if parallel.mode != "jit":
        raise UserError(
            f"config.parallel.mode={parallel.mode!r}: only 'jit' (a global batch sharded over a "
            "('data',) mesh, which also spans hosts) is available"
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
    return Mesh(np.asarray(jax.devices()), ("data",))


def select_step_keys(batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The subset of a host batch the step reads."""
    return {key: batch[key] for key in STEP_KEYS if key in batch}


def compile_step(
    models: StepModels, mesh: Mesh, state: TrainState, batch: dict[str, jax.Array], frozen: Any
) -> tuple[Any, float]:
    """jit_train_step compiled for these shapes (batch sharded, the rest replicated); seconds."""
    replicated = NamedSharding(mesh, PartitionSpec())
    sharded = NamedSharding(mesh, PartitionSpec("data"))
    jit_train_step = jax.jit(
        functools.partial(train_step, models=models),
        in_shardings=(replicated, sharded, replicated),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )
    start = time.perf_counter()
    compiled = jit_train_step.lower(state, batch, frozen).compile()
    return compiled, time.perf_counter() - start


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
    """Writes config.json (checked against an existing one) and vocabulary.json in the workdir."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "config.json")
    if os.path.exists(path):
        with open(path) as f:
            checkpoint.check_same_run(f"workdir {workdir}", json.load(f), config)
    if jax.process_index() == 0:
        with open(path, "w") as f:
            f.write(config.to_json(indent=2))
        with open(os.path.join(workdir, "vocabulary.json"), "w") as f:
            json.dump(list(vocabulary), f)


def train(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
    """Trains (or resumes) the configured GAN in `workdir` up to config.train.num_steps."""
    check_parallel(config.parallel)
    initialize_distributed(config.parallel)
    vocabulary = dataset_vocabulary(config)
    config = resolve_vocabulary(config, vocabulary)
    save_run_files(workdir, config, vocabulary)
    mesh = create_mesh()
    models = StepModels(
        networks=generate.create_networks(config),
        discriminator=registry.create_network("discriminator", config),
        config=config,
    )
    root = jax.random.PRNGKey(config.seed)
    frozen = load_frozen(config, jax.random.fold_in(root, 1))
    state = create_train_state(config, jax.random.fold_in(root, 0))
    iterator = iter(pipeline.create_dataset(config, "train"))
    manager = checkpoint.create_manager(workdir, config.train.max_to_keep)
    meta = checkpoint.run_meta(config, vocabulary)
    restored = checkpoint.restore_latest(manager, state, iterator, config)
    if restored is not None:
        state = restored[0]
    start = int(state.step)
    if start >= config.train.num_steps:
        print(f"{workdir}: already at step {start} of {config.train.num_steps}", flush=True)
        return state
    replicated = NamedSharding(mesh, PartitionSpec())
    state, frozen = jax.device_put((state, frozen), replicated)
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
    train_cfg = config.train
    writer = MetricWriter(workdir)
    first = next(iterator)
    sample_batch = jax.device_put({k: jnp.asarray(v[:SAMPLE_ROWS]) for k, v in first.items()})
    sampler = make_sampler(models, frozen)
    batch = pipeline.to_global_batch(select_step_keys(first), mesh)
    jit_train_step, seconds = compile_step(models, mesh, state, batch, frozen)
    print(f"compiled the train step in {seconds:.1f} s", flush=True)
    progress = Progress(int(state.step), train_cfg.num_steps, "train")
    try:
        while True:
            state, metrics = jit_train_step(state, batch, frozen)
            step = int(state.step)
            last = step >= train_cfg.num_steps
            logged = None
            if step % train_cfg.log_every == 0 or step % train_cfg.checkpoint_every == 0 or last:
                logged = {k: float(v) for k, v in jax.device_get(metrics).items()}
                check_finite(step, logged, workdir)
                writer.write_scalars(step, {f"train/{k}": v for k, v in logged.items()})
            progress.update(step, logged and {k: logged[k] for k in ("d_loss", "g_loss")})
            if step % train_cfg.sample_every == 0 or last:
                out = jax.device_get(sampler(state, sample_batch))
                grid = sample_grid(np.asarray(sample_batch["image"]), out["edit"], out["mask"])
                writer.write_image(step, "samples", grid)
            if step % train_cfg.checkpoint_every == 0 or last:
                checkpoint.save(manager, state, iterator, meta)
            if last:
                return state
            batch = pipeline.to_global_batch(select_step_keys(next(iterator)), mesh)
    finally:
        progress.close()
        writer.close()
