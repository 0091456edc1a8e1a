"""One baseline training iteration (BASELINE_SPEC 4.4, 5.1) in PyTorch, for step parity.

Upstream counterpart: the body of the batch loop in code/trainer.py (condGANTrainer.train), seed
additions from seed code/trainer.py. All randomness is injected: z and the CA eps come in
``noise``; the batch (images, captions, class ids, optional mask image) comes in ``batch``.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from third_party.lightweight_torch.losses import (
    GAMMA1,
    GAMMA2,
    GAMMA3,
    LAMBDA,
    SAD_KERNEL,
    blurring,
    discriminator_loss,
    generator_loss,
    manipulate_gradient,
)

LEARNING_RATE = 2e-4
BETAS = (0.5, 0.999)
ADAM_EPS = 1e-8
EMA_DECAY = 0.999
EMA_RATE = 0.001
FROZEN = ("text_encoder", "image_encoder", "vgg")

GradientWeight = torch.Tensor | Callable[[torch.Tensor], torch.Tensor]


@dataclass
class TrainOptions:
    """Switches of one iteration; the defaults are upstream (no seed extras)."""

    gamma1: float = GAMMA1
    gamma2: float = GAMMA2
    gamma3: float = GAMMA3
    lambda_damsm: float = LAMBDA
    mask_weight: float = 0.0  # seed M_loss weight (seed: 25); 0 = off; needs batch["mask"]
    sad: bool = False  # seed SAD: blurred reals labelled fake in the D loss
    sad_kernel: int = SAD_KERNEL
    nsl_alpha: float = 0.0  # paper-form NSL weight in the G loss; 0 = off
    nsl_gamma: float = 0.1
    gm: GradientWeight | None = None  # GM weight map (or fake -> weight); None = off
    ema_decay: float = EMA_DECAY
    ema_rate: float = EMA_RATE
    epoch: int = 0  # passed to D (only the seed 4-channel mode reads it)


def as_options(options: TrainOptions | Mapping[str, Any] | None) -> TrainOptions:
    """TrainOptions from an instance, a mapping of its field names, or None (defaults)."""
    if options is None:
        return TrainOptions()
    if isinstance(options, TrainOptions):
        return options
    unknown = set(options) - {f.name for f in fields(TrainOptions)}
    if unknown:
        raise KeyError(f"unknown train options: {sorted(unknown)}")
    return TrainOptions(**options)


def make_optimizers(
    netG: nn.Module, netD: nn.Module, lr_g: float = LEARNING_RATE, lr_d: float = LEARNING_RATE
) -> dict[str, torch.optim.Adam]:
    """Adam(betas (0.5, 0.999), eps 1e-8) over all parameters of G and of D."""
    return {
        "netG": torch.optim.Adam(netG.parameters(), lr=lr_g, betas=BETAS, eps=ADAM_EPS),
        "netD": torch.optim.Adam(netD.parameters(), lr=lr_d, betas=BETAS, eps=ADAM_EPS),
    }


def init_ema(netG: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of G's parameters (not its BatchNorm buffers), keyed by parameter name."""
    return {name: p.detach().clone() for name, p in netG.named_parameters()}


@torch.no_grad()
def update_ema(
    ema: dict[str, torch.Tensor],
    netG: nn.Module,
    decay: float = EMA_DECAY,
    rate: float = EMA_RATE,
) -> None:
    """In place: avg <- decay * avg + rate * param, over G's parameters only."""
    for name, p in netG.named_parameters():
        ema[name].mul_(decay).add_(p.detach(), alpha=rate)


@torch.no_grad()
def encode_captions(
    text_encoder: nn.Module, captions: torch.Tensor, cap_lens: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the text encoder on captions in any order; outputs follow the caller's order.

    The encoder packs sequences and needs descending lengths, so the batch is sorted (stable)
    and the outputs are put back. Returns detached words (B, E, T = max length) and sentences.
    """
    lens = torch.as_tensor(cap_lens).long()
    order = torch.argsort(lens, descending=True, stable=True)
    inverse = torch.argsort(order)
    words, sentence = text_encoder(captions[order.to(captions.device)], lens[order])
    inverse = inverse.to(words.device)
    return words[inverse].detach(), sentence[inverse].detach()


def train_iteration(
    nets: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    batch: Mapping[str, torch.Tensor],
    noise: Mapping[str, torch.Tensor | None],
    options: TrainOptions | Mapping[str, Any] | None = None,
    ema: dict[str, torch.Tensor] | None = None,
) -> dict[str, float]:
    """Run spec 4.4 once: encoders, G forward, D step, G step with the updated D, EMA.

    Args:
      nets: "text_encoder" (RNN_ENCODER), "image_encoder" (CNN_ENCODER), "vgg" (VGGNet) (these
        three are put in eval mode with requires_grad off), "netG" (G_NET), "netD" (D_NET256);
        G and D run in train mode.
      optimizers: "netG" and "netD" (see make_optimizers).
      batch: "images" (B, 3, H, W) real images in [-1, 1]; "captions" (B, L) int64, 0 = padding;
        "cap_lens" (B,); "class_ids" (B,) (optional; None disables DAMSM class masking);
        "mask" (B, 1, H, W) seed mask image M (needed when options.mask_weight > 0). The batch
        is used in the given order (the upstream loader sorts it by caption length first).
      noise: "z" (B, z_dim); "ca_eps" (B, condition_dim) or None (then G draws it).
      options: TrainOptions or a mapping of its fields.
      ema: G parameter averages from init_ema, updated in place when given.

    Returns:
      every loss term's value (floats), see discriminator_loss and generator_loss.
    """
    opts = as_options(options)
    if opts.mask_weight > 0 and batch.get("mask") is None:
        raise ValueError("options.mask_weight > 0 needs batch['mask']")
    for name in FROZEN:
        nets[name].eval().requires_grad_(False)
    netG, netD = nets["netG"].train(), nets["netD"].train()
    real, captions = batch["images"], batch["captions"]
    cap_lens, class_ids = batch["cap_lens"], batch.get("class_ids")

    words_embs, sent_emb = encode_captions(nets["text_encoder"], captions, cap_lens)
    with torch.no_grad():
        region_features, cnn_code = nets["image_encoder"](real)
        vgg_features = nets["vgg"](real)
    word_mask = captions[:, : words_embs.size(2)] == 0
    fake_imgs, _, mu, logvar = netG(
        noise["z"],
        sent_emb,
        words_embs,
        word_mask,
        cnn_code,
        region_features,
        vgg_features,
        ca_eps=noise.get("ca_eps"),
    )
    fake = fake_imgs[-1]
    mask_image = batch["mask"] if opts.mask_weight > 0 else None

    optimizers["netD"].zero_grad(set_to_none=False)
    blurred = blurring(real, opts.sad_kernel) if opts.sad else None
    errD, d_values = discriminator_loss(netD, real, fake, sent_emb, blurred, opts.epoch)
    errD.backward()
    optimizers["netD"].step()

    optimizers["netG"].zero_grad(set_to_none=False)
    g_fake = fake
    if opts.gm is not None:
        weight = opts.gm if isinstance(opts.gm, torch.Tensor) else opts.gm(fake.detach())
        g_fake = manipulate_gradient(fake, weight)
    errG, g_values = generator_loss(
        netD,
        nets["image_encoder"],
        nets["vgg"],
        g_fake,
        real,
        sent_emb,
        words_embs,
        cap_lens,
        class_ids,
        mu,
        logvar,
        real_vgg_features=vgg_features,
        gamma1=opts.gamma1,
        gamma2=opts.gamma2,
        gamma3=opts.gamma3,
        lambda_damsm=opts.lambda_damsm,
        mask=mask_image,
        mask_weight=opts.mask_weight,
        nsl_alpha=opts.nsl_alpha,
        nsl_gamma=opts.nsl_gamma,
        epoch=opts.epoch,
    )
    errG.backward()
    optimizers["netG"].step()

    if ema is not None:
        update_ema(ema, netG, opts.ema_decay, opts.ema_rate)
    return {**d_values, **g_values}
