"""The PyTorch side of `jaxmani bench`: the restatement in third_party/ timed on the same inputs.

jaxmani's only PyTorch code outside the converters; torch is imported inside each function, so
`jaxmani bench` runs JAX-only where torch is not installed.
"""

import os
from typing import Any

import ml_collections
import numpy as np

from jaxmani.bench import Row, edit_inputs, peak_rss_bytes, random_inputs, time_median

# G_NET keyword arguments named like the config.compat switches they restate.
G_COMPAT_SWITCHES = (
    "attention_mask_other_sample",
    "channel_attention_batch_padding",
    "skip_init_bn_at_batch_one",
    "nearest_scale_index",
    "ca_noise_at_eval",
)


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
            model.g.gf_dim, model.g.z_dim, model.g.condition_dim, model.embedding_dim, model.g.r_num
        )
        words = x["words_emb"].transpose(1, 2).contiguous()
        eps = torch.zeros(config.train.batch_size, model.g.condition_dim, device=device)

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
        module = lt.D_NET256(model.d.df_dim, model.embedding_dim)

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


def torch_train_nets(config: ml_collections.ConfigDict, device: str) -> dict[str, Any]:
    """The restatement's G, D and frozen encoders at the config's sizes, on `device`."""
    import torch

    from third_party import lightweight_torch as lt

    model = config.model
    torch.manual_seed(config.seed)
    netG = lt.G_NET(
        model.g.gf_dim,
        model.g.z_dim,
        model.g.condition_dim,
        model.embedding_dim,
        model.g.r_num,
        **{name: config.compat[name] for name in G_COMPAT_SWITCHES},
    )
    netD = lt.D_NET256(model.d.df_dim, model.embedding_dim)
    netG.apply(lt.weights_init)
    netD.apply(lt.weights_init)
    nets = {
        "netG": netG,
        "netD": netD,
        "text_encoder": lt.RNN_ENCODER(
            model.text.vocab_size, ninput=model.text.word_dim, nhidden=model.embedding_dim
        ),
        "image_encoder": lt.CNN_ENCODER(model.embedding_dim),
        "vgg": lt.VGGNet(),
    }
    return {name: net.to(device) for name, net in nets.items()}


def torch_train_step(
    config: ml_collections.ConfigDict, batch: dict[str, np.ndarray]
) -> tuple[Row, int]:
    """Times the restatement's train_iteration (EMA included) on the same batch, under
    torch.autocast(bfloat16) when config.train.dtype is "bfloat16".

    Returns the row and this process's peak RSS in bytes: run it in a child process of its own.
    """
    import torch

    from third_party.lightweight_torch import train_step as lt_step

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    nets = torch_train_nets(config, device)
    optimizers = lt_step.make_optimizers(
        nets["netG"], nets["netD"], lr_g=config.optim.g.lr, lr_d=config.optim.d.lr
    )
    ema = lt_step.init_ema(nets["netG"])
    options = {"ema_decay": config.optim.ema_decay, "ema_rate": 1.0 - config.optim.ema_decay}
    inputs = {
        "images": torch.from_numpy(batch["image"].transpose(0, 3, 1, 2).copy()),
        "captions": torch.from_numpy(batch["caption"].astype(np.int64)),
        "cap_lens": torch.from_numpy(batch["caption_length"].astype(np.int64)),
        "class_ids": torch.from_numpy(batch["class_id"].astype(np.int64)),
    }
    inputs = {key: value.to(device) for key, value in inputs.items()}
    shape = (config.train.batch_size, config.model.g.z_dim)
    mixed = config.train.dtype == "bfloat16"

    def step():
        noise = {"z": torch.randn(shape, device=device), "ca_eps": None}  # G draws its CA eps.
        with torch.autocast(device, dtype=torch.bfloat16, enabled=mixed):
            lt_step.train_iteration(nets, optimizers, inputs, noise, options, ema=ema)
        if device == "cuda":
            torch.cuda.synchronize()

    seconds = time_median(step, config.bench.warmup, config.bench.iters)
    peak = int(torch.cuda.max_memory_allocated()) if device == "cuda" else None
    return Row("train_step", "torch", seconds, peak), peak_rss_bytes()


def torch_edit(config: ml_collections.ConfigDict, batches: tuple[int, ...]) -> list[Row]:
    """The same edit forward on the PyTorch restatement (eval mode, no_grad, NCHW), G under
    torch.autocast(bfloat16) when config.train.dtype is "bfloat16"."""
    import torch

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    nets = torch_train_nets(config, device)
    for net in nets.values():
        net.eval()
    mixed = config.train.dtype == "bfloat16"
    rows = []
    for batch in batches:
        inputs = edit_inputs(config, batch, config.seed)
        inputs["images"] = inputs["images"].transpose(0, 3, 1, 2).copy()
        x = {k: torch.from_numpy(v).to(device) for k, v in inputs.items()}
        captions = x["captions"].long()

        def step(x=x, captions=captions):
            with torch.no_grad():
                words, sentence = nets["text_encoder"](captions, x["lengths"].cpu())
                region, code = nets["image_encoder"](x["images"])
                vgg = nets["vgg"](x["images"])
                mask = captions == 0
                with torch.autocast(device, dtype=torch.bfloat16, enabled=mixed):
                    nets["netG"](x["z"], sentence, words, mask, code, region, vgg, x["ca_eps"])
            if device == "cuda":
                torch.cuda.synchronize()

        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        seconds = time_median(step, config.bench.warmup, config.bench.iters)
        peak = int(torch.cuda.max_memory_allocated()) if device == "cuda" else None
        rows.append(Row(f"edit_batch{batch}", "torch", seconds, peak))
    return rows
