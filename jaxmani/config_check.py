"""Checks a whole config once, where it is read: sizes, ranges and names, one line per mistake."""

from collections.abc import Callable
from typing import Any

import ml_collections

from jaxmani.errors import UserError

# Dotted fields and the ranges they must lie in.
POSITIVE_INTS = (
    "data.words_num",
    "data.threads",
    "model.embedding_dim",
    "model.g.gf_dim",
    "model.g.z_dim",
    "model.g.condition_dim",
    "model.d.df_dim",
    "model.text.word_dim",
    "model.image.width",
    "train.batch_size",
    "train.log_every",
    "train.checkpoint_every",
    "train.sample_every",
    "train.max_to_keep",
    "pretrain.batch_size",
    "pretrain.log_every",
    "parallel.num_processes",
    "bench.iters",
    "bench.input_batches",
    "bench.profile_rows",
    "evaluate.batch_size",
    "evaluate.r_precision_repeats",
    "evaluate.grid_rows",
    "evaluate.sweep_images",
)
NON_NEGATIVE_INTS = (
    "data.workers",
    "data.prefetch",
    "model.g.r_num",
    "model.text.vocab_size",
    "train.num_steps",
    "pretrain.num_steps",
    "parallel.process_id",
    "bench.warmup",
    "evaluate.seed",
)
POSITIVE_FLOATS = (
    "optim.g.lr",
    "optim.d.lr",
    "optim.g.eps",
    "optim.d.eps",
    "pretrain.lr",
    "pretrain.lr_min",
    "pretrain.clip_norm",
    "loss.damsm.gamma1",
    "loss.damsm.gamma2",
    "loss.damsm.gamma3",
    "loss.g.nsl_gamma",
    "loss.g.gm_k",
    "loss.d.sad_sigma",
)
NON_NEGATIVE_FLOATS = (
    "loss.g.adversarial_weight",
    "loss.g.word_weight",
    "loss.g.sentence_weight",
    "loss.g.perceptual_weight",
    "loss.g.kl_weight",
    "loss.g.mask_weight",
    "loss.g.nsl_weight",
    "loss.g.paired_edit_weight",
    "loss.g.edited_region_weight",
    "loss.d.sad_weight",
)
BETAS = ("optim.g.b1", "optim.g.b2", "optim.d.b1", "optim.d.b2")  # Adam betas: [0, 1).
FRACTIONS = ("optim.ema_decay",)  # [0, 1].


def field(config: ml_collections.ConfigDict, dotted: str) -> Any:
    """The value at a dotted path; a UserError when the config lacks it."""
    value = config
    for key in dotted.split("."):
        if key not in value:
            raise UserError(
                f"config.{dotted} is missing; start your config from configs/default.py"
            )
        value = value[key]
    return value


def check_range(
    config: ml_collections.ConfigDict,
    names: tuple[str, ...],
    ok: Callable[[Any], bool],
    allowed: str,
) -> None:
    """Raises a UserError naming the first field of `names` whose value fails `ok`."""
    for name in names:
        value = field(config, name)
        if isinstance(value, bool) or not ok(value):
            raise UserError(f"config.{name}={value!r}: must be {allowed}")


def check_choice(config: ml_collections.ConfigDict, name: str, choices: tuple[str, ...]) -> None:
    """Raises a UserError unless the field `name` is one of `choices`."""
    value = field(config, name)
    if value not in choices:
        raise UserError(
            f"config.{name}={value!r}: choose one of {', '.join(repr(c) for c in choices)}"
        )


def check_names(config: ml_collections.ConfigDict) -> None:
    """Image size and encoder (the registry's check), dataset, builder config, mask source, GM
    mode, SAD filter and FID protocol are ones jaxmani knows (train/loop.py checks parallel)."""
    from jaxmani.data import prepare
    from jaxmani.evaluate import fid
    from jaxmani.losses import gradient, mask, sad
    from jaxmani.models import registry

    registry.check_model_config(config)
    check_choice(config, "data.name", tuple(prepare.DATASET_MODULES))
    builder_config = field(config, "data.builder_config") or None
    try:
        prepare.check_builder_config(config.data.name, builder_config)
    except ValueError as e:
        raise UserError(f"config.data.builder_config={builder_config!r}: {e}") from e
    check_choice(config, "loss.g.mask_source", mask.MASK_SOURCES)
    check_choice(config, "loss.g.gm_mode", ("", *gradient.GM_MODES))
    check_choice(config, "loss.d.sad_filter", sad.SAD_FILTERS)
    check_choice(config, "evaluate.fid_protocol", fid.PROTOCOLS)
    check_choice(config, "train.dtype", registry.COMPUTE_DTYPES)


def check_sad_kernels(config: ml_collections.ConfigDict) -> None:
    """The SAD blur kernel is odd; a larger kernel_max (a drawn size) is odd too."""
    kernel = field(config, "loss.d.sad_kernel")
    check_range(config, ("loss.d.sad_kernel",), lambda k: k > 0 and k % 2 == 1, "odd and >= 1")
    if field(config, "loss.d.sad_kernel_max") > kernel:
        check_range(
            config, ("loss.d.sad_kernel_max",), lambda k: k % 2 == 1, f"odd, or <= {kernel} (off)"
        )


def check_paired_edit(config: ml_collections.ConfigDict) -> None:
    """The edited-region term measures the paired edit, which G makes only when it is on."""
    region = field(config, "loss.g.edited_region_weight")
    if region and not field(config, "loss.g.paired_edit_weight"):
        raise UserError(
            f"config.loss.g.edited_region_weight={region!r}: needs "
            "config.loss.g.paired_edit_weight > 0 (the paired edit it measures); set it or set "
            "this weight to 0"
        )


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises a UserError naming the first field whose value jaxmani cannot run with.

    The plain ranges come first: they need no JAX, so most mistakes are reported at once.
    """
    check_range(config, POSITIVE_INTS, lambda v: isinstance(v, int) and v > 0, "an integer >= 1")
    check_range(
        config, NON_NEGATIVE_INTS, lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"
    )
    check_range(config, POSITIVE_FLOATS, lambda v: v > 0, "> 0")
    check_range(config, NON_NEGATIVE_FLOATS, lambda v: v >= 0, ">= 0 (0 = off)")
    check_range(config, BETAS, lambda v: 0 <= v < 1, "in [0, 1)")
    check_range(config, FRACTIONS, lambda v: 0 <= v <= 1, "in [0, 1]")
    check_range(config, ("pretrain.lr_decay",), lambda v: 0 < v <= 1, "in (0, 1]")
    check_range(config, ("model.text.dropout",), lambda v: 0 <= v < 1, "in [0, 1)")
    check_range(config, ("loss.g.mask_threshold",), lambda v: 0 <= v <= 255, "in [0, 255]")
    check_sad_kernels(config)
    check_paired_edit(config)
    check_names(config)
