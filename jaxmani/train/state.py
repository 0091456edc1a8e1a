"""The training state of one GAN run and the optimisers that advance it."""

from typing import Any

import jax
import ml_collections
import optax
from flax import struct

from jaxmani.models import registry


class TrainState(struct.PyTreeNode):
    """Everything a training step reads and writes: both players, G's EMA, optimisers, rng."""

    step: jax.Array  # Completed G steps (int32 scalar).
    g_params: Any
    g_batch_stats: Any
    g_ema: Any  # Exponential moving average of g_params (parameters only, not BN buffers).
    d_params: Any
    d_batch_stats: Any
    g_opt_state: Any
    d_opt_state: Any
    rng: jax.Array  # Root key of the run; each step folds in `step`.


def create_optimizer(optim: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """PyTorch's Adam with config.optim.<player> values (eps added to the root of v-hat)."""
    return optax.adam(optim.lr, b1=optim.b1, b2=optim.b2, eps=optim.eps)


def create_train_state(config: ml_collections.ConfigDict, rng: jax.Array) -> TrainState:
    """Initialises G and D (the baseline's orthogonal / N(1, 0.02) init) and both optimisers."""
    g_rng, d_rng, run_rng = jax.random.split(rng, 3)
    g_vars = registry.init_variables("generator", config, g_rng)
    d_vars = registry.init_variables("discriminator", config, d_rng)
    return TrainState(
        step=jax.numpy.zeros((), jax.numpy.int32),
        g_params=g_vars["params"],
        g_batch_stats=g_vars["batch_stats"],
        g_ema=jax.tree_util.tree_map(jax.numpy.copy, g_vars["params"]),
        d_params=d_vars["params"],
        d_batch_stats=d_vars["batch_stats"],
        g_opt_state=create_optimizer(config.optim.g).init(g_vars["params"]),
        d_opt_state=create_optimizer(config.optim.d).init(d_vars["params"]),
        rng=run_rng,
    )


def update_ema(ema: Any, params: Any, decay: float) -> Any:
    """avg <- decay * avg + (1 - decay) * params, leaf by leaf."""
    return jax.tree_util.tree_map(lambda a, p: decay * a + (1.0 - decay) * p, ema, params)
