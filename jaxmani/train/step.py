"""One pure GAN training step: D update, then G against the updated D, then G's EMA.

BASELINE_SPEC §4.4: G runs once per step and its output serves both players. jaxmani takes that
forward pass with `jax.vjp`, updates D on the detached fake, then differentiates the G loss (with
the updated D) with respect to G's outputs and pulls the cotangents back through the same pass.
Every loss term is a pure function from `jaxmani.losses`, switched and weighted by `config.loss`;
a G term of weight 0 is neither computed nor logged.
The one exception to a single G pass is toy_birds' paired-edit term (`loss.g.paired_edit_weight`,
not a method of the paper): inside the same differentiated function G also edits the batch with
its ground-truth edit captions, with the same noise, and only the first pass's BatchNorm statistics
are kept; `loss.g.edited_region_weight` weighs the same edit's L1 over the recoloured pixels.

The same function runs under `jax.jit` on the global batch or under `jax.pmap` (StepModels with
`axis_name`, networks built with that `bn_axis_name`) on one device's rows of it: BatchNorm then
takes global statistics, the terms that pair examples of a batch (the mismatched caption of the D
loss, the B x B DAMSM losses) all_gather their inputs, the noise is drawn for the global batch and
sliced, and gradients and metrics are averaged over the axis, so both give the same step.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import linen as nn

from jaxmani import generate
from jaxmani.losses import damsm, gradient, kl, mask, paired_edit, perceptual, sad, sharpness
from jaxmani.losses.adversarial import binary_cross_entropy
from jaxmani.models.layers import norm_dtype
from jaxmani.train.state import TrainState, create_optimizer, update_ema

Variables = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class StepModels:
    """The static parts of a step: modules and the config (closed over by jit)."""

    networks: generate.Networks
    discriminator: nn.Module
    config: ml_collections.ConfigDict
    axis_name: str | None = None  # The pmap axis of the batch; None under jit.


def gather_batch(models: StepModels, x: jax.Array) -> jax.Array:
    """The global batch of a per-device array (every device's rows, in order); x under jit."""
    if models.axis_name is None:
        return x
    return jax.lax.all_gather(x, models.axis_name, tiled=True)


def on_global_batch(models: StepModels) -> StepModels:
    """The models for arrays that already hold the global batch: D's BatchNorms take statistics
    (and the running variance's sample count) over them alone."""
    if models.axis_name is None:
        return models
    discriminator = models.discriminator.clone(bn_axis_name=None)
    return dataclasses.replace(models, discriminator=discriminator, axis_name=None)


def global_size(models: StepModels, rows: int) -> int:
    """Rows of the global batch when each device holds `rows`."""
    return rows if models.axis_name is None else rows * jax.lax.axis_size(models.axis_name)


def local_rows(models: StepModels, x: jax.Array) -> jax.Array:
    """This device's rows of a global-batch array; x under jit."""
    if models.axis_name is None:
        return x
    rows = x.shape[0] // jax.lax.axis_size(models.axis_name)
    return jax.lax.dynamic_slice_in_dim(x, jax.lax.axis_index(models.axis_name) * rows, rows)


def mean_over_devices(models: StepModels, tree: Any) -> Any:
    """The mean of a pytree over the pmap axis (gradients, metrics); tree under jit."""
    if models.axis_name is None:
        return tree
    return jax.lax.pmean(tree, models.axis_name)


def draw_noise(models: StepModels, rng: jax.Array, batch_size: int) -> dict[str, jax.Array]:
    """G's noise for a global batch: z and the CA eps, both N(0, 1)."""
    z_rng, ca_rng = jax.random.split(rng)
    return {
        "z": generate.sample_z(z_rng, batch_size, models.config),
        "ca_eps": jax.random.normal(ca_rng, (batch_size, models.config.model.g.condition_dim)),
    }


def d_call(
    models: StepModels, variables: Variables, method: str, *args: jax.Array
) -> tuple[jax.Array, Variables]:
    """One train-mode call of a D method; each call is its own BatchNorm batch (§7.2)."""
    out, updates = models.discriminator.apply(
        variables,
        *args,
        train=True,
        method=getattr(type(models.discriminator), method),
        mutable=["batch_stats"],
    )
    return out, {"params": variables["params"], "batch_stats": updates["batch_stats"]}


def d_features(
    models: StepModels, variables: Variables, images: jax.Array
) -> tuple[jax.Array, Variables]:
    """D's backbone features of images, with the seed's sharp-region 4th channel if configured."""
    if models.config.model.d.sharp_channel:
        images = jnp.concatenate([images, sharpness.sharp_channel(images)], axis=-1)
    return d_call(models, variables, "__call__", images)


def d_uncond(models: StepModels, variables: Variables, features: jax.Array) -> jax.Array:
    """D's unconditional logits (its head has no BatchNorm)."""
    return models.discriminator.apply(
        variables, features, method=type(models.discriminator).uncond_logits
    )


def bce(models: StepModels, logits: jax.Array, label: float) -> jax.Array:
    """BCE of logits against a constant label, clamped like PyTorch under compat."""
    clamp = models.config.compat.bce_log_clamp
    logits = logits.astype(norm_dtype(logits.dtype))  # bfloat16 D: the loss in float32.
    return binary_cross_entropy(logits, jnp.full_like(logits, label), clamp)


def discriminator_loss(
    models: StepModels,
    variables: Variables,
    real: jax.Array,
    fake: jax.Array,
    sentence: jax.Array,
    blurred: jax.Array | None,
) -> tuple[jax.Array, tuple[dict[str, jax.Array], Variables]]:
    """errD of §4.3 (without the gradient-free word-level term), plus SAD's blurred reals."""
    f_real, variables = d_features(models, variables, real)
    f_fake, variables = d_features(models, variables, fake)
    cond_real, variables = d_call(models, variables, "cond_logits", f_real, sentence)
    cond_fake, variables = d_call(models, variables, "cond_logits", f_fake, sentence)
    wrong_images, wrong_text = gather_batch(models, f_real)[:-1], gather_batch(models, sentence)[1:]
    cond_wrong, variables = d_call(
        on_global_batch(models), variables, "cond_logits", wrong_images, wrong_text
    )
    uncond_real = d_uncond(models, variables, f_real)
    uncond_fake = d_uncond(models, variables, f_fake)
    terms = {
        "d_cond_real": bce(models, cond_real, 1.0),
        "d_cond_fake": bce(models, cond_fake, 0.0),
        "d_cond_wrong": bce(models, cond_wrong, 0.0),
        "d_uncond_real": bce(models, uncond_real, 1.0),
        "d_uncond_fake": bce(models, uncond_fake, 0.0),
    }
    total = (terms["d_uncond_real"] + terms["d_cond_real"]) / 2 + (
        terms["d_uncond_fake"] + terms["d_cond_fake"] + terms["d_cond_wrong"]
    ) / 3
    if blurred is not None:
        f_blur, variables = d_features(models, variables, blurred)
        cond_blur, variables = d_call(models, variables, "cond_logits", f_blur, sentence)
        terms["d_sad"] = bce(models, cond_blur, 0.0)
        total = total + models.config.loss.d.sad_weight * terms["d_sad"]
    return total, (terms, variables)


def generator_loss(
    models: StepModels,
    d_variables: Variables,
    frozen: dict[str, Any],
    batch: dict[str, jax.Array],
    encoded: generate.Encoded,
    outputs: tuple[jax.Array, ...],
) -> tuple[jax.Array, tuple[dict[str, jax.Array], Variables]]:
    """errG of §4.2 plus the paper's terms, as a function of G's outputs (fake, mu, logvar),
    which end with G's edit under the ground-truth edit caption when the paired-edit term is on."""
    config, weights = models.config, models.config.loss.g
    fake, mu, logvar, *paired = outputs
    real = batch["image"]
    if weights.gm_mode:
        fake = gradient.scale_gradient(
            fake, gradient.gm_weights(fake, weights.gm_mode, weights.gm_k)
        )
    f_fake, d_variables = d_features(models, d_variables, fake)
    cond, d_variables = d_call(models, d_variables, "cond_logits", f_fake, encoded.sentence)
    uncond = d_uncond(models, d_variables, f_fake)
    region, code = models.networks.image_encoder.apply(frozen["image_encoder"], fake)
    gammas = config.loss.damsm
    words, word_mask, region, code, sentence, class_ids = (
        gather_batch(models, x)
        for x in (encoded.words, encoded.mask, region, code, encoded.sentence, batch["class_id"])
    )
    w0, w1, _ = damsm.words_loss(
        words, word_mask, region, class_ids, gammas.gamma1, gammas.gamma2, gammas.gamma3
    )
    s0, s1 = damsm.sentence_loss(code, sentence, class_ids, gammas.gamma3)
    terms = {
        "g_adversarial": bce(models, cond, 1.0) + bce(models, uncond, 1.0),
        "g_word": w0 + w1,
        "g_sentence": s0 + s1,
        "g_perceptual": perceptual.perceptual_loss(
            encoded.vgg, models.networks.vgg.apply(frozen["vgg"], fake)
        ),
        "g_kl": kl.kl_loss(mu, logvar),
    }
    if weights.mask_weight:
        background = mask.background_mask(
            weights.mask_source, real, fake, batch.get("mask"), weights.mask_threshold
        )
        terms["g_mask"] = mask.mae_mask_loss(real, fake, background)
    if weights.nsl_weight:
        label = sharpness.sharp_region(real)
        terms["g_nsl"] = sharpness.naive_sharpness_loss(fake, label, weights.nsl_gamma)
    if weights.paired_edit_weight:
        target = batch["edit_image"]
        terms["g_paired_edit"] = paired_edit.paired_edit_loss(paired[0], target)
        terms["g_edited_region"] = paired_edit.edited_region_loss(paired[0], target, real)
    # A term of weight 0 leaves the graph (and the logs): XLA removes its forward and backward.
    terms = {name: value for name, value in terms.items() if weights[f"{name[2:]}_weight"]}
    total = sum(weights[f"{name[2:]}_weight"] * value for name, value in terms.items())
    return total, (terms, d_variables)


def blur_for_sad(
    config: ml_collections.ConfigDict, real: jax.Array, rng: jax.Array
) -> jax.Array | None:
    """SAD's blurred reals, or None when SAD is off."""
    d = config.loss.d
    if not d.sad_weight:
        return None
    return sad.blur_reals(
        real,
        rng,
        filter=d.sad_filter,
        kernel_size=d.sad_kernel,
        kernel_size_max=d.sad_kernel_max,
        sigma=d.sad_sigma,
    )


def train_step(
    state: TrainState,
    batch: dict[str, jax.Array],
    frozen: dict[str, Any],
    noise: dict[str, jax.Array] | None = None,
    *,
    models: StepModels,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """Advances `state` by one D and one G update on `batch` (keys of data/pipeline.py).

    `noise` ({"z", "ca_eps"} of the global batch) injects G's noise for parity tests; otherwise
    both are drawn from the state's rng folded with the step, so a resumed run draws the same
    noise. Under pmap, `batch` holds this device's rows and the metrics are global means.
    """
    config = models.config
    noise_rng, sad_rng = jax.random.split(jax.random.fold_in(state.rng, state.step))
    real = batch["image"]
    encoded = generate.encode(
        models.networks, frozen, real, batch["caption"], batch["caption_length"]
    )
    if noise is None:
        noise = draw_noise(models, noise_rng, global_size(models, real.shape[0]))
    noise = {key: local_rows(models, value) for key, value in noise.items()}

    paired = None
    if config.loss.g.paired_edit_weight:
        paired = generate.recaption(
            models.networks, frozen, encoded, batch["edit_caption"], batch["edit_caption_length"]
        )

    def g_forward(g_params):
        g_variables = {"params": g_params, "batch_stats": state.g_batch_stats}

        def run(inputs):
            return generate.generate(
                models.networks,
                g_variables,
                inputs,
                noise["z"],
                train=True,
                ca_eps=noise["ca_eps"],
            )

        outputs, stats = run(encoded)
        fakes = (outputs["image"], outputs["mu"], outputs["logvar"])
        if paired is not None:
            fakes = (*fakes, run(paired)[0]["image"])
        return fakes, stats

    outputs, g_vjp, g_batch_stats = jax.vjp(g_forward, state.g_params, has_aux=True)

    d_variables = {"params": state.d_params, "batch_stats": state.d_batch_stats}
    blurred = blur_for_sad(config, real, sad_rng)
    (d_loss, (d_terms, d_variables)), d_grads = jax.value_and_grad(
        lambda params: discriminator_loss(
            models,
            {"params": params, "batch_stats": d_variables["batch_stats"]},
            real,
            jax.lax.stop_gradient(outputs[0]),
            encoded.sentence,
            blurred,
        ),
        has_aux=True,
    )(state.d_params)
    d_grads = mean_over_devices(models, d_grads)
    d_updates, d_opt_state = create_optimizer(config.optim.d).update(
        d_grads, state.d_opt_state, state.d_params
    )
    d_params = optax.apply_updates(state.d_params, d_updates)

    (g_loss, (g_terms, d_variables)), output_grads = jax.value_and_grad(
        lambda outs: generator_loss(
            models,
            {"params": d_params, "batch_stats": d_variables["batch_stats"]},
            frozen,
            batch,
            encoded,
            outs,
        ),
        has_aux=True,
    )(outputs)
    g_grads = mean_over_devices(models, g_vjp(output_grads)[0])
    g_updates, g_opt_state = create_optimizer(config.optim.g).update(
        g_grads, state.g_opt_state, state.g_params
    )
    g_params = optax.apply_updates(state.g_params, g_updates)

    new_state = state.replace(
        step=state.step + 1,
        g_params=g_params,
        g_batch_stats=g_batch_stats,
        g_ema=update_ema(state.g_ema, g_params, config.optim.ema_decay),
        d_params=d_params,
        d_batch_stats=d_variables["batch_stats"],
        g_opt_state=g_opt_state,
        d_opt_state=d_opt_state,
    )
    metrics = {
        **mean_over_devices(models, {"d_loss": d_loss, "g_loss": g_loss, **d_terms, **g_terms}),
        "d_grad_norm": optax.global_norm(d_grads),
        "g_grad_norm": optax.global_norm(g_grads),
    }
    return new_state, metrics
