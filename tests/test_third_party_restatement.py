"""Checks the PyTorch restatement in third_party/lightweight_torch against BASELINE_SPEC."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import third_party.lightweight_torch as lt  # noqa: E402

pytestmark = pytest.mark.parity

BIRD_VOCAB = 5450
MODERN_MAP = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]
MODERN_MAP += [8, 8, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15, 16]
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


# Spec tables (BASELINE_SPEC 3.2, 3.3, 3.5, 3.6) as ordered (name, shape) lists.


def bn(prefix: str, n: int) -> list[tuple[str, tuple[int, ...]]]:
    """BatchNorm entries in state_dict order."""
    entries = [(f"{prefix}.{k}", (n,)) for k in ("weight", "bias", "running_mean", "running_var")]
    return [*entries, (f"{prefix}.num_batches_tracked", ())]


def conv(name: str, cout: int, cin: int, kh: int, kw: int | None = None) -> list:
    """One conv weight entry."""
    return [(f"{name}.weight", (cout, cin, kh, kh if kw is None else kw))]


def resblocks(prefix: str, c: int) -> list:
    """Two ResBlocks of width c."""
    out = []
    for i in (0, 1):
        out += conv(f"{prefix}.residual.{i}.block.0", 2 * c, c, 3)
        out += conv(f"{prefix}.residual.{i}.block.3", c, c, 3)
    return out


def acm(prefix: str, c: int) -> list:
    """ACM(c) entries (img always 32 channels)."""
    return [
        *conv(f"{prefix}.conv", 128, 32, 3),
        *conv(f"{prefix}.conv_weight", c, 128, 3),
        *conv(f"{prefix}.conv_bias", c, 128, 3),
    ]


G_TABLE = [
    ("ca_net.fc.weight", (400, 256)),
    ("ca_net.fc.bias", (400,)),
    ("h_net1.fc.0.weight", (16384, 456)),
    *bn("h_net1.fc.1", 16384),
    *conv("h_net1.upsample1.1", 512, 512, 3),
    *conv("h_net1.upsample2.1", 256, 256, 3),
    *conv("h_net1.upsample3.1", 128, 128, 3),
    *conv("h_net1.upsample4.1", 64, 192, 3),
    *resblocks("h_net1", 192),
    *acm("h_net1.ACM", 192),
    *conv("h_net1.att.conv_context", 64, 256, 1),
    *conv("h_net1.channel_att.conv_context", 1024, 256, 1),
    *conv("imgUpSample1.1", 64, 256, 3),
    *conv("h_net3.att.conv_context", 32, 256, 1),
    *conv("h_net3.channel_att.conv_context", 4096, 256, 1),
    *resblocks("h_net3", 96),
    *conv("h_net3.upsample.1", 64, 96, 3),
    *acm("h_net3.ACM", 96),
    *conv("h_net3.upsample2.1", 64, 32, 3),
    *conv("img_net.img.0", 3, 32, 3),
    *acm("ACM", 32),
    *conv("imgUpSample2.0", 32, 128, 4),
    *bn("imgUpSample2.1", 32),
    *conv("imgUpSample3.1", 64, 32, 3),
    *conv("imgUpSample4.1", 64, 32, 3),
]


def d_table(in_ch: int) -> list:
    """D_NET256 entries for a stem with in_ch channels."""
    head = [
        ("UNCOND_DNET.outlogits.0.weight", (1, 512, 4, 4)),
        ("UNCOND_DNET.outlogits.0.bias", (1,)),
    ]
    cond = [
        *conv("COND_DNET.jointConv.0", 512, 768, 3),
        *bn("COND_DNET.jointConv.1", 512),
        ("COND_DNET.outlogits.0.weight", (1, 512, 4, 4)),
        ("COND_DNET.outlogits.0.bias", (1,)),
    ]
    return [
        *conv("img_code_s16.0", 64, in_ch, 4),
        *conv("img_code_s16.2", 128, 64, 4),
        *bn("img_code_s16.3", 128),
        *conv("img_code_s16.5", 256, 128, 4),
        *bn("img_code_s16.6", 256),
        *conv("img_code_s16.8", 512, 256, 4),
        *bn("img_code_s16.9", 512),
        *conv("img_code_s32.0", 1024, 512, 4),
        *bn("img_code_s32.1", 1024),
        *conv("img_code_s64.0", 2048, 1024, 4),
        *bn("img_code_s64.1", 2048),
        *conv("img_code_s64_1.0", 1024, 2048, 3),
        *bn("img_code_s64_1.1", 1024),
        *conv("img_code_s64_2.0", 512, 1024, 3),
        *bn("img_code_s64_2.1", 512),
        *head,
        *cond,
    ]


RNN_TABLE = [
    ("encoder.weight", (BIRD_VOCAB, 300)),
    ("rnn.weight_ih_l0", (512, 300)),
    ("rnn.weight_hh_l0", (512, 128)),
    ("rnn.bias_ih_l0", (512,)),
    ("rnn.bias_hh_l0", (512,)),
    ("rnn.weight_ih_l0_reverse", (512, 300)),
    ("rnn.weight_hh_l0_reverse", (512, 128)),
    ("rnn.bias_ih_l0_reverse", (512,)),
    ("rnn.bias_hh_l0_reverse", (512,)),
]


def basic(name: str, cin: int, cout: int, kh: int, kw: int | None = None) -> list:
    """Inception BasicConv2d entries."""
    return [*conv(f"{name}.conv", cout, cin, kh, kw), *bn(f"{name}.bn", cout)]


def inception_a(p: str, cin: int, pool: int) -> list:
    """InceptionA entries."""
    return [
        *basic(f"{p}.branch1x1", cin, 64, 1),
        *basic(f"{p}.branch5x5_1", cin, 48, 1),
        *basic(f"{p}.branch5x5_2", 48, 64, 5),
        *basic(f"{p}.branch3x3dbl_1", cin, 64, 1),
        *basic(f"{p}.branch3x3dbl_2", 64, 96, 3),
        *basic(f"{p}.branch3x3dbl_3", 96, 96, 3),
        *basic(f"{p}.branch_pool", cin, pool, 1),
    ]


def inception_c(p: str, c7: int) -> list:
    """InceptionC entries (768 in)."""
    return [
        *basic(f"{p}.branch1x1", 768, 192, 1),
        *basic(f"{p}.branch7x7_1", 768, c7, 1),
        *basic(f"{p}.branch7x7_2", c7, c7, 1, 7),
        *basic(f"{p}.branch7x7_3", c7, 192, 7, 1),
        *basic(f"{p}.branch7x7dbl_1", 768, c7, 1),
        *basic(f"{p}.branch7x7dbl_2", c7, c7, 7, 1),
        *basic(f"{p}.branch7x7dbl_3", c7, c7, 1, 7),
        *basic(f"{p}.branch7x7dbl_4", c7, c7, 7, 1),
        *basic(f"{p}.branch7x7dbl_5", c7, 192, 1, 7),
        *basic(f"{p}.branch_pool", 768, 192, 1),
    ]


def inception_e(p: str, cin: int) -> list:
    """InceptionE entries."""
    return [
        *basic(f"{p}.branch1x1", cin, 320, 1),
        *basic(f"{p}.branch3x3_1", cin, 384, 1),
        *basic(f"{p}.branch3x3_2a", 384, 384, 1, 3),
        *basic(f"{p}.branch3x3_2b", 384, 384, 3, 1),
        *basic(f"{p}.branch3x3dbl_1", cin, 448, 1),
        *basic(f"{p}.branch3x3dbl_2", 448, 384, 3),
        *basic(f"{p}.branch3x3dbl_3a", 384, 384, 1, 3),
        *basic(f"{p}.branch3x3dbl_3b", 384, 384, 3, 1),
        *basic(f"{p}.branch_pool", cin, 192, 1),
    ]


CNN_TABLE = [
    *basic("Conv2d_1a_3x3", 3, 32, 3),
    *basic("Conv2d_2a_3x3", 32, 32, 3),
    *basic("Conv2d_2b_3x3", 32, 64, 3),
    *basic("Conv2d_3b_1x1", 64, 80, 1),
    *basic("Conv2d_4a_3x3", 80, 192, 3),
    *inception_a("Mixed_5b", 192, 32),
    *inception_a("Mixed_5c", 256, 64),
    *inception_a("Mixed_5d", 288, 64),
    *basic("Mixed_6a.branch3x3", 288, 384, 3),
    *basic("Mixed_6a.branch3x3dbl_1", 288, 64, 1),
    *basic("Mixed_6a.branch3x3dbl_2", 64, 96, 3),
    *basic("Mixed_6a.branch3x3dbl_3", 96, 96, 3),
    *inception_c("Mixed_6b", 128),
    *inception_c("Mixed_6c", 160),
    *inception_c("Mixed_6d", 160),
    *inception_c("Mixed_6e", 192),
    *basic("Mixed_7a.branch3x3_1", 768, 192, 1),
    *basic("Mixed_7a.branch3x3_2", 192, 320, 3),
    *basic("Mixed_7a.branch7x7x3_1", 768, 192, 1),
    *basic("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7),
    *basic("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1),
    *basic("Mixed_7a.branch7x7x3_4", 192, 192, 3),
    *inception_e("Mixed_7b", 1280),
    *inception_e("Mixed_7c", 2048),
    *conv("emb_features", 256, 768, 1),
    ("emb_cnn_code.weight", (256, 2048)),
    ("emb_cnn_code.bias", (256,)),
]


def table_param_count(table: list) -> int:
    """Number of trainable values in a spec table (buffers excluded)."""
    return sum(int(np.prod(s)) for n, s in table if not n.endswith(BUFFERS))


def state_entries(module: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of a module's state_dict in order."""
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def param_count(module: nn.Module) -> int:
    """Number of trainable values of a module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize(
    ("build", "table"),
    [
        (lambda: lt.G_NET(32, 100, 100, 256, 2), G_TABLE),
        (lambda: lt.D_NET256(64, 256), d_table(3)),
        (lambda: lt.D_NET256(64, 256, use_sharp_region_mask=True), d_table(4)),
        (lambda: lt.RNN_ENCODER(BIRD_VOCAB), RNN_TABLE),
        (lambda: lt.CNN_ENCODER(256), CNN_TABLE),
    ],
    ids=["G_NET", "D_NET256", "D_NET256_4ch", "RNN_ENCODER", "CNN_ENCODER"],
)
def test_state_dict_matches_spec_table(build, table):
    with torch.device("meta"):
        module = build()
    assert state_entries(module) == table
    assert param_count(module) == table_param_count(table)


def test_parameter_counts_bird_config():
    with torch.device("meta"):
        g, d = lt.G_NET(), lt.D_NET256()
        d4 = lt.D_NET256(use_sharp_region_mask=True)
    assert param_count(g) == table_param_count(G_TABLE) == 15_809_840
    assert param_count(d) == table_param_count(d_table(3)) == 71_858_946
    assert param_count(d4) == 71_858_946 + 64 * 4 * 4


# Building blocks.


@pytest.mark.parametrize(("modern", "expected"), [(True, MODERN_MAP), (False, None)])
def test_img_up_block_nearest_index_map(modern, expected):
    if expected is None:
        expected = [i * 17 // 32 for i in range(32)]
        assert expected[17] == 9 and MODERN_MAP[17] == 8
        assert [a for a, b in zip(expected, MODERN_MAP, strict=True) if a != b] == [9]
    up = lt.imgUpBlock(1, 1, nearest_scale_index=modern)[0]
    rows = torch.arange(17.0).view(1, 1, 17, 1).expand(1, 1, 17, 17)
    cols = rows.transpose(2, 3)
    assert up(rows)[0, 0, :, 0].long().tolist() == expected
    assert up(cols)[0, 0, 0, :].long().tolist() == expected


def test_up_block_nearest_x2():
    up = lt.upBlock(1, 1)[0]
    x = torch.arange(5.0).view(1, 1, 5, 1).expand(1, 1, 5, 5)
    assert up(x)[0, 0, :, 0].long().tolist() == [i // 2 for i in range(10)]


def test_glu_halves_channels():
    x = torch.randn(2, 6, 3, 3)
    out = lt.GLU()(x)
    assert out.shape == (2, 3, 3, 3)
    expected = x.numpy()[:, :3] / (1.0 + np.exp(-x.numpy()[:, 3:]))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError):
        lt.GLU()(torch.randn(1, 5))


def test_resblock_is_identity_when_block_outputs_zero():
    torch.manual_seed(0)
    block = lt.ResBlock(4)
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        assert not torch.allclose(block(x), x)
        block.block[3].weight.zero_()
        assert torch.equal(block(x), x)


def test_instance_norm_in_blocks_has_no_parameters():
    block = lt.upBlock(3, 2)
    assert [n for n, _ in block.named_parameters()] == ["1.weight"]
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        h = block[1](block[0](x))
        mean = h.mean(dim=(2, 3), keepdim=True)
        var = h.var(dim=(2, 3), unbiased=False, keepdim=True)
        normed = (h - mean) / torch.sqrt(var + 1e-5)
        expected = normed[:, :2] * torch.sigmoid(normed[:, 2:])
        torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


def test_acm_multiplies_and_adds():
    torch.manual_seed(1)
    module = lt.ACM(5, 3)
    x, img = torch.randn(2, 5, 6, 6), torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        h = F.conv2d(img, module.conv.weight, padding=1)
        scale = F.conv2d(h, module.conv_weight.weight, padding=1)
        shift = F.conv2d(h, module.conv_bias.weight, padding=1)
        torch.testing.assert_close(module(x, img), x * scale + shift)


# Attention.


def attention_case():
    """B=3, idf=2, 2x2 locations, cdf=5, T=3 with padding in samples 1 and 2."""
    torch.manual_seed(2)
    lengths = [3, 2, 1]
    mask = torch.tensor([[i >= n for i in range(3)] for n in lengths])
    words = torch.randn(3, 5, 3).masked_fill(mask.unsqueeze(1), 0.0)
    h = torch.randn(3, 2, 2, 2)
    return h, words, mask


def spatial_oracle(h, words, mask, weight, own_mask):
    """numpy spatial attention; the mask row of (b, q) follows the spec formula."""
    batch, idf, height, width = h.shape
    query_len = height * width
    source = np.einsum("ic,bct->bit", weight, words)
    context = np.zeros((batch, idf, query_len))
    attn = np.zeros((batch, words.shape[2], query_len))
    for b in range(batch):
        for q in range(query_len):
            row = mask[b] if own_mask else mask[(b * query_len + q) % batch]
            logits = h[b].reshape(idf, query_len)[:, q] @ source[b]
            logits = np.where(row, -np.inf, logits)
            p = np.exp(logits - logits.max())
            p /= p.sum()
            attn[b, :, q] = p
            context[b, :, q] = source[b] @ p
    return context.reshape(h.shape), attn.reshape(batch, -1, height, width)


def test_tile_mask_upstream_formula():
    mask = torch.rand(3, 4) > 0.5
    tiled = lt.tile_mask_upstream(mask, 5)
    for b in range(3):
        for q in range(5):
            assert torch.equal(tiled[b, q], mask[(b * 5 + q) % 3])


@pytest.mark.parametrize("other_sample", [True, False])
def test_spatial_attention_mask_conventions(other_sample):
    h, words, mask = attention_case()
    module = lt.SpatialAttention(2, 5, attention_mask_other_sample=other_sample)
    with torch.no_grad():
        context, attn = module(h, words, mask)
    weight = module.conv_context.weight[:, :, 0, 0].detach().numpy()
    ref_context, ref_attn = spatial_oracle(
        h.numpy(), words.numpy(), mask.numpy(), weight, own_mask=not other_sample
    )
    np.testing.assert_allclose(context.numpy(), ref_context, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(attn.numpy(), ref_attn, rtol=1e-5, atol=1e-6)


def test_spatial_attention_upstream_mask_by_hand():
    h, words, mask = attention_case()
    upstream = lt.SpatialAttention(2, 5)
    clean = lt.SpatialAttention(2, 5, attention_mask_other_sample=False)
    clean.load_state_dict(upstream.state_dict())
    with torch.no_grad():
        up_context, up_attn = upstream(h, words, mask)
        clean_context, _ = clean(h, words, mask)
        # Sample 0 (3 valid words), location q=1 (row 0, col 1) uses sample 1's mask (1+0*4).
        source = upstream.conv_context.weight[:, :, 0, 0] @ words[0]
        logits = h[0, :, 0, 1] @ source
        p = torch.exp(logits[:2]) / torch.exp(logits[:2]).sum()
        expected = source[:, :2] @ p
    torch.testing.assert_close(up_context[0, :, 0, 1], expected)
    torch.testing.assert_close(up_attn[0, :, 0, 1], torch.cat([p, torch.zeros(1)]))
    assert not torch.allclose(up_context[0, :, 0, 1], clean_context[0, :, 0, 1])


def channel_oracle(context, words, mask, weight, exclude_padding):
    """numpy channel attention."""
    batch, idf = context.shape[:2]
    source = np.einsum("sc,bct->bst", weight, words)
    logits = np.einsum("bis,bst->bit", context.reshape(batch, idf, -1), source)
    if exclude_padding:
        logits = np.where(mask[:, None, :], -np.inf, logits)
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    out = np.einsum("bst,bit->bis", source, p)
    return out.reshape(context.shape), p.transpose(0, 2, 1)


@pytest.mark.parametrize("batch_padding", [True, False])
def test_channel_attention_padding_conventions(batch_padding):
    _, words, mask = attention_case()
    torch.manual_seed(3)
    context = torch.randn(3, 2, 2, 2)
    module = lt.ChannelAttention(2, 5, 2, channel_attention_batch_padding=batch_padding)
    with torch.no_grad():
        out, attn = module(context, words, mask)
        unmasked, _ = module(context, words, None)
    weight = module.conv_context.weight[:, :, 0, 0].detach().numpy()
    ref_out, ref_attn = channel_oracle(
        context.numpy(), words.numpy(), mask.numpy(), weight, not batch_padding
    )
    np.testing.assert_allclose(out.numpy(), ref_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(attn.numpy(), ref_attn, rtol=1e-5, atol=1e-6)
    assert torch.equal(out[0], unmasked[0])
    assert torch.equal(out, unmasked) == batch_padding


# Text encoder.


def sigmoid(v: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-v))


def lstm_direction(x: np.ndarray, sd: dict, suffix: str, reverse: bool) -> np.ndarray:
    """numpy LSTM over (T, in) with gate order i, f, g, o; returns (T, hidden)."""
    w_ih, w_hh = sd[f"rnn.weight_ih_l0{suffix}"], sd[f"rnn.weight_hh_l0{suffix}"]
    b = sd[f"rnn.bias_ih_l0{suffix}"] + sd[f"rnn.bias_hh_l0{suffix}"]
    h, c = np.zeros(w_hh.shape[1]), np.zeros(w_hh.shape[1])
    out = np.zeros((len(x), len(h)))
    for t in range(len(x) - 1, -1, -1) if reverse else range(len(x)):
        i, f, g, o = np.split(w_ih @ x[t] + w_hh @ h + b, 4)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        out[t] = h
    return out


def test_rnn_encoder_matches_numpy_lstm():
    torch.manual_seed(4)
    encoder = lt.RNN_ENCODER(40).eval()
    lengths = torch.tensor([5, 3, 2])
    captions = torch.zeros(3, 7, dtype=torch.long)
    for i, n in enumerate(lengths.tolist()):
        captions[i, :n] = torch.randint(1, 40, (n,))
    with torch.no_grad():
        words, sentence = encoder(captions, lengths)
    assert words.shape == (3, 256, 5) and sentence.shape == (3, 256)
    sd = {k: v.double().numpy() for k, v in encoder.state_dict().items()}
    for i, n in enumerate(lengths.tolist()):
        x = sd["encoder.weight"][captions[i, :n].numpy()]
        fwd = lstm_direction(x, sd, "", reverse=False)
        bwd = lstm_direction(x, sd, "_reverse", reverse=True)
        np.testing.assert_allclose(words[i, :128, :n].numpy().T, fwd, atol=1e-5)
        np.testing.assert_allclose(words[i, 128:, :n].numpy().T, bwd, atol=1e-5)
        np.testing.assert_allclose(sentence[i].numpy(), np.r_[fwd[-1], bwd[0]], atol=1e-5)
        assert torch.count_nonzero(words[i, :, n:]) == 0


def test_rnn_encoder_padding_changes_nothing():
    torch.manual_seed(5)
    encoder = lt.RNN_ENCODER(30).eval()
    caption = torch.randint(1, 30, (1, 4))
    padded = torch.cat([caption, torch.zeros(1, 6, dtype=torch.long)], dim=1)
    longer = torch.randint(1, 30, (1, 10))
    with torch.no_grad():
        words, sentence = encoder(caption, torch.tensor([4]))
        words_pad, sentence_pad = encoder(padded, torch.tensor([4]))
        words_batch, sentence_batch = encoder(torch.cat([longer, padded]), torch.tensor([10, 4]))
    assert torch.equal(words, words_pad) and torch.equal(sentence, sentence_pad)
    assert words_batch.shape == (2, 256, 10)
    torch.testing.assert_close(words_batch[1:, :, :4], words, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(sentence_batch[1:], sentence, rtol=1e-6, atol=1e-6)
    assert torch.count_nonzero(words_batch[1, :, 4:]) == 0


def test_rnn_encoder_requires_descending_lengths():
    encoder = lt.RNN_ENCODER(10).eval()
    with pytest.raises(RuntimeError):
        encoder(torch.ones(2, 4, dtype=torch.long), torch.tensor([2, 4]))


def test_rnn_encoder_embedding_init_range():
    torch.manual_seed(6)
    weight = lt.RNN_ENCODER(BIRD_VOCAB).encoder.weight
    assert weight.abs().max() <= 0.1 and weight.abs().max() > 0.099


# Image encoders.


def bilinear_oracle(x: np.ndarray, size: int) -> np.ndarray:
    """numpy bilinear resize of (H, W), align_corners False, no antialias."""

    def axis_weights(n_in):
        src = np.maximum((np.arange(size) + 0.5) * n_in / size - 0.5, 0.0)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        lam = src - lo
        mat = np.zeros((size, n_in))
        np.add.at(mat, (np.arange(size), lo), 1.0 - lam)
        np.add.at(mat, (np.arange(size), hi), lam)
        return mat

    return axis_weights(x.shape[0]) @ x @ axis_weights(x.shape[1]).T


def test_resize_to_inception_matches_formula():
    x = torch.randn(1, 1, 13, 37)
    out = lt.resize_to_inception(x)
    assert out.shape == (1, 1, 299, 299)
    ref = bilinear_oracle(x[0, 0].double().numpy(), 299)
    np.testing.assert_allclose(out[0, 0].numpy(), ref, atol=1e-5)


def test_cnn_encoder_outputs():
    torch.manual_seed(7)
    encoder = lt.CNN_ENCODER(256).eval()
    bn_eps = {m.eps for m in encoder.modules() if isinstance(m, nn.BatchNorm2d)}
    assert bn_eps == {1e-3}
    captured = {}
    encoder.Mixed_7c.register_forward_hook(lambda m, i, o: captured.update(top=o))
    encoder.Mixed_6e.register_forward_hook(lambda m, i, o: captured.update(mid=o))
    with torch.no_grad():
        features, code = encoder(torch.rand(1, 3, 64, 64) * 2 - 1)
        assert captured["top"].shape == (1, 2048, 8, 8)
        pooled = captured["top"].mean(dim=(2, 3))
        expected_code = pooled @ encoder.emb_cnn_code.weight.T + encoder.emb_cnn_code.bias
        expected_features = torch.einsum(
            "oc,bchw->bohw", encoder.emb_features.weight[:, :, 0, 0], captured["mid"]
        )
    assert features.shape == (1, 256, 17, 17) and code.shape == (1, 256)
    torch.testing.assert_close(code, expected_code, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(features, expected_features, rtol=1e-4, atol=1e-5)


def test_vgg_returns_relu2_2():
    torch.manual_seed(8)
    vgg = lt.VGGNet().eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    p = {k: v for k, v in vgg.state_dict().items()}

    def block(h, i):
        return F.relu(F.conv2d(h, p[f"vgg.{i}.weight"], p[f"vgg.{i}.bias"], padding=1))

    with torch.no_grad():
        out = vgg(x)
        ref = block(block(F.max_pool2d(block(block(x, 0), 2), 2), 5), 7)
    assert out.shape == (2, 128, 8, 8)
    torch.testing.assert_close(out, ref)


# Generator.


def g_inputs(batch: int, words: int, seed: int = 9) -> dict:
    """Random G inputs; with batch > 1 the last caption is two words shorter."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, words, dtype=torch.bool)
    if batch > 1:
        mask[-1, words - 2 :] = True
    word_embs = torch.randn(batch, 256, words, generator=gen).masked_fill(mask.unsqueeze(1), 0)
    return {
        "z_code": torch.randn(batch, 100, generator=gen),
        "sent_emb": torch.randn(batch, 256, generator=gen),
        "word_embs": word_embs,
        "mask": mask,
        "cnn_code": torch.randn(batch, 256, generator=gen),
        "region_features": torch.randn(batch, 256, 17, 17, generator=gen),
        "vgg_features": torch.rand(batch, 128, 128, 128, generator=gen),
        "ca_eps": torch.randn(batch, 100, generator=gen),
    }


def small_g(**switches) -> nn.Module:
    """A seeded narrow G (gf_dim 4, one ResBlock per stage) with the given switches."""
    torch.manual_seed(10)
    return lt.G_NET(4, 100, 100, 256, 1, **switches)


def test_g_forward_bird_config():
    torch.manual_seed(11)
    net = lt.G_NET().eval()
    inputs = g_inputs(2, 6)
    with torch.no_grad():
        images, atts, mu, logvar = net(**inputs)
        ca = lt.GLU()(net.ca_net.fc(inputs["sent_emb"]))
    assert len(images) == 1 and images[0].shape == (2, 3, 256, 256)
    assert len(atts) == 1 and atts[0].shape == (2, 6, 64, 64)
    assert mu.shape == logvar.shape == (2, 100)
    assert images[0].abs().max() <= 1.0
    torch.testing.assert_close(atts[0].sum(dim=1), torch.ones(2, 64, 64))
    torch.testing.assert_close(mu, ca[:, :100])
    torch.testing.assert_close(logvar, ca[:, 100:])


def capture(module: nn.Module, store: dict, key: str) -> None:
    """Record a submodule's positional inputs and output under key."""
    module.register_forward_hook(lambda m, args, out: store.update({key: (args, out)}))


def test_g_wiring_determinism_and_single_image_tiling():
    net = small_g().eval()
    inputs = g_inputs(2, 4)
    single = dict(inputs)
    for key in ("cnn_code", "region_features", "vgg_features"):
        single[key] = inputs[key][:1]
        inputs[key] = inputs[key][:1].expand_as(inputs[key])
    seen: dict = {}
    for name in ("h_net3", "imgUpSample2", "imgUpSample4", "ACM", "img_net"):
        capture(getattr(net, name), seen, name)
    with torch.no_grad():
        tiled = net(**inputs)[0][0]
        (h_code2, img_code256), acm_out = seen["ACM"]
        assert torch.equal(h_code2, seen["h_net3"][1][0])
        assert torch.equal(img_code256, seen["imgUpSample4"][1])
        assert torch.equal(seen["h_net3"][0][3], seen["imgUpSample2"][1])
        assert torch.equal(seen["img_net"][0][0], acm_out)
        torch.testing.assert_close(net(**single)[0][0], tiled)


def test_g_switches_reach_the_submodules():
    upstream = small_g()
    clean = small_g(
        attention_mask_other_sample=False,
        channel_attention_batch_padding=False,
        skip_init_bn_at_batch_one=True,
        nearest_scale_index=False,
        ca_noise_at_eval=False,
    )
    for net, flag in ((upstream, True), (clean, False)):
        for stage in (net.h_net1, net.h_net3):
            assert stage.att.attention_mask_other_sample == flag
            assert stage.channel_att.channel_attention_batch_padding == flag
        assert net.imgUpSample1[0].nearest_scale_index == flag
        assert net.ca_net.ca_noise_at_eval == flag
        assert net.h_net1.skip_init_bn_at_batch_one != flag


def test_ca_net_reparametrisation():
    torch.manual_seed(12)
    net = lt.CA_NET(8, 3).eval()
    text, eps = torch.randn(4, 8), torch.randn(4, 3)
    with torch.no_grad():
        c, mu, logvar = net(text, eps)
    np.testing.assert_allclose(
        c.numpy(), mu.numpy() + eps.numpy() * np.exp(0.5 * logvar.numpy()), rtol=1e-6
    )


@pytest.mark.parametrize("noise_at_eval", [True, False])
def test_ca_noise_at_eval(noise_at_eval):
    torch.manual_seed(16)
    net = lt.CA_NET(8, 3, ca_noise_at_eval=noise_at_eval)
    text = torch.randn(4, 8)
    with torch.no_grad():
        mu = net(text)[1]
        train_draws = net(text)[0], net(text)[0]
        net.eval()
        eval_draws = net(text)[0], net(text)[0]
    assert not torch.equal(*train_draws)
    assert torch.equal(*eval_draws) != noise_at_eval
    assert torch.equal(eval_draws[0], mu) != noise_at_eval


def init_stage_inputs(batch: int) -> tuple:
    """Inputs of a narrow INIT_STAGE_G (ngf 64, img_dim 4)."""
    gen = torch.Generator().manual_seed(17)
    return (
        torch.randn(batch, 100, generator=gen),
        torch.randn(batch, 100, generator=gen),
        torch.randn(batch, 256, generator=gen),
        torch.randn(batch, 256, 4, generator=gen),
        None,
        torch.randn(batch, 4, 32, 32, generator=gen),
    )


def test_stage_wiring():
    torch.manual_seed(20)
    init = lt.INIT_STAGE_G(64, 100, 256, 100, 1, 4).eval()
    nxt = lt.NEXT_STAGE_G(4, 256, 1, 64).eval()
    z, c, cnn, words, _, img32 = init_stage_inputs(2)
    seen: dict = {}
    for stage, prefix in ((init, "i"), (nxt, "n")):
        for name in ("att", "channel_att", "ACM", "residual"):
            capture(getattr(stage, name), seen, prefix + name)
    capture(init.fc[0], seen, "fc")
    capture(init.upsample3, seen, "up3")
    capture(init.upsample4, seen, "up4")
    capture(nxt.upsample, seen, "up")
    with torch.no_grad():
        h1, _ = init(z, c, cnn, words, None, img32)
        h2, att = nxt(h1, words, None, img32.repeat(1, 1, 2, 2))
    assert h1.shape == (2, 4, 64, 64) and h2.shape == (2, 4, 256, 256)
    assert att.shape == (2, 4, 64, 64)
    assert torch.equal(seen["fc"][0][0], torch.cat([c, z, cnn], dim=1))
    for prefix, source in (("i", seen["up3"][1]), ("n", h1)):
        assert torch.equal(seen[prefix + "att"][0][0], source)
        context = seen[prefix + "att"][1][0]
        assert torch.equal(seen[prefix + "channel_att"][0][0], context)
        stacked = torch.cat([source, context, seen[prefix + "channel_att"][1][0]], dim=1)
        assert torch.equal(seen[prefix + "ACM"][0][0], stacked)
        assert torch.equal(seen[prefix + "residual"][0][0], seen[prefix + "ACM"][1])
    assert torch.equal(seen["iACM"][0][1], img32)
    assert torch.equal(seen["up4"][0][0], seen["iresidual"][1])
    assert torch.equal(seen["up"][0][0], seen["nresidual"][1])


def test_skip_init_bn_at_batch_one():
    nets = []
    for skip in (True, False):
        torch.manual_seed(18)
        nets.append(lt.INIT_STAGE_G(64, 100, 256, 100, 1, 4, skip_init_bn_at_batch_one=skip))
    seed, upstream = nets
    seed.apply(lt.weights_init)
    upstream.load_state_dict(seed.state_dict())
    no_bn = copy.deepcopy(seed)
    no_bn.fc[1] = nn.Identity()
    one, two = init_stage_inputs(1), init_stage_inputs(2)
    with torch.no_grad():
        for mode in (False, True):
            for net in [*nets, no_bn]:
                net.train(mode)
            assert seed(*one)[0].shape == (1, 4, 64, 64)
            torch.testing.assert_close(seed(*one)[0], no_bn(*one)[0])
            assert torch.equal(seed(*two)[0], upstream(*two)[0])
            if mode:
                with pytest.raises(ValueError):
                    upstream(*one)
            else:
                assert not torch.allclose(seed(*one)[0], upstream(*one)[0])


# Discriminator.


def sharp_oracle(x: np.ndarray) -> np.ndarray:
    """numpy SharpDetector mask (BASELINE_SPEC 6.7)."""
    grey = np.pad(x.mean(axis=1), ((0, 0), (1, 1), (1, 1)))
    lap = grey[:, :-2, 1:-1] + grey[:, 2:, 1:-1] + grey[:, 1:-1, :-2] + grey[:, 1:-1, 2:]
    sharp = np.maximum(np.abs(lap - 4 * grey[:, 1:-1, 1:-1]), 0.5 / 255)
    padded = np.pad(sharp, ((0, 0), (2, 2), (2, 2)))
    height, width = sharp.shape[1:]
    box = sum(padded[:, i : i + height, j : j + width] for i in range(5) for j in range(5)) / 25
    return (box > box.mean(axis=(1, 2), keepdims=True)).astype(np.float32)[:, None]


def test_sharp_region_mask_matches_oracle():
    torch.manual_seed(13)
    x = torch.rand(2, 3, 12, 12) * 2 - 1
    x[0, :, :6] = 0.3
    out = lt.sharp_region_mask(x)
    assert out.shape == (2, 1, 12, 12)
    np.testing.assert_array_equal(out.numpy(), sharp_oracle(x.double().numpy()))


def small_d(**kwargs) -> nn.Module:
    """A seeded narrow D (df_dim 8)."""
    torch.manual_seed(14)
    net = lt.D_NET256(8, 16, **kwargs)
    net.apply(lt.weights_init)
    return net


def test_d_forward_and_heads():
    net = small_d()
    x, sentence = torch.rand(2, 3, 256, 256) * 2 - 1, torch.randn(2, 16)
    with torch.no_grad():
        features = net(x)
        uncond = net.UNCOND_DNET(features)
        cond = net.COND_DNET(features, sentence)
        head = net.UNCOND_DNET.outlogits[0]
        logit = (features * head.weight).sum(dim=(1, 2, 3)) + head.bias
        tiled = sentence[:, :, None, None].expand(-1, -1, 4, 4)
        joint = net.COND_DNET.jointConv(torch.cat([features, tiled], dim=1))
        cond_head = net.COND_DNET.outlogits[0]
        cond_logit = (joint * cond_head.weight).sum(dim=(1, 2, 3)) + cond_head.bias
    assert features.shape == (2, 64, 4, 4)
    assert uncond.shape == cond.shape == (2,)
    torch.testing.assert_close(uncond, torch.sigmoid(logit))
    torch.testing.assert_close(cond, torch.sigmoid(cond_logit))


def run_backbone(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """D backbone on an already assembled input."""
    for name in ("img_code_s16", "img_code_s32", "img_code_s64", "img_code_s64_1"):
        x = getattr(net, name)(x)
    return net.img_code_s64_2(x)


def test_d_four_channel_mode():
    net = small_d(use_sharp_region_mask=True)
    torch.manual_seed(15)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = torch.from_numpy(sharp_oracle(x.double().numpy()))
    with torch.no_grad():
        early = net(x, epoch=50)
        late = net(x, epoch=51)
        torch.testing.assert_close(early, run_backbone(net, torch.cat([x, 0 * mask], dim=1)))
        torch.testing.assert_close(late, run_backbone(net, torch.cat([x, mask], dim=1)))
    assert not torch.allclose(early, late)


def test_weights_init():
    torch.manual_seed(19)
    g = lt.G_NET(4, 10, 10, 16, 1)
    g.apply(lt.weights_init)
    d = small_d()
    fc = g.h_net1.fc[0].weight.detach()
    torch.testing.assert_close(fc.T @ fc, torch.eye(fc.shape[1]), atol=1e-4, rtol=0)
    stem = d.img_code_s16[0].weight.detach().flatten(1)
    torch.testing.assert_close(stem @ stem.T, torch.eye(stem.shape[0]), atol=1e-4, rtol=0)
    assert torch.count_nonzero(g.ca_net.fc.bias) == 0
    bn_weights = torch.cat([m.weight for m in d.modules() if isinstance(m, nn.BatchNorm2d)])
    bn_biases = torch.cat([m.bias for m in d.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn_weights.mean().item() - 1.0) < 0.01
    assert 0.015 < bn_weights.std().item() < 0.025
    assert torch.count_nonzero(bn_biases) == 0
    bias = d.UNCOND_DNET.outlogits[0].bias
    assert bias.abs().item() <= 1 / np.sqrt(8 * 8 * 16) and bias.item() != 0
