"""Benchmarks printed as ratios against the PyTorch restatement on the same machine."""

import dataclasses
import importlib.util
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxmani.models import registry


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


def jax_forward_backward(name: str, config: ml_collections.ConfigDict) -> Row:
    """Times one train-mode forward+backward (gradient of the output sum w.r.t. params)."""
    module = registry.create_network(name, config)
    variables = registry.init_variables(name, config, jax.random.key(config.seed))
    inputs = random_inputs(name, config, config.seed)
    if name == "generator":
        inputs["ca_eps"] = np.zeros(
            (config.train.batch_size, config.model.condition_dim), np.float32
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
    memory = compiled.memory_analysis()
    peak = None
    if memory is not None:
        peak = int(
            memory.temp_size_in_bytes + memory.argument_size_in_bytes + memory.output_size_in_bytes
        )
    seconds = time_median(
        lambda: jax.block_until_ready(compiled(*args)), config.bench.warmup, config.bench.iters
    )
    return Row(name, "jax", seconds, peak)


def torch_forward_backward(name: str, config: ml_collections.ConfigDict) -> Row:
    """The same measurement on the PyTorch restatement in third_party/ (NCHW, train mode)."""
    import torch  # optional: only for the comparison

    from third_party import lightweight_torch as lt

    model = config.model
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = {
        k: torch.from_numpy(v.transpose(0, 3, 1, 2).copy() if v.ndim == 4 else v).to(device)
        for k, v in random_inputs(name, config, config.seed).items()
    }
    if name == "generator":
        module = lt.G_NET(
            model.gf_dim, model.z_dim, model.condition_dim, model.embedding_dim, model.r_num
        )
        words = x["words_emb"].transpose(1, 2).contiguous()
        eps = torch.zeros(config.train.batch_size, model.condition_dim, device=device)

        def forward():
            images = module(
                x["z"],
                x["sent_emb"],
                words,
                x["mask"],
                x["cnn_code"],
                x["region_features"],
                x["vgg_features"],
                ca_eps=eps,
            )[0][0]
            return images.sum()
    else:
        module = lt.D_NET256(model.df_dim, model.embedding_dim)

        def forward():
            features = module(x["images"])
            cond = module.COND_DNET(features, x["sent_emb"])
            return cond.sum() + module.UNCOND_DNET(features).sum()

    module.to(device).train()

    def step():
        module.zero_grad(set_to_none=True)
        forward().backward()
        if device == "cuda":
            torch.cuda.synchronize()

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = time_median(step, config.bench.warmup, config.bench.iters)
    peak = int(torch.cuda.max_memory_allocated()) if device == "cuda" else None
    return Row(name, "torch", seconds, peak)


def bench_forward(config: ml_collections.ConfigDict) -> list[Row]:
    """Forward+backward time and peak memory of G and D in JAX and, if installed, in PyTorch."""
    rows = []
    for name in ("generator", "discriminator"):
        rows.append(jax_forward_backward(name, config))
        if importlib.util.find_spec("torch") is not None:
            rows.append(torch_forward_backward(name, config))
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
