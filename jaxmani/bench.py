"""Benchmarks printed as ratios against the PyTorch restatement on the same machine."""

import concurrent.futures
import dataclasses
import importlib.util
import multiprocessing
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxmani.errors import UserError
from jaxmani.models import registry
from jaxmani.progress import stage

BIRD_VOCAB_SIZE = 5450  # The usual birds vocabulary, used where config.model.text.vocab_size is 0.
CUB_CLASSES = 200
# The paper's methods: the restatement's train_iteration has none or a different form of them, so
# `bench train` times the baseline step (the Lightweight losses) on both sides.
METHOD_SWITCHES = (
    "loss.g.mask_weight",
    "loss.g.nsl_weight",
    "loss.g.gm_mode",
    "loss.g.paired_edit_weight",
    "loss.g.edited_region_weight",
    "loss.d.sad_weight",
    "model.d.sharp_channel",
)
BF16_NOTE = (
    "bfloat16: JAX computes G and D in bfloat16, PyTorch runs under torch.autocast(bfloat16) "
    "(the step: every network; an edit: G)"
)


@dataclasses.dataclass(frozen=True)
class Row:
    """One benchmark measurement: median seconds per iteration and peak bytes (None if unknown)."""

    name: str
    framework: str
    seconds: float
    peak_bytes: int | None


def time_median(step: Callable[[], None], warmup: int, iters: int) -> float:
    """Median wall time of `step` (which must block until its work is done)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_inputs(name: str, config: ml_collections.ConfigDict, seed: int) -> dict[str, np.ndarray]:
    """Example inputs of network `name` filled with seeded random values (float32 N(0,1))."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for key, value in registry.example_inputs(name, config, config.train.batch_size).items():
        if value.dtype == jnp.bool_:
            inputs[key] = np.zeros(value.shape, bool)
        else:
            inputs[key] = rng.standard_normal(value.shape).astype(np.float32)
    return inputs


def compiled_peak_bytes(compiled: Any) -> int | None:
    """XLA's memory analysis of a compiled function: temporaries + arguments + outputs."""
    memory = compiled.memory_analysis()
    if memory is None:
        return None
    return int(
        memory.temp_size_in_bytes + memory.argument_size_in_bytes + memory.output_size_in_bytes
    )


def jax_forward_backward(name: str, config: ml_collections.ConfigDict) -> Row:
    """Times one train-mode forward+backward (gradient of the output sum w.r.t. params)."""
    module = registry.create_network(name, config)
    variables = registry.init_variables(name, config, jax.random.key(config.seed))
    inputs = random_inputs(name, config, config.seed)
    if name == "generator":
        inputs["ca_eps"] = np.zeros(
            (config.train.batch_size, config.model.g.condition_dim), np.float32
        )

    def loss(params, batch_stats, inputs):
        outputs, _ = module.apply(
            {"params": params, "batch_stats": batch_stats},
            **inputs,
            train=True,
            mutable=["batch_stats"],
            method=registry.apply_fn(name),
        )
        return sum(jnp.sum(x) for x in jax.tree_util.tree_leaves(outputs))

    grad = jax.jit(jax.grad(loss))
    args = (variables["params"], variables["batch_stats"], inputs)
    compiled = grad.lower(*args).compile()
    seconds = time_median(
        lambda: jax.block_until_ready(compiled(*args)), config.bench.warmup, config.bench.iters
    )
    return Row(name, "jax", seconds, compiled_peak_bytes(compiled))


def bench_forward(config: ml_collections.ConfigDict) -> list[Row]:
    """Forward+backward time and peak memory of G and D in JAX and, if installed, in PyTorch."""
    from jaxmani.convert import torch_bench

    rows = []
    for name in ("generator", "discriminator"):
        with stage("bench", f"{name}: jax (compiling, then timing)"):
            rows.append(jax_forward_backward(name, config))
        if importlib.util.find_spec("torch") is not None:
            with stage("bench", f"{name}: torch"):
                rows.append(torch_bench.torch_forward_backward(name, config))
    return rows


def format_rows(rows: list[Row]) -> list[str]:
    """Human-readable lines, with the JAX/PyTorch time ratio where both were measured."""
    lines = [f"device: {jax.devices()[0].device_kind} ({jax.default_backend()})"]
    seconds = {(row.name, row.framework): row.seconds for row in rows}
    for row in rows:
        memory = "n/a" if row.peak_bytes is None else f"{row.peak_bytes / 2**20:.0f} MiB"
        line = f"{row.name:14s} {row.framework:6s} {row.seconds * 1e3:9.1f} ms  peak {memory}"
        if row.framework == "jax" and (row.name, "torch") in seconds:
            line += f"  jax/torch time {row.seconds / seconds[(row.name, 'torch')]:.2f}"
        lines.append(line)
    return lines


def bench_input(config: ml_collections.ConfigDict, data_dir: str, num_batches: int) -> str:
    """Times whole batches (decode, augment, tokenise, batch) of the train pipeline after a
    warm-up of config.bench.warmup batches; returns the images/s line."""
    from jaxmani.data import pipeline

    iterator = iter(pipeline.create_dataset(config, "train", data_dir=data_dir))
    for _ in range(config.bench.warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(num_batches):
        next(iterator)
    seconds = time.perf_counter() - start
    iterator.close()
    size, rows = config.data.image_size, config.train.batch_size // jax.process_count()
    line = (
        f"input: {num_batches * rows / seconds:.0f} images/s per host "
        f"({size} x {size}, batch {rows}, {config.data.workers} workers)"
    )
    return line


@dataclasses.dataclass(frozen=True)
class TrainBench:
    """`bench train`'s measurements of one full D + G step in each framework."""

    rows: list[Row]
    compile_seconds: float  # Lowering + compiling the JAX step, before its first run.
    flops: float  # FLOPs of one JAX step by XLA's cost analysis.
    peak_rss: dict[str, int]  # Framework -> peak RSS bytes of the process that ran it.
    batch_size: int
    image_size: int
    note: str  # Why there is no PyTorch row, else BF16_NOTE under bfloat16, else "".


def peak_rss_bytes() -> int:
    """This process's peak resident set size (Linux VmHWM).

    Not getrusage's ru_maxrss: that survives fork and exec, so a spawned child would report its
    parent's peak. VmHWM belongs to the process's own address space, which starts at its exec.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # In kB.
    raise OSError("/proc/self/status has no VmHWM")


def train_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """seeded_config of `config`, refused if a method of the paper is on (the restatement's step
    has none of them)."""
    on = [name for name in METHOD_SWITCHES if config_value(config, name)]
    if on:
        raise UserError(
            f"bench train times the baseline step; switch off {', '.join(on)} (configs/bird.py)"
        )
    return seeded_config(config)


def seeded_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of `config` with a vocabulary size and seeded random frozen encoders.

    The frozen encoders' weights do not change a step's work, so their params files (which a toy
    config names before `jaxmani pretrain` has written them) are not read.
    """
    config = config.copy_and_resolve_references()
    with config.unlocked():
        config.model.text.vocab_size = config.model.text.vocab_size or BIRD_VOCAB_SIZE
        for name in config.pretrained:
            config.pretrained[name] = ""
    return config


def torch_missing_reason(config: ml_collections.ConfigDict) -> str:
    """Why the PyTorch restatement cannot run this config's step ("" when it can)."""
    if importlib.util.find_spec("torch") is None:
        return "PyTorch is not installed: JAX only"
    if config.data.image_size != 256 or config.model.image.encoder != "inception":
        return (
            "the PyTorch restatement exists only at 256x256 with the Inception encoder "
            f"(this config: {config.data.image_size}x{config.data.image_size}, "
            f"{config.model.image.encoder} encoder): JAX only"
        )
    return ""


def bench_note(config: ml_collections.ConfigDict, missing: str) -> str:
    """Why PyTorch has no row (`missing`), else what bfloat16 means on each side, else ""."""
    return missing or (BF16_NOTE if config.train.dtype == "bfloat16" else "")


def config_value(config: ml_collections.ConfigDict, dotted: str) -> Any:
    """The config field at a dotted path such as "loss.g.mask_weight"."""
    for key in dotted.split("."):
        config = config[key]
    return config


def train_batch(config: ml_collections.ConfigDict, seed: int) -> dict[str, np.ndarray]:
    """A seeded batch: images in [-1, 1], 0-padded captions of mixed lengths, class ids.

    The first caption has the full config.data.words_num words, so PyTorch (which trims the
    padding to the longest caption) sees as many word columns as jaxmani.
    """
    rng = np.random.default_rng(seed)
    size, words, rows = config.data.image_size, config.data.words_num, config.train.batch_size
    lengths = rng.integers(1, words + 1, rows)
    lengths[0] = words
    captions = rng.integers(1, config.model.text.vocab_size, (rows, words))
    captions *= np.arange(words) < lengths[:, None]
    return {
        "image": rng.uniform(-1.0, 1.0, (rows, size, size, 3)).astype(np.float32),
        "caption": captions.astype(np.int32),
        "caption_length": lengths.astype(np.int32),
        "class_id": rng.integers(1, CUB_CLASSES + 1, rows).astype(np.int32),
    }


def method_inputs(config: ml_collections.ConfigDict, batch: dict[str, np.ndarray]) -> dict:
    """`batch` plus the seeded inputs the config's methods read: a dataset mask (`gt`, `fcn`)
    and, for the paired-edit term, edit images and captions (the batch's own, reversed)."""
    batch = dict(batch)
    g = config.loss.g
    if g.mask_weight and g.mask_source in ("gt", "fcn"):
        rng = np.random.default_rng(config.seed)
        batch["mask"] = (rng.uniform(size=(*batch["image"].shape[:3], 1)) > 0.5).astype(np.float32)
    if g.paired_edit_weight:
        batch["edit_image"] = batch["image"][::-1].copy()
        batch["edit_caption"] = batch["caption"][::-1].copy()
        batch["edit_caption_length"] = batch["caption_length"][::-1].copy()
    return batch


def compiled_train_step(
    config: ml_collections.ConfigDict, batch: dict[str, np.ndarray]
) -> tuple[Any, Callable[[], None], float]:
    """The compiled train_step (state donated, inputs on the device once), a function that runs
    one step and blocks, and the compile seconds."""
    from jaxmani import generate
    from jaxmani.data import pipeline
    from jaxmani.train import loop
    from jaxmani.train.state import create_train_state
    from jaxmani.train.step import StepModels

    models = StepModels(
        networks=generate.create_networks(config),
        discriminator=registry.create_network("discriminator", config),
        config=config,
    )
    mesh = loop.create_mesh()
    root = jax.random.PRNGKey(config.seed)
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    state, frozen = jax.device_put(
        (
            create_train_state(config, jax.random.fold_in(root, 0)),
            loop.load_frozen(config, jax.random.fold_in(root, 1)),
        ),
        replicated,
    )
    device_batch = pipeline.to_global_batch(batch, mesh)
    compiled, compile_seconds = loop.compile_step("jit", models, mesh, state, device_batch, frozen)
    carry = {"state": state}

    def step():
        carry["state"], metrics = compiled(carry["state"], device_batch, frozen)
        jax.block_until_ready((carry["state"], metrics))

    return compiled, step, compile_seconds


def jax_train_step(
    config: ml_collections.ConfigDict, batch: dict[str, np.ndarray]
) -> tuple[Row, float, float]:
    """Times the jitted train_step; returns the row, the compile seconds and XLA's FLOPs."""
    compiled, step, compile_seconds = compiled_train_step(config, batch)
    flops = float(compiled.cost_analysis()["flops"])  # A dict in jax 0.10.
    seconds = time_median(step, config.bench.warmup, config.bench.iters)
    return Row("train_step", "jax", seconds, compiled_peak_bytes(compiled)), compile_seconds, flops


def bench_profile(config: ml_collections.ConfigDict) -> list[str]:
    """The train step of `config` (methods included), after config.bench.warmup steps, profiled
    over config.bench.iters steps: its time per network, per op kind and its slowest ops."""
    from jaxmani import profiling

    config = seeded_config(config)
    batch = method_inputs(config, train_batch(config, config.seed))
    compiled, step, compile_seconds = compiled_train_step(config, batch)
    for _ in range(config.bench.warmup):
        step()
    profile = profiling.profile_steps(step, compiled.as_text(), config.bench.iters)
    size = config.data.image_size
    title = f"train_step at batch {config.train.batch_size}, {size}x{size}"
    return [
        f"device: {jax.devices()[0].device_kind} ({jax.default_backend()})",
        f"jax compile before the first step {compile_seconds:.1f} s",
        *profiling.format_profile(profile, title, config.bench.profile_rows),
    ]


def bench_train(config: ml_collections.ConfigDict) -> TrainBench:
    """One full training step (D + G + EMA, frozen encoders) in JAX and, where the restatement
    runs the config (torch_missing_reason), in PyTorch.

    Both get the same networks, batch and config.bench warmup and iterations. Peak RSS: JAX's is
    this process's peak after its measurement (everything before it in the process included);
    PyTorch's is that of a fresh spawned process that ran only the PyTorch step (it imports this
    module, so jax too, ~160 MiB on CPU, but never starts a JAX backend).
    """
    from jaxmani.convert import torch_bench

    config = train_config(config)
    batch = train_batch(config, config.seed)
    row, compile_seconds, flops = jax_train_step(config, batch)
    rows = [row]
    peak_rss = {"jax": peak_rss_bytes()}
    missing = torch_missing_reason(config)
    if not missing:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            torch_row, peak_rss["torch"] = pool.submit(
                torch_bench.torch_train_step, config, batch
            ).result()
        rows.append(torch_row)
    size = config.data.image_size
    note = bench_note(config, missing)
    return TrainBench(rows, compile_seconds, flops, peak_rss, config.train.batch_size, size, note)


def format_train(result: TrainBench) -> list[str]:
    """format_rows plus steps/s, compile time, FLOP/s and peak RSS; the last line is
    machine-readable."""
    seconds = result.rows[0].seconds
    rss = {name: value / 2**20 for name, value in result.peak_rss.items()}
    memory = ", ".join(f"{name} {value:.0f} MiB" for name, value in rss.items())
    if "torch" in rss:
        memory += f"  jax/torch {rss['jax'] / rss['torch']:.2f}"
    size = f"{result.image_size}x{result.image_size}"
    speed = ", ".join(f"{row.framework} {1 / row.seconds:.3f}" for row in result.rows)
    return [
        *format_rows(result.rows),
        *([f"note: {result.note}"] if result.note else []),
        f"steps/s at batch {result.batch_size}, {size}: {speed}",
        f"jax compile before the first step {result.compile_seconds:.1f} s",
        f"jax {result.flops / seconds / 1e9:.1f} GFLOP/s achieved "
        f"({result.flops / 1e9:.2f} GFLOP per step by XLA's cost analysis)",
        f"peak RSS (each framework in its own process) {memory}",
        f"train_step_seconds {seconds:.6f} peak_rss_mib {result.peak_rss['jax'] // 2**20}",
    ]


EDIT_BATCHES = (1, 10)  # Batch sizes `bench edit` times.
EDIT_INPUTS = ("images", "captions", "lengths", "z", "ca_eps")  # generate.edit's order.


@dataclasses.dataclass(frozen=True)
class EditBench:
    """`bench edit`'s rows (one per framework and batch size) and why PyTorch is missing, if so."""

    rows: list[Row]
    batches: tuple[int, ...]
    note: str


def edit_inputs(config: ml_collections.ConfigDict, batch: int, seed: int) -> dict[str, np.ndarray]:
    """A seeded edit batch: images in [-1, 1], captions of words_num words, z and zero CA eps."""
    rng = np.random.default_rng(seed)
    size, words, model = config.data.image_size, config.data.words_num, config.model
    return {
        "images": rng.uniform(-1.0, 1.0, (batch, size, size, 3)).astype(np.float32),
        "captions": rng.integers(1, model.text.vocab_size, (batch, words)).astype(np.int32),
        "lengths": np.full((batch,), words, np.int32),
        "z": rng.standard_normal((batch, model.g.z_dim)).astype(np.float32),
        "ca_eps": np.zeros((batch, model.g.condition_dim), np.float32),
    }


def jax_edit(config: ml_collections.ConfigDict, batches: tuple[int, ...]) -> list[Row]:
    """Times the compiled edit forward (text and image encoders, VGG, G in eval mode) per batch."""
    from jaxmani import generate
    from jaxmani.train import loop

    networks = generate.create_networks(config)
    root = jax.random.PRNGKey(config.seed)
    variables = (
        registry.init_variables("generator", config, jax.random.fold_in(root, 0)),
        loop.load_frozen(config, jax.random.fold_in(root, 1)),
    )
    forward = jax.jit(lambda *args: generate.edit(networks, *args))
    rows = []
    for batch in batches:
        inputs = jax.device_put(edit_inputs(config, batch, config.seed))
        args = (*variables, *(inputs[key] for key in EDIT_INPUTS))
        compiled = forward.lower(*args).compile()
        seconds = time_median(
            lambda compiled=compiled, args=args: jax.block_until_ready(compiled(*args)),
            config.bench.warmup,
            config.bench.iters,
        )
        rows.append(Row(f"edit_batch{batch}", "jax", seconds, compiled_peak_bytes(compiled)))
    return rows


def bench_edit(
    config: ml_collections.ConfigDict, batches: tuple[int, ...] = EDIT_BATCHES
) -> EditBench:
    """Latency of one edit at the config's size, after compilation, per batch size, in JAX and,
    at 256x256 with the Inception encoder and torch installed, in the PyTorch restatement."""
    from jaxmani.convert import torch_bench

    config = config.copy_and_resolve_references()
    with config.unlocked():
        config.model.text.vocab_size = config.model.text.vocab_size or BIRD_VOCAB_SIZE
    rows = jax_edit(config, batches)
    missing = torch_missing_reason(config)
    if not missing:
        rows += torch_bench.torch_edit(config, batches)
    return EditBench(rows, batches, bench_note(config, missing))


def format_edit(result: EditBench) -> list[str]:
    """format_rows plus milliseconds per image of every row, and the note if there is one."""
    lines = format_rows(result.rows)
    for row in result.rows:
        batch = int(row.name.removeprefix("edit_batch"))
        lines.append(f"{row.name:14s} {row.framework:6s} {row.seconds / batch * 1e3:9.1f} ms/image")
    return [*lines, result.note] if result.note else lines
