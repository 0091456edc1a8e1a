"""Baseline losses (BASELINE_SPEC 4 and 6) restated in PyTorch, NCHW, float32 or float64.

Upstream counterparts: code/miscc/losses.py (BCE, DAMSM, KL, discriminator and generator losses),
code/VGGFeatureLoss.py (perceptual term), seed code/miscc/losses.py (M_loss, blurring,
sharpness_loss), seed code/trainer.py (GradientManipulator), seed code/sharp_detector.py.
The discriminator heads of ``D_NET256`` return probabilities (sigmoid inside), so every
adversarial term is a BCE on probabilities with PyTorch's -100 log clamp.
"""

from collections.abc import Sequence

import torch
from torch import nn
from torch.autograd.function import FunctionCtx
from torch.nn import functional as F

from third_party.lightweight_torch.discriminator import LAPLACIAN, sharp_region_mask

COSINE_EPS = 1e-8
SAD_KERNEL = 9
KMEAN_STEPS = 5
MASK_WEIGHT = 25.0
PERCEPTUAL_WEIGHT = 0.5
GAMMA1, GAMMA2, GAMMA3, LAMBDA = 4.0, 5.0, 10.0, 5.0

ClassIds = torch.Tensor | Sequence[int] | None


# Elementary terms.


def bce(probs: torch.Tensor, labels: torch.Tensor | float) -> torch.Tensor:
    """torch.nn.BCELoss (mean): -mean[y max(log p, -100) + (1 - y) max(log(1 - p), -100)]."""
    if not isinstance(labels, torch.Tensor):
        labels = torch.full_like(probs, float(labels))
    wide = torch.promote_types(probs.dtype, torch.float32)
    with torch.autocast(probs.device.type, enabled=False):  # CUDA autocast refuses BCE on probs.
        return F.binary_cross_entropy(probs.to(wide), labels.to(wide))


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL term: -0.5 * mean over all elements of (1 + logvar - mu^2 - exp(logvar))."""
    return -0.5 * torch.mean(1.0 + logvar - mu.pow(2) - logvar.exp())


def perceptual_loss(
    real_features: torch.Tensor, fake_features: torch.Tensor, weight: float = PERCEPTUAL_WEIGHT
) -> torch.Tensor:
    """weight * MSE (mean over all elements) of VGG relu2_2 features of real and fake images."""
    return weight * F.mse_loss(real_features, fake_features)


def mask_loss(
    real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor, weight: float = MASK_WEIGHT
) -> torch.Tensor:
    """Seed M_loss: weight * mean(|real - fake| * mask); mask (B, 1, H, W) broadcasts over RGB."""
    return weight * torch.mean(torch.abs(real - fake) * mask)


# DAMSM (spec 4.1).


def cosine_similarity(x1: torch.Tensor, x2: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """dot(x1, x2) / max(|x1| |x2|, 1e-8) along dim."""
    dot = torch.sum(x1 * x2, dim)
    norms = torch.norm(x1, 2, dim) * torch.norm(x2, 2, dim)
    return dot / norms.clamp(min=COSINE_EPS)


def func_attention(
    query: torch.Tensor, context: torch.Tensor, gamma1: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """DAMSM word-region attention.

    Args:
      query: (B, E, n) words.
      context: (B, E, ih, iw) region features.
      gamma1: sharpening factor of the softmax over regions.

    Returns:
      region context per word (B, E, n) and attention alpha (B, n, ih, iw).
    """
    batch, _, n_words = query.shape
    ih, iw = context.shape[2], context.shape[3]
    regions = context.reshape(batch, -1, ih * iw)
    scores = torch.bmm(regions.transpose(1, 2), query)
    attn = torch.softmax(scores, dim=2)
    attn = torch.softmax(attn.transpose(1, 2) * gamma1, dim=2)
    weighted = torch.bmm(regions, attn.transpose(1, 2))
    return weighted, attn.reshape(batch, n_words, ih, iw)


def class_mask(class_ids: ClassIds, batch_size: int, device: torch.device) -> torch.Tensor | None:
    """(B, B) bool, True where b != i and class_ids[b] == class_ids[i]; None without class ids."""
    if class_ids is None:
        return None
    ids = torch.as_tensor(class_ids, device=device).reshape(-1)[:batch_size]
    same = ids.unsqueeze(0) == ids.unsqueeze(1)
    return same & ~torch.eye(batch_size, dtype=torch.bool, device=device)


def words_similarity(
    img_features: torch.Tensor,
    words_emb: torch.Tensor,
    cap_lens: torch.Tensor | Sequence[int],
    batch_size: int,
    gamma1: float = GAMMA1,
    gamma2: float = GAMMA2,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """R(b, i) = log sum_j exp(gamma2 cos(e_ij, c_ij)), images b in rows, captions i in columns.

    Returns the (B, B) matrix (before gamma3 and masking) and, per caption i, the attention
    (1, n_i, ih, iw) of its words over image i.
    """
    columns, att_maps = [], []
    for i in range(batch_size):
        n_i = int(cap_lens[i])
        word = words_emb[i, :, :n_i].unsqueeze(0).repeat(batch_size, 1, 1)
        weighted, attn = func_attention(word, img_features, gamma1)
        att_maps.append(attn[i].unsqueeze(0))
        word = word.transpose(1, 2).reshape(batch_size * n_i, -1)
        weighted = weighted.transpose(1, 2).reshape(batch_size * n_i, -1)
        row_sim = cosine_similarity(word, weighted).view(batch_size, n_i)
        row_sim = torch.log(torch.exp(row_sim * gamma2).sum(dim=1, keepdim=True))
        columns.append(row_sim)
    return torch.cat(columns, dim=1), att_maps


def words_loss(
    img_features: torch.Tensor,
    words_emb: torch.Tensor,
    labels: torch.Tensor,
    cap_lens: torch.Tensor | Sequence[int],
    class_ids: ClassIds,
    batch_size: int,
    gamma1: float = GAMMA1,
    gamma2: float = GAMMA2,
    gamma3: float = GAMMA3,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """DAMSM word loss: CE of gamma3 * R (same-class negatives at -inf) both ways.

    Args:
      img_features: (B, E, ih, iw) region features.
      words_emb: (B, E, T) word features; caption i uses its first cap_lens[i] words.
      labels: (B,) int64 match labels, arange(B).
      cap_lens: (B,) caption lengths.
      class_ids: (B,) class ids, or None for no masking.
      batch_size: B.

    Returns:
      w_loss0 = CE(S, labels) (rows = images), w_loss1 = CE(S^T, labels), attention maps.
    """
    sims, att_maps = words_similarity(img_features, words_emb, cap_lens, batch_size, gamma1, gamma2)
    sims = sims * gamma3
    masks = class_mask(class_ids, batch_size, sims.device)
    if masks is not None:
        sims = sims.masked_fill(masks, float("-inf"))
    return F.cross_entropy(sims, labels), F.cross_entropy(sims.t(), labels), att_maps


def sent_loss(
    cnn_code: torch.Tensor,
    rnn_code: torch.Tensor,
    labels: torch.Tensor,
    class_ids: ClassIds,
    batch_size: int,
    gamma3: float = GAMMA3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DAMSM sentence loss: S'(b, i) = gamma3 cos(g_b, s_i), same-class masking, CE both ways.

    Args:
      cnn_code: (B, E) global image codes g.
      rnn_code: (B, E) sentence embeddings s.
      labels: (B,) int64 match labels.
      class_ids: (B,) class ids, or None.
      batch_size: B.

    Returns:
      s_loss0 = CE(S', labels) (rows = images), s_loss1 = CE(S'^T, labels).
    """
    scores = cnn_code @ rnn_code.t()
    norms = torch.norm(cnn_code, 2, dim=1, keepdim=True) @ torch.norm(rnn_code, 2, dim=1)[None]
    scores = scores / norms.clamp(min=COSINE_EPS) * gamma3
    masks = class_mask(class_ids, batch_size, scores.device)
    if masks is not None:
        scores = scores.masked_fill(masks, float("-inf"))
    return F.cross_entropy(scores, labels), F.cross_entropy(scores.t(), labels)


# Seed sharpness tools (spec 6.4 - 6.7).


def grey_laplacian_abs(x: torch.Tensor, padding_mode: str = "replicate") -> torch.Tensor:
    """|4-neighbour Laplacian| of the channel mean: (B, C, H, W) -> (B, 1, H, W).

    padding_mode "replicate" (seed NSL and GM) or "zeros" (SharpDetector, sharpness score).
    """
    grey = x.mean(dim=1, keepdim=True)
    mode = "constant" if padding_mode == "zeros" else padding_mode
    padded = F.pad(grey, (1, 1, 1, 1), mode=mode)
    kernel = grey.new_tensor(LAPLACIAN).view(1, 1, 3, 3)
    return F.conv2d(padded, kernel).abs()


@torch.no_grad()
def two_means_sharp_mask(a: torch.Tensor, steps: int = KMEAN_STEPS) -> torch.Tensor:
    """Per-image 1-D 2-means by iterative thresholding; (B, 1, H, W) -> bool, True = sharp.

    t = mean(a); ``steps`` times: t = (mean(a[a > t]) + mean(a[a <= t])) / 2; sharp = a > t.
    """
    sharp = torch.zeros_like(a, dtype=torch.bool)
    for b in range(a.size(0)):
        values = a[b]
        t = values.mean()
        for _ in range(steps):
            t = (values[values > t].mean() + values[values <= t].mean()) / 2.0
        sharp[b] = values > t
    return sharp


def sharpness_loss(
    img: torch.Tensor,
    percent_grad: float = 0.4,
    gamma: float = 1.0,
    kmean_step: int = KMEAN_STEPS,
) -> torch.Tensor:
    """Seed NSL at HEAD: mean over the batch's sharp pixels of BCE(tanh(gamma |Lap|), 1).

    ``percent_grad`` is accepted and unused, as in the seed. Smooth pixels are ignored; there is
    no alpha factor.
    """
    del percent_grad
    a = grey_laplacian_abs(img, "replicate")
    sharp = two_means_sharp_mask(a, kmean_step)
    probs = torch.tanh(gamma * a)[sharp]
    total = F.binary_cross_entropy(probs, torch.ones_like(probs), reduction="sum")
    return total / sharp.sum()


def sharpness_loss_paper(
    fake: torch.Tensor,
    real: torch.Tensor,
    gamma: float = 0.1,
    alpha: float = 1.0,
    kmean_step: int = KMEAN_STEPS,
    padding_mode: str = "replicate",
) -> torch.Tensor:
    """Paper-form NSL: alpha * BCE(tanh(gamma |Lap(fake)|), H(real)) averaged over all pixels.

    H is the 2-means sharp map of the real image's |Laplacian| (no gradient); both Laplacians use
    the grey (channel-mean) image and the given padding.
    """
    labels = two_means_sharp_mask(grey_laplacian_abs(real.detach(), padding_mode), kmean_step)
    probs = torch.tanh(gamma * grey_laplacian_abs(fake, padding_mode))
    return alpha * F.binary_cross_entropy(probs, labels.to(probs.dtype))


def blurring(x: torch.Tensor, kernel: int = SAD_KERNEL) -> torch.Tensor:
    """Seed SAD blur: conv with a (3, 3, k, k) weight of 1/(3 k^2), zero padding (k - 1) / 2.

    Every output channel is the k x k box mean of the channel-averaged image (grey output).
    The seed hard-codes k = 9 at HEAD (5 in its first version).
    """
    channels = x.size(1)
    weight = x.new_full((channels, channels, kernel, kernel), 1.0 / (channels * kernel**2))
    return F.conv2d(x, weight, stride=1, padding=(kernel - 1) // 2)


def sharp_detector_mask(x: torch.Tensor) -> torch.Tensor:
    """Seed SharpDetector.get_mask (spec 6.7): (B, C, H, W) -> (B, 1, H, W) float in {0, 1}."""
    return sharp_region_mask(x)


class GradientManipulator(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by a fixed weight map."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Return x unchanged and remember the (broadcastable) weight."""
        ctx.save_for_backward(weight)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Scale the cotangent of x by the weight; no gradient for the weight."""
        (weight,) = ctx.saved_tensors
        return grad * weight, None


def manipulate_gradient(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Apply GradientManipulator: identity on x, gradient scaled by weight (broadcast to x)."""
    return GradientManipulator.apply(x, weight.detach().to(x.dtype))


def gm_seed_weight(x: torch.Tensor) -> torch.Tensor:
    """Seed GM weight 1 + tanh(|Lap(grey(x))|) (replicate padding), (B, 1, H, W), no gradient."""
    return 1.0 + torch.tanh(grey_laplacian_abs(x.detach(), "replicate"))


# Discriminator and generator losses (spec 4.2, 4.3).


def discriminator_loss(
    netD: nn.Module,
    real_imgs: torch.Tensor,
    fake_imgs: torch.Tensor,
    sent_emb: torch.Tensor,
    blurred: torch.Tensor | None = None,
    epoch: int = 0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """D loss of spec 4.3 without the gradient-free word-level term.

    Args:
      netD: D_NET256-like: netD(x, epoch) -> features; UNCOND_DNET(f) and COND_DNET(f, s)
        return probabilities (B,).
      real_imgs: (B, 3, H, W) real images in [-1, 1].
      fake_imgs: (B, 3, H, W) generated images (detached here).
      sent_emb: (B, E) true-caption sentence embeddings (detached here).
      blurred: optional (B, 3, H, W) blurred reals (seed SAD), labelled fake through COND_DNET.
      epoch: passed to netD (matters only in the seed 4-channel mode).

    Returns:
      errD and a dict of every term's value (floats). D calls, in order: D(real), D(fake),
      COND(real), COND(fake), COND(real[:B-1], s[1:]), UNCOND(real), UNCOND(fake), then
      D(blurred), COND(blurred).
    """
    sent_emb = sent_emb.detach()
    batch = real_imgs.size(0)
    real_features = netD(real_imgs, epoch)
    fake_features = netD(fake_imgs.detach(), epoch)
    cond_real = bce(netD.COND_DNET(real_features, sent_emb), 1.0)
    cond_fake = bce(netD.COND_DNET(fake_features, sent_emb), 0.0)
    cond_wrong = bce(netD.COND_DNET(real_features[: batch - 1], sent_emb[1:batch]), 0.0)
    real_uncond = bce(netD.UNCOND_DNET(real_features), 1.0)
    fake_uncond = bce(netD.UNCOND_DNET(fake_features), 0.0)
    errD = (real_uncond + cond_real) / 2.0 + (fake_uncond + cond_fake + cond_wrong) / 3.0
    terms = {
        "d_cond_real": cond_real,
        "d_cond_fake": cond_fake,
        "d_cond_wrong": cond_wrong,
        "d_real_uncond": real_uncond,
        "d_fake_uncond": fake_uncond,
    }
    if blurred is not None:
        blur_features = netD(blurred.detach(), epoch)
        cond_blur = bce(netD.COND_DNET(blur_features, sent_emb), 0.0)
        errD = errD + cond_blur
        terms["d_cond_blur"] = cond_blur
    values = {k: float(v.detach()) for k, v in terms.items()}
    values["errD"] = float(errD.detach())
    return errD, values


def generator_loss(
    netD: nn.Module,
    image_encoder: nn.Module,
    vgg: nn.Module,
    fake_imgs: torch.Tensor,
    real_imgs: torch.Tensor,
    sent_emb: torch.Tensor,
    words_embs: torch.Tensor,
    cap_lens: torch.Tensor | Sequence[int],
    class_ids: ClassIds,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    *,
    real_vgg_features: torch.Tensor | None = None,
    gamma1: float = GAMMA1,
    gamma2: float = GAMMA2,
    gamma3: float = GAMMA3,
    lambda_damsm: float = LAMBDA,
    mask: torch.Tensor | None = None,
    mask_weight: float = MASK_WEIGHT,
    nsl_alpha: float = 0.0,
    nsl_gamma: float = 0.1,
    epoch: int = 0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """G loss of spec 4.2 (plus the seed mask loss and the paper-form NSL when asked).

    Args:
      netD: discriminator (already updated this iteration); heads return probabilities.
      image_encoder: CNN_ENCODER-like, x -> (regions (B, E, 17, 17), code (B, E)); eval mode.
      vgg: VGGNet-like, x -> relu2_2 features; eval mode.
      fake_imgs: (B, 3, H, W) generated images with their graph (GM already applied if any).
      real_imgs: (B, 3, H, W) real images.
      sent_emb, words_embs: true-caption embeddings (B, E), (B, E, T), detached.
      cap_lens: (B,) caption lengths; class_ids: (B,) class ids or None.
      mu, logvar: (B, condition_dim) CA outputs.
      real_vgg_features: VGG(real) if already computed (it is a G input); computed if None.
      mask: seed mask image M (B, 1, H, W); the mask term is added when given and weight > 0.
      nsl_alpha, nsl_gamma: paper-form NSL weight (0 = off) and gamma.

    Returns:
      errG_total and a dict of every (weighted) term's value, floats.
    """
    batch = fake_imgs.size(0)
    labels = torch.arange(batch, device=fake_imgs.device)
    features = netD(fake_imgs, epoch)
    g_cond = bce(netD.COND_DNET(features, sent_emb), 1.0)
    g_uncond = bce(netD.UNCOND_DNET(features), 1.0)
    region_features, cnn_code = image_encoder(fake_imgs)
    w_loss0, w_loss1, _ = words_loss(
        region_features, words_embs, labels, cap_lens, class_ids, batch, gamma1, gamma2, gamma3
    )
    s_loss0, s_loss1 = sent_loss(cnn_code, sent_emb, labels, class_ids, batch, gamma3)
    if real_vgg_features is None:
        with torch.no_grad():
            real_vgg_features = vgg(real_imgs)
    terms = {
        "g_uncond": g_uncond,
        "g_cond": g_cond,
        "w_loss": (w_loss0 + w_loss1) * lambda_damsm,
        "s_loss": (s_loss0 + s_loss1) * lambda_damsm,
        "perceptual": perceptual_loss(real_vgg_features, vgg(fake_imgs)),
        "kl": kl_loss(mu, logvar),
    }
    if mask is not None and mask_weight > 0:
        terms["mask"] = mask_loss(real_imgs, fake_imgs, mask, mask_weight)
    if nsl_alpha > 0:
        terms["nsl"] = sharpness_loss_paper(fake_imgs, real_imgs, nsl_gamma, nsl_alpha)
    total = sum(terms.values())
    values = {k: float(v.detach()) for k, v in terms.items()}
    values.update(
        w_loss0=float(w_loss0.detach()),
        w_loss1=float(w_loss1.detach()),
        s_loss0=float(s_loss0.detach()),
        s_loss1=float(s_loss1.detach()),
        errG_total=float(total.detach()),
    )
    return total, values
