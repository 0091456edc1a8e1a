"""Checks the PyTorch restatement of the baseline losses and training iteration (third_party)."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import third_party.lightweight_torch as lt  # noqa: E402
from third_party.lightweight_torch import losses as L  # noqa: E402
from third_party.lightweight_torch import train_step as ts  # noqa: E402

pytestmark = pytest.mark.parity

F64 = torch.float64


def t64(values) -> torch.Tensor:
    """float64 tensor."""
    return torch.tensor(values, dtype=F64)


def np_ce(logits: np.ndarray) -> float:
    """Mean cross-entropy of (B, B) logits against arange(B)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-np.mean(np.diag(log_probs)))


# Elementary terms.


def test_bce_clamp_and_values():
    probs = t64([0.0, 1.0, 0.5, 0.25])
    labels = t64([1.0, 0.0, 1.0, 0.0])
    expected = np.mean([100.0, 100.0, math.log(2.0), -math.log(0.75)])
    assert L.bce(probs, labels).item() == pytest.approx(expected, rel=1e-12)
    assert L.bce(t64([0.0, 0.0]), 1.0).item() == pytest.approx(100.0)
    assert L.bce(torch.tensor([1.0]), 0.0).item() == pytest.approx(100.0)
    assert L.bce(t64([0.2]), 0.0).item() == pytest.approx(-math.log(0.8), rel=1e-12)


def test_bce_of_bfloat16_probabilities_under_autocast_is_float32():
    probs = torch.tensor([0.5, 0.25], dtype=torch.bfloat16)  # both exact in bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = L.bce(probs, 0.0)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(-(math.log(0.5) + math.log(0.75)) / 2, rel=1e-6)


def test_kl_closed_forms():
    zeros = torch.zeros(3, 4, dtype=F64)
    assert L.kl_loss(zeros, zeros).item() == 0.0
    assert L.kl_loss(zeros + 1.0, zeros).item() == pytest.approx(0.5, rel=1e-12)
    logvar = zeros + math.log(2.0)
    assert L.kl_loss(zeros, logvar).item() == pytest.approx(0.5 * (1.0 - math.log(2.0)), rel=1e-12)


def test_mask_and_perceptual_losses():
    real, fake = torch.zeros(2, 3, 4, 4, dtype=F64), torch.ones(2, 3, 4, 4, dtype=F64)
    mask = torch.zeros(2, 1, 4, 4, dtype=F64)
    mask[:, :, :2] = 1.0
    assert L.mask_loss(real, fake, mask).item() == pytest.approx(12.5, rel=1e-12)
    assert L.mask_loss(real, fake, mask, weight=2.0).item() == pytest.approx(1.0, rel=1e-12)
    a, b = torch.zeros(1, 2, 2, 2, dtype=F64), torch.full((1, 2, 2, 2), 2.0, dtype=F64)
    assert L.perceptual_loss(a, b).item() == pytest.approx(2.0, rel=1e-12)


# DAMSM.


def test_func_attention_one_word_attends_uniformly():
    torch.manual_seed(0)
    context = torch.randn(2, 3, 4, 5, dtype=F64)
    query = torch.randn(2, 3, 1, dtype=F64)
    weighted, attn = L.func_attention(query, context, gamma1=4.0)
    assert weighted.shape == (2, 3, 1) and attn.shape == (2, 1, 4, 5)
    torch.testing.assert_close(attn, torch.full_like(attn, 1.0 / 20))
    torch.testing.assert_close(weighted[:, :, 0], context.mean(dim=(2, 3)))


def np_func_attention(query: np.ndarray, context: np.ndarray, gamma1: float):
    """numpy func_attention for one sample: query (E, n), context (E, R)."""
    scores = context.T @ query
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    logits = gamma1 * p.T
    alpha = np.exp(logits - logits.max(axis=1, keepdims=True))
    alpha /= alpha.sum(axis=1, keepdims=True)
    return context @ alpha.T, alpha


def test_func_attention_matches_numpy():
    torch.manual_seed(1)
    context = torch.randn(2, 4, 3, 3, dtype=F64)
    query = torch.randn(2, 4, 3, dtype=F64)
    weighted, attn = L.func_attention(query, context, gamma1=4.0)
    for b in range(2):
        ref_w, ref_a = np_func_attention(query[b].numpy(), context[b].reshape(4, 9).numpy(), 4.0)
        np.testing.assert_allclose(weighted[b].numpy(), ref_w, rtol=1e-12)
        np.testing.assert_allclose(attn[b].reshape(3, 9).numpy(), ref_a, rtol=1e-12)


def hand_case() -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """B=2, E=2, 2x2 regions all equal per image ([1,0], [0,1]); one word per caption.

    Caption 0's word is [3, 0], caption 1's is [1, 1], so cos(image b, caption i) is the matrix
    returned (rows images).
    """
    img = torch.zeros(2, 2, 2, 2, dtype=F64)
    img[0, 0], img[1, 1] = 1.0, 1.0
    words = t64([[[3.0, 9.0], [0.0, 9.0]], [[1.0, 9.0], [1.0, 9.0]]])  # column 1 is past n_i
    cos = np.array([[1.0, 1.0 / math.sqrt(2.0)], [0.0, 1.0 / math.sqrt(2.0)]])
    return img, words, cos


@pytest.mark.parametrize(("gamma2", "gamma3"), [(1.0, 1.0), (5.0, 10.0)])
def test_words_loss_by_hand(gamma2, gamma3):
    img, words, cos = hand_case()
    labels = torch.arange(2)
    lens = torch.tensor([1, 1])
    w0, w1, att = L.words_loss(img, words, labels, lens, None, 2, 4.0, gamma2, gamma3)
    sims = gamma3 * gamma2 * cos  # one word: log exp(gamma2 cos) = gamma2 cos
    assert w0.item() == pytest.approx(np_ce(sims), rel=1e-10, abs=1e-300)
    assert w1.item() == pytest.approx(np_ce(sims.T), rel=1e-10, abs=1e-300)
    assert len(att) == 2 and att[0].shape == (1, 1, 2, 2)
    w0, w1, _ = L.words_loss(img, words, labels, lens, [7, 7], 2, 4.0, gamma2, gamma3)
    assert w0.item() == 0.0 and w1.item() == 0.0


def test_sent_loss_by_hand():
    _, _, cos = hand_case()
    cnn = t64([[1.0, 0.0], [0.0, 2.0]])
    rnn = t64([[3.0, 0.0], [1.0, 1.0]])
    labels = torch.arange(2)
    s0, s1 = L.sent_loss(cnn, rnn, labels, None, 2, gamma3=10.0)
    assert s0.item() == pytest.approx(np_ce(10.0 * cos), rel=1e-10)
    assert s1.item() == pytest.approx(np_ce(10.0 * cos.T), rel=1e-10)
    s0, s1 = L.sent_loss(cnn, rnn, labels, torch.tensor([3, 3]), 2)
    assert s0.item() == 0.0 and s1.item() == 0.0
    zero = t64([[0.0, 0.0], [0.0, 2.0]])  # eps 1e-8 on the norm product: cos 0, no NaN
    s0, _ = L.sent_loss(zero, rnn, labels, None, 2, gamma3=1.0)
    ref = np.array([[0.0, 0.0], [0.0, 1.0 / math.sqrt(2.0)]])
    assert s0.item() == pytest.approx(np_ce(ref), rel=1e-10)


def np_damsm(img, words, lens, cnn, sent, class_ids, g1, g2, g3):
    """numpy DAMSM word and sentence losses (spec 4.1) with per-caption loops."""
    batch, emb = img.shape[:2]
    regions = img.reshape(batch, emb, -1)
    r = np.zeros((batch, batch))
    for i in range(batch):
        e = words[i, :, : lens[i]]
        for b in range(batch):
            c, _ = np_func_attention(e, regions[b], g1)
            num = (e * c).sum(axis=0)
            den = np.maximum(np.linalg.norm(e, axis=0) * np.linalg.norm(c, axis=0), 1e-8)
            r[b, i] = np.log(np.exp(g2 * num / den).sum())
    norms = np.linalg.norm(cnn, axis=1)[:, None] * np.linalg.norm(sent, axis=1)[None]
    s = g3 * (cnn @ sent.T) / np.maximum(norms, 1e-8)
    w = g3 * r
    same = (class_ids[:, None] == class_ids[None]) & ~np.eye(batch, dtype=bool)
    w, s = np.where(same, -np.inf, w), np.where(same, -np.inf, s)
    return np_ce(w), np_ce(w.T), np_ce(s), np_ce(s.T)


def test_damsm_losses_match_numpy_oracle():
    torch.manual_seed(2)
    img = torch.randn(3, 4, 3, 3, dtype=F64)
    words = torch.randn(3, 4, 3, dtype=F64)  # values past each length must be ignored
    cnn, sent = torch.randn(3, 4, dtype=F64), torch.randn(3, 4, dtype=F64)
    lens, class_ids = [3, 1, 2], np.array([5, 5, 7])
    labels = torch.arange(3)
    w0, w1, _ = L.words_loss(img, words, labels, torch.tensor(lens), class_ids, 3)
    s0, s1 = L.sent_loss(cnn, sent, labels, class_ids, 3)
    ref = np_damsm(
        img.numpy(), words.numpy(), lens, cnn.numpy(), sent.numpy(), class_ids, 4.0, 5.0, 10.0
    )
    np.testing.assert_allclose([w0.item(), w1.item(), s0.item(), s1.item()], ref, rtol=1e-10)


# Seed sharpness tools.


def np_grey_lap_abs(x: np.ndarray, mode: str) -> np.ndarray:
    """numpy |Laplacian| of the channel mean, (B, C, H, W) -> (B, H, W)."""
    grey = np.pad(x.mean(axis=1), ((0, 0), (1, 1), (1, 1)), mode=mode)
    centre = grey[:, 1:-1, 1:-1]
    lap = grey[:, :-2, 1:-1] + grey[:, 2:, 1:-1] + grey[:, 1:-1, :-2] + grey[:, 1:-1, 2:]
    return np.abs(lap - 4.0 * centre)


def np_two_means(a: np.ndarray, steps: int = 5) -> np.ndarray:
    """numpy per-image 2-means sharp map."""
    out = np.zeros(a.shape, dtype=bool)
    for b in range(a.shape[0]):
        t = a[b].mean()
        for _ in range(steps):
            t = (a[b][a[b] > t].mean() + a[b][a[b] <= t].mean()) / 2.0
        out[b] = a[b] > t
    return out


def test_two_means_by_hand():
    a = t64([0.0, 1.0, 2.0, 3.0, 10.0, 11.0]).view(1, 1, 2, 3)
    # t0 = 4.5 -> (10.5 + 1.5) / 2 = 6 -> stays 6.
    assert L.two_means_sharp_mask(a).flatten().tolist() == [False] * 4 + [True] * 2


def test_grey_laplacian_padding():
    x = torch.full((1, 3, 4, 4), 0.7, dtype=F64)
    assert torch.count_nonzero(L.grey_laplacian_abs(x, "replicate")) == 0
    zeros = L.grey_laplacian_abs(x, "zeros")[0, 0]
    assert zeros[0, 0].item() == pytest.approx(1.4) and zeros[0, 1].item() == pytest.approx(0.7)
    assert zeros[1, 1].item() == 0.0


def test_seed_sharpness_loss_matches_numpy():
    torch.manual_seed(3)
    x = torch.rand(2, 3, 8, 8, dtype=F64) * 2 - 1
    loss = L.sharpness_loss(x, gamma=1.0)
    a = np_grey_lap_abs(x.numpy(), "edge")
    sharp = np_two_means(a)
    expected = np.mean(-np.maximum(np.log(np.tanh(a[sharp])), -100.0))
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_paper_sharpness_loss_matches_numpy_and_uses_real_labels():
    torch.manual_seed(4)
    real = torch.rand(2, 3, 8, 8, dtype=F64) * 2 - 1
    fake = (torch.rand(2, 3, 8, 8, dtype=F64) * 2 - 1).requires_grad_(True)
    loss = L.sharpness_loss_paper(fake, real, gamma=0.1, alpha=2.0)
    labels = np_two_means(np_grey_lap_abs(real.numpy(), "edge")).astype(float)
    p = np.tanh(0.1 * np_grey_lap_abs(fake.detach().numpy(), "edge"))
    logs = labels * np.maximum(np.log(p), -100) + (1 - labels) * np.maximum(np.log(1 - p), -100)
    assert loss.item() == pytest.approx(-2.0 * logs.mean(), rel=1e-10)
    loss.backward()
    assert fake.grad is not None and torch.count_nonzero(fake.grad) > 0


def test_blurring_is_grey_box_mean_with_zero_padding():
    torch.manual_seed(5)
    x = torch.rand(1, 3, 7, 7, dtype=F64)
    out = L.blurring(x, kernel=3)
    grey = np.pad(x.numpy().mean(axis=1)[0], 1)
    ref = sum(grey[i : i + 7, j : j + 7] for i in range(3) for j in range(3)) / 9.0
    for c in range(3):
        np.testing.assert_allclose(out[0, c].numpy(), ref, rtol=1e-12)
    const = L.blurring(torch.full((1, 3, 12, 12), 0.9, dtype=F64))
    assert const.shape == (1, 3, 12, 12)
    assert const[0, 0, 0, 0].item() == pytest.approx(0.9 * 25 / 81, rel=1e-12)
    assert const[0, 2, 0, 6].item() == pytest.approx(0.9 * 45 / 81, rel=1e-12)
    assert const[0, 1, 6, 6].item() == pytest.approx(0.9, rel=1e-12)


def test_sharp_detector_mask_is_the_discriminator_mask():
    x = torch.rand(2, 3, 10, 10) * 2 - 1
    assert torch.equal(L.sharp_detector_mask(x), lt.sharp_region_mask(x))


def test_gradient_manipulator_scales_only_the_gradient():
    torch.manual_seed(6)
    x = torch.randn(2, 3, 5, 5, dtype=F64, requires_grad=True)
    weight, upstream = torch.rand(2, 1, 5, 5, dtype=F64), torch.randn(2, 3, 5, 5, dtype=F64)
    y = L.manipulate_gradient(x, weight)
    assert torch.equal(y, x)
    (y * upstream).sum().backward()
    torch.testing.assert_close(x.grad, upstream * weight, rtol=0, atol=0)
    flat = L.gm_seed_weight(torch.full((1, 3, 4, 4), 0.3))
    assert torch.equal(flat, torch.ones(1, 1, 4, 4))
    w = L.gm_seed_weight(torch.rand(2, 3, 6, 6) * 2 - 1)
    assert w.min() >= 1.0 and w.max() < 2.0


# Discriminator and generator losses with stand-in networks.


class FixedHead(nn.Module):
    """Head returning fixed probabilities: uncond p = f, cond p = f * s[:, 0]."""

    def __init__(self, conditional: bool) -> None:
        super().__init__()
        self.conditional = conditional

    def forward(self, features: torch.Tensor, sent: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) probabilities."""
        return features * sent[:, 0] if self.conditional else features

    def extra_repr(self) -> str:
        """Show the head kind."""
        return f"conditional={self.conditional}"


class FixedD(nn.Module):
    """Fake D: features = first pixel of each image, with a scale parameter for gradients."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones((), dtype=F64))
        self.UNCOND_DNET = FixedHead(False)
        self.COND_DNET = FixedHead(True)
        self.epochs: list[int] = []

    def forward(self, x: torch.Tensor, epoch: int = 0) -> torch.Tensor:
        """(B, C, H, W) -> (B,)."""
        self.epochs.append(epoch)
        return x[:, 0, 0, 0] * self.scale


def filled(values: list[float], size: int = 4) -> torch.Tensor:
    """(B, 3, size, size) images whose every pixel of sample b is values[b]."""
    return t64(values).view(-1, 1, 1, 1).expand(-1, 3, size, size).contiguous()


def test_discriminator_loss_term_arithmetic():
    real, blurred = filled([0.9, 0.8, 0.7]), filled([0.3, 0.4, 0.5])
    fake = filled([0.2, 0.1, 0.6]).requires_grad_(True)
    sent = t64([[0.5, 1.0], [0.9, 1.0], [0.8, 1.0]])
    netD = FixedD()
    errD, terms = L.discriminator_loss(netD, real, fake, sent, epoch=7)
    log = math.log
    cond_real = -np.mean([log(0.45), log(0.72), log(0.56)])
    cond_fake = -np.mean([log(1 - 0.1), log(1 - 0.09), log(1 - 0.48)])
    cond_wrong = -np.mean([log(1 - 0.9 * 0.9), log(1 - 0.8 * 0.8)])
    real_uncond = -np.mean([log(0.9), log(0.8), log(0.7)])
    fake_uncond = -np.mean([log(0.8), log(0.9), log(0.4)])
    expected = {
        "d_cond_real": cond_real,
        "d_cond_fake": cond_fake,
        "d_cond_wrong": cond_wrong,
        "d_real_uncond": real_uncond,
        "d_fake_uncond": fake_uncond,
    }
    total = (real_uncond + cond_real) / 2 + (fake_uncond + cond_fake + cond_wrong) / 3
    assert terms == pytest.approx({**expected, "errD": total}, rel=1e-12)
    assert errD.item() == pytest.approx(total, rel=1e-12)
    errD.backward()
    assert fake.grad is None and netD.scale.grad is not None
    assert netD.epochs == [7, 7]

    errD_blur, terms = L.discriminator_loss(FixedD(), real, fake, sent, blurred=blurred)
    cond_blur = -np.mean([log(1 - 0.15), log(1 - 0.36), log(1 - 0.4)])
    assert terms["d_cond_blur"] == pytest.approx(cond_blur, rel=1e-12)
    assert errD_blur.item() == pytest.approx(total + cond_blur, rel=1e-12)


class TinyImageEncoder(nn.Module):
    """Stand-in for CNN_ENCODER: 17x17 average pool + 1x1 conv, mean colour + linear."""

    def __init__(self, nef: int) -> None:
        super().__init__()
        self.emb_features = nn.Conv2d(3, nef, 1, bias=False)
        self.emb_cnn_code = nn.Linear(3, nef)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) -> (B, nef, 17, 17), (B, nef)."""
        regions = self.emb_features(F.adaptive_avg_pool2d(x, 17))
        return regions, self.emb_cnn_code(x.mean(dim=(2, 3)))


class TinyVGG(nn.Module):
    """Stand-in for VGGNet: a stride-2 conv to 128 channels and ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 128, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 128, H/2, W/2)."""
        return F.relu(self.conv(x))


def test_generator_loss_terms():
    torch.manual_seed(7)
    encoder, vgg = TinyImageEncoder(4).double(), TinyVGG().double()
    real = torch.rand(2, 3, 8, 8, dtype=F64) * 2 - 1
    fake = filled([0.25, 0.5], 8).requires_grad_(True)
    sent, words = torch.randn(2, 4, dtype=F64), torch.randn(2, 4, 3, dtype=F64)
    lens, class_ids = torch.tensor([3, 2]), torch.tensor([1, 2])
    mu, logvar = torch.zeros(2, 5, dtype=F64), torch.zeros(2, 5, dtype=F64)
    sent[:, 0] = 2.0
    mask = torch.ones(2, 1, 8, 8, dtype=F64)
    args = (FixedD(), encoder, vgg, fake, real, sent, words, lens, class_ids, mu, logvar)
    total, terms = L.generator_loss(*args)
    assert set(terms) == {
        *("g_uncond", "g_cond", "w_loss", "s_loss", "perceptual", "kl"),
        *("w_loss0", "w_loss1", "s_loss0", "s_loss1", "errG_total"),
    }
    assert terms["g_uncond"] == pytest.approx(-np.mean([math.log(0.25), math.log(0.5)]))
    assert terms["g_cond"] == pytest.approx(-np.mean([math.log(0.5), math.log(1.0)]))
    assert terms["kl"] == 0.0
    with torch.no_grad():
        regions, code = encoder(fake)
        labels = torch.arange(2)
        w0, w1, _ = L.words_loss(regions, words, labels, lens, class_ids, 2)
        s0, s1 = L.sent_loss(code, sent, labels, class_ids, 2)
        perceptual = 0.5 * F.mse_loss(vgg(real), vgg(fake))
    assert terms["w_loss"] == pytest.approx(5.0 * (w0 + w1).item(), rel=1e-12)
    assert terms["s_loss"] == pytest.approx(5.0 * (s0 + s1).item(), rel=1e-12)
    assert terms["perceptual"] == pytest.approx(perceptual.item(), rel=1e-12)
    weighted = ("g_uncond", "g_cond", "w_loss", "s_loss", "perceptual", "kl")
    assert total.item() == pytest.approx(sum(terms[k] for k in weighted), rel=1e-12)
    assert terms["errG_total"] == total.item()
    total.backward()
    assert fake.grad is not None

    total, terms = L.generator_loss(
        *args, mask=mask, mask_weight=25.0, nsl_alpha=1.0, nsl_gamma=0.1
    )
    assert terms["mask"] == pytest.approx(25.0 * (real - fake).abs().mean().item(), rel=1e-12)
    assert terms["nsl"] == pytest.approx(L.sharpness_loss_paper(fake, real).item(), rel=1e-12)
    assert total.item() == pytest.approx(
        sum(terms[k] for k in (*weighted, "mask", "nsl")), rel=1e-12
    )
    _, terms = L.generator_loss(*args, mask=mask, mask_weight=0.0)
    assert "mask" not in terms and "nsl" not in terms


# One training iteration on tiny networks.

EMB = 16
VOCAB = 20


def tiny_setup(dtype: torch.dtype = torch.float32, seed: int = 0) -> tuple[dict, dict, dict]:
    """Seeded tiny nets (G gf_dim 4, D df_dim 8, E = 16), an unsorted batch of 2 and noise."""
    torch.manual_seed(seed)
    nets = {
        "text_encoder": lt.RNN_ENCODER(VOCAB, 12, nhidden=EMB),
        "image_encoder": TinyImageEncoder(EMB),
        "vgg": TinyVGG(),
        "netG": lt.G_NET(4, 100, 100, EMB, 1),
        "netD": lt.D_NET256(8, EMB),
    }
    nets["netG"].apply(lt.weights_init)
    nets["netD"].apply(lt.weights_init)
    for net in nets.values():
        net.to(dtype)
    gen = torch.Generator().manual_seed(seed + 1)
    lens = torch.tensor([3, 5])
    captions = torch.zeros(2, 6, dtype=torch.long)
    for i, n in enumerate(lens.tolist()):
        captions[i, :n] = torch.randint(1, VOCAB, (n,), generator=gen)
    batch = {
        "images": (torch.rand(2, 3, 256, 256, generator=gen) * 2 - 1).to(dtype),
        "captions": captions,
        "cap_lens": lens,
        "class_ids": torch.tensor([4, 9]),
        "mask": (torch.rand(2, 1, 256, 256, generator=gen) > 0.5).to(dtype),
    }
    noise = {
        "z": torch.randn(2, 100, generator=gen).to(dtype),
        "ca_eps": torch.randn(2, 100, generator=gen).to(dtype),
    }
    return nets, batch, noise


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of a module's state_dict."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_encode_captions_keeps_caller_order():
    torch.manual_seed(8)
    encoder = lt.RNN_ENCODER(VOCAB, 12, nhidden=EMB).double().eval()
    lens = torch.tensor([2, 5, 3])
    captions = torch.zeros(3, 7, dtype=torch.long)
    for i, n in enumerate(lens.tolist()):
        captions[i, :n] = torch.randint(1, VOCAB, (n,))
    words, sent = ts.encode_captions(encoder, captions, lens)
    assert words.shape == (3, EMB, 5) and sent.shape == (3, EMB)
    for i, n in enumerate(lens.tolist()):
        with torch.no_grad():
            w_i, s_i = encoder(captions[i : i + 1, :n], lens[i : i + 1])
        torch.testing.assert_close(words[i, :, :n], w_i[0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(sent[i], s_i[0], rtol=1e-12, atol=1e-12)
        assert torch.count_nonzero(words[i, :, n:]) == 0


def run_once(dtype: torch.dtype, options: dict) -> dict:
    """One iteration from a fresh seeded setup; returns nets, inputs, states and losses."""
    nets, batch, noise = tiny_setup(dtype)
    before = {name: snapshot(net) for name, net in nets.items()}
    inputs = {k: v.clone() for k, v in batch.items()}
    optimizers = ts.make_optimizers(nets["netG"], nets["netD"])
    ema = ts.init_ema(nets["netG"])
    out = ts.train_iteration(nets, optimizers, batch, noise, options, ema=ema)
    return {
        "nets": nets,
        "before": before,
        "batch": batch,
        "inputs": inputs,
        "optimizers": optimizers,
        "ema": ema,
        "out": out,
        "after": {name: snapshot(nets[name]) for name in ("netG", "netD")},
    }


def test_train_iteration_updates_params_and_ema_deterministically():
    options = {"mask_weight": 25.0, "sad": True, "sad_kernel": 5, "nsl_alpha": 1.0}
    run = run_once(torch.float32, options)
    nets, before, out, ema = run["nets"], run["before"], run["out"], run["ema"]
    netG = nets["netG"]
    expected_keys = {"errD", "errG_total", "d_cond_blur", "mask", "nsl", "w_loss", "kl"}
    assert expected_keys <= set(out)
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())
    for key, value in run["batch"].items():
        assert torch.equal(value, run["inputs"][key])
    for name in ts.FROZEN:
        assert all(torch.equal(v, before[name][k]) for k, v in nets[name].state_dict().items())
        assert all(p.grad is None for p in nets[name].parameters())
    for name in ("netG", "netD"):
        params = dict(nets[name].named_parameters())
        state = nets[name].state_dict()
        assert all(not torch.equal(params[k], before[name][k]) for k in params)
        buffers = [k for k in state if k.endswith(("running_mean", "num_batches_tracked"))]
        assert buffers and all(not torch.equal(state[k], before[name][k]) for k in buffers)
    assert set(ema) == {k for k, _ in netG.named_parameters()}
    assert not set(ema) & {k for k, _ in netG.named_buffers()}
    for k, p in netG.named_parameters():
        expected = before["netG"][k].mul(0.999).add(p.detach(), alpha=0.001)
        assert torch.equal(ema[k], expected)
    adam = run["optimizers"]["netG"].param_groups[0]
    assert adam["lr"] == 2e-4 and adam["betas"] == (0.5, 0.999) and adam["eps"] == 1e-8

    again = run_once(torch.float32, options)
    assert again["out"] == out
    for a, b in ((run["after"], again["after"]), ({"ema": ema}, {"ema": again["ema"]})):
        for name in a:
            assert a[name].keys() == b[name].keys()
            assert all(torch.equal(a[name][k], b[name][k]) for k in a[name])


def test_float64_iteration_with_zero_gm_weight_leaves_only_the_kl_path():
    weight = torch.zeros(2, 1, 256, 256, dtype=F64)
    options = {"mask_weight": 25.0, "sad": True, "nsl_alpha": 1.0, "gm": weight}
    run = run_once(F64, options)
    assert all(math.isfinite(v) for v in run["out"].values())
    for name in ("netG", "netD"):
        floats = [v for v in run["after"][name].values() if v.is_floating_point()]
        assert floats and all(v.dtype == F64 for v in floats)
    assert all(v.dtype == F64 for v in run["ema"].values())
    before, netD = run["before"], run["nets"]["netD"]
    for k, p in run["nets"]["netG"].named_parameters():
        assert torch.equal(p, before["netG"][k]) != k.startswith("ca_net.")
    assert all(not torch.equal(p, before["netD"][k]) for k, p in netD.named_parameters())
