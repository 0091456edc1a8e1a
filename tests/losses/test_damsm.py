"""DAMSM losses against a per-caption numpy loop of spec §4.1, torch, and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmani.losses.damsm import sentence_loss, words_loss

GAMMAS = (4.0, 5.0, 10.0)
jit_words_loss = jax.jit(words_loss)
jit_sentence_loss = jax.jit(sentence_loss)


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """Numerically plain softmax."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _cross_entropy(scores: np.ndarray) -> float:
    """Mean over rows of -log softmax(row)[row index]; -inf entries allowed off the diagonal."""
    total = 0.0
    for k in range(scores.shape[0]):
        row = scores[k]
        finite = row[np.isfinite(row)]
        total += np.log(np.sum(np.exp(finite - row[k]))) if finite.size else 0.0
    return total / scores.shape[0]


def _class_mask(class_ids: np.ndarray) -> np.ndarray:
    """masks[i, b] = class[b] == class[i] and b != i, built caption by caption."""
    rows = []
    for i in range(len(class_ids)):
        row = class_ids == class_ids[i]
        row[i] = False
        rows.append(row)
    return np.stack(rows)


def _func_attention(query: np.ndarray, context: np.ndarray, gamma1: float):
    """§4.1 func_attention on (B,E,n) words and (B,E,R) regions: (B,E,n) context, (B,n,R) attn."""
    scores = np.einsum("ber,ben->brn", context, query)
    attn = _softmax(scores, axis=2)
    attn = _softmax(np.transpose(attn, (0, 2, 1)) * gamma1, axis=2)
    return np.einsum("ber,bnr->ben", context, attn), attn


def _reference_words_loss(words, lengths, regions, class_ids, gamma1, gamma2, gamma3):
    """Literal per-caption loop of §4.1 words_loss in numpy (NCHW-style (E, n) slices)."""
    batch = words.shape[0]
    context = np.transpose(regions.reshape(batch, -1, regions.shape[-1]), (0, 2, 1))
    columns, attention = [], np.zeros((batch, words.shape[1], context.shape[2]), words.dtype)
    for i in range(batch):
        n = lengths[i]
        word = np.repeat(words[i, :n].T[None], batch, axis=0)
        weighted, attn = _func_attention(word, context, gamma1)
        attention[i, :n] = attn[i]
        dot = np.sum(word * weighted, axis=1)
        norms = np.linalg.norm(word, axis=1) * np.linalg.norm(weighted, axis=1)
        cos = dot / np.maximum(norms, 1e-8)
        columns.append(np.log(np.sum(np.exp(cos * gamma2), axis=1)))
    similarities = np.stack(columns, axis=1) * gamma3
    similarities[_class_mask(class_ids)] = -np.inf
    loss0, loss1 = _cross_entropy(similarities), _cross_entropy(similarities.T)
    return loss0, loss1, attention.reshape(batch, words.shape[1], *regions.shape[1:3])


def _reference_sentence_loss(cnn_code, sent_emb, class_ids, gamma3):
    """§4.1 sent_loss in numpy."""
    norms = np.linalg.norm(cnn_code, axis=1)[:, None] * np.linalg.norm(sent_emb, axis=1)[None]
    scores = cnn_code @ sent_emb.T / np.maximum(norms, 1e-8) * gamma3
    scores[_class_mask(class_ids)] = -np.inf
    return _cross_entropy(scores), _cross_entropy(scores.T)


def _inputs(seed: int, dtype=np.float32, batch=5, words=7, grid=(3, 4), dim=6):
    """Random words (with garbage at padding), lengths, regions and repeating class ids."""
    rng = np.random.default_rng(seed)
    lengths = np.array([words, 4, 1, words - 1, 3][:batch])
    words_emb = rng.normal(size=(batch, words, dim)).astype(dtype)
    regions = rng.normal(size=(batch, *grid, dim)).astype(dtype)
    class_ids = np.array([3, 1, 3, 2, 1][:batch])
    padding = np.arange(words)[None, :] >= lengths[:, None]
    return words_emb, padding, lengths, regions, class_ids


def _jax_words(words_emb, padding, regions, class_ids, gammas=GAMMAS):
    """words_loss on numpy inputs."""
    args = (jnp.asarray(words_emb), jnp.asarray(padding), jnp.asarray(regions))
    return jit_words_loss(*args, jnp.asarray(class_ids), *gammas)


def test_words_loss_matches_per_caption_loop_float32():
    words_emb, padding, lengths, regions, class_ids = _inputs(0)
    loss0, loss1, attention = jit_words_loss(
        jnp.asarray(words_emb), padding, jnp.asarray(regions), class_ids, *GAMMAS
    )
    ref0, ref1, ref_attention = _reference_words_loss(
        words_emb.astype(np.float64), lengths, regions.astype(np.float64), class_ids, *GAMMAS
    )
    np.testing.assert_allclose([loss0, loss1], [ref0, ref1], rtol=1e-5, atol=1e-5)
    assert attention.shape == (5, 7, 3, 4)
    np.testing.assert_allclose(attention, ref_attention, rtol=1e-5, atol=1e-6)


def test_words_loss_matches_per_caption_loop_float64():
    words_emb, padding, lengths, regions, class_ids = _inputs(1, np.float64)
    gammas = (4.0, 2.0, 3.0)
    with jax.enable_x64(True):
        loss0, loss1, attention = _jax_words(words_emb, padding, regions, class_ids, gammas)
        assert loss0.dtype == jnp.float64
        ours = np.asarray([loss0, loss1])
        attention = np.asarray(attention)
    ref0, ref1, ref_attention = _reference_words_loss(
        words_emb, lengths, regions, class_ids, *gammas
    )
    np.testing.assert_allclose(ours, [ref0, ref1], rtol=1e-10, atol=0)
    np.testing.assert_allclose(attention, ref_attention, rtol=1e-10, atol=1e-14)


def test_words_loss_matches_torch_transcription():
    torch = pytest.importorskip("torch")
    words_emb, padding, lengths, regions, class_ids = _inputs(2)
    gamma1, gamma2, gamma3 = GAMMAS
    context = torch.from_numpy(regions).permute(0, 3, 1, 2).reshape(5, 6, -1)
    columns = []
    for i in range(5):
        word = torch.from_numpy(words_emb[i, : lengths[i]]).t().unsqueeze(0).repeat(5, 1, 1)
        attn = torch.softmax(torch.bmm(context.transpose(1, 2), word), dim=2)
        attn = torch.softmax(attn.transpose(1, 2) * gamma1, dim=2)
        weighted = torch.bmm(context, attn.transpose(1, 2))
        norms = (word.norm(dim=1) * weighted.norm(dim=1)).clamp(min=1e-8)
        cos = (word * weighted).sum(dim=1) / norms
        columns.append(torch.log(torch.exp(cos * gamma2).sum(dim=1, keepdim=True)))
    sims = torch.cat(columns, dim=1) * gamma3
    sims = sims.masked_fill(torch.from_numpy(_class_mask(class_ids)), -float("inf"))
    labels = torch.arange(5)
    expected = [torch.nn.functional.cross_entropy(s, labels).item() for s in (sims, sims.t())]
    loss0, loss1, _ = _jax_words(words_emb, padding, regions, class_ids)
    np.testing.assert_allclose([loss0, loss1], expected, rtol=1e-5, atol=1e-5)


def test_words_loss_closed_form_one_region_one_word():
    # one region and one word each: attention is 1, context = region, S = g3 * g2 * cos(w_i, r_b)
    words_emb = np.array([[[1.0, 0.0]], [[0.0, 2.0]]], np.float32)
    regions = np.array([[[[3.0, 0.0]]], [[[0.0, 1.0]]]], np.float32)
    loss0, loss1, attention = _jax_words(
        words_emb, np.zeros((2, 1), bool), regions, np.array([0, 1]), (4.0, 1.0, 0.2)
    )
    expected = np.log1p(np.exp(-0.2))
    np.testing.assert_allclose([loss0, loss1], [expected, expected], rtol=1e-6)
    np.testing.assert_array_equal(attention, np.ones((2, 1, 1, 1)))


def test_same_class_negatives_are_removed():
    words_emb, padding, _, regions, _ = _inputs(3)
    all_same = _jax_words(words_emb, padding, regions, np.zeros(5, int))
    np.testing.assert_array_equal(all_same[:2], [0.0, 0.0])
    distinct = _jax_words(words_emb, padding, regions, np.arange(5))
    shared = _jax_words(words_emb, padding, regions, np.array([0, 0, 1, 2, 3]))
    assert float(distinct[0]) > float(shared[0]) > 0.0
    assert float(distinct[1]) > float(shared[1]) > 0.0


def test_padding_values_and_extra_padding_change_nothing():
    words_emb, padding, _, regions, class_ids = _inputs(4)
    garbage = np.where(padding[..., None], 1e3 * np.sign(words_emb) + np.nan, words_emb)
    base = _jax_words(words_emb, padding, regions, class_ids)
    noisy = _jax_words(garbage.astype(np.float32), padding, regions, class_ids)
    for a, b in zip(base, noisy, strict=True):
        np.testing.assert_array_equal(a, b)
    longer_words = np.concatenate([words_emb, np.ones((5, 3, 6), np.float32)], axis=1)
    longer_padding = np.concatenate([padding, np.ones((5, 3), bool)], axis=1)
    longer = _jax_words(longer_words, longer_padding, regions, class_ids)
    np.testing.assert_allclose(longer[:2], base[:2], rtol=1e-6)
    np.testing.assert_allclose(longer[2][:, :7], base[2], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(longer[2][:, 7:], 0.0)


def test_words_loss_gradients_are_finite_and_zero_at_padding():
    words_emb, padding, _, regions, class_ids = _inputs(5)
    regions[0, 0, 0] = 0.0  # a zero region vector exercises the cosine's norm at zero

    def total(words, regs):
        loss0, loss1, _ = words_loss(words, padding, regs, class_ids, *GAMMAS)
        return loss0 + loss1

    grad_words, grad_regions = jax.jit(jax.grad(total, argnums=(0, 1)))(
        jnp.asarray(words_emb), jnp.asarray(regions)
    )
    assert np.all(np.isfinite(grad_words)) and np.all(np.isfinite(grad_regions))
    np.testing.assert_array_equal(np.asarray(grad_words)[padding], 0.0)
    assert np.abs(np.asarray(grad_words)[~padding]).max() > 0.0


def test_sentence_loss_matches_reference_and_torch():
    rng = np.random.default_rng(6)
    cnn_code = rng.normal(size=(5, 6)).astype(np.float32)
    sent_emb = rng.normal(size=(5, 6)).astype(np.float32)
    class_ids = np.array([3, 1, 3, 2, 1])
    ours = jit_sentence_loss(jnp.asarray(cnn_code), jnp.asarray(sent_emb), class_ids, 10.0)
    expected = _reference_sentence_loss(
        cnn_code.astype(np.float64), sent_emb.astype(np.float64), class_ids, 10.0
    )
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    torch = pytest.importorskip("torch")
    cnn, rnn = torch.from_numpy(cnn_code)[None], torch.from_numpy(sent_emb)[None]
    norm = torch.bmm(cnn.norm(dim=2, keepdim=True), rnn.norm(dim=2, keepdim=True).transpose(1, 2))
    scores = (torch.bmm(cnn, rnn.transpose(1, 2)) / norm.clamp(min=1e-8) * 10.0).squeeze(0)
    scores = scores.masked_fill(torch.from_numpy(_class_mask(class_ids)), -float("inf"))
    labels = torch.arange(5)
    reference = [torch.nn.functional.cross_entropy(s, labels).item() for s in (scores, scores.t())]
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)


def test_sentence_loss_float64_and_closed_form():
    cnn_code = np.array([[1.0, 0.0], [0.0, 1.0]])
    sent_emb = np.array([[1.0, 0.0], [1.0, 1.0]])
    with jax.enable_x64(True):
        ours = np.asarray(jit_sentence_loss(cnn_code, sent_emb, jnp.arange(2), 2.0))
    # S = 2 * [[1, 1/sqrt2], [0, 1/sqrt2]]
    a = np.sqrt(2.0)
    loss0 = 0.5 * (np.log1p(np.exp(a - 2.0)) + np.log1p(np.exp(-a)))
    loss1 = 0.5 * (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(a - a)))
    np.testing.assert_allclose(ours, [loss0, loss1], rtol=1e-12)


def test_cosine_floors_the_product_of_norms_at_1e8():
    # |g0| * |s0| = 1e-10 < 1e-8, so S = [[1e-10 / 1e-8, 0], [0, 1]]
    codes = jnp.array([[1e-5, 0.0], [0.0, 1.0]])
    expected = 0.5 * (np.log1p(np.exp(-0.01)) + np.log1p(np.exp(-1.0)))
    np.testing.assert_allclose(jit_sentence_loss(codes, codes, jnp.arange(2), 1.0), [expected] * 2)


def test_sentence_loss_batch_of_one_and_gradients():
    ones = jnp.ones((1, 4))
    np.testing.assert_array_equal(jit_sentence_loss(ones, 2 * ones, jnp.array([7]), 10.0), [0, 0])
    rng = np.random.default_rng(7)
    cnn_code = jnp.asarray(rng.normal(size=(4, 6)), jnp.float32).at[0].set(0.0)
    sent_emb = jnp.asarray(rng.normal(size=(4, 6)), jnp.float32)
    total = jax.jit(jax.grad(lambda c, s: sum(sentence_loss(c, s, jnp.arange(4), 10.0)), (0, 1)))
    grads = total(cnn_code, sent_emb)
    assert all(np.all(np.isfinite(g)) for g in grads)
