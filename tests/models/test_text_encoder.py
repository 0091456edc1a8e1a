"""TextEncoder against a plain numpy LSTM with packed-sequence semantics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmani.models.text_encoder import TextEncoder

VOCAB, WORD_DIM, HIDDEN = 20, 6, 8


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function in float64."""
    return 1.0 / (1.0 + np.exp(-x))


def numpy_lstm(x: np.ndarray, p: dict, reverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """Runs PyTorch's LSTM equations over one unpadded (L, D) sequence; returns outputs, final h."""
    h_dim = p["w_hh"].shape[0]
    h, c = np.zeros(h_dim), np.zeros(h_dim)
    outputs = np.zeros((len(x), h_dim))
    order = range(len(x) - 1, -1, -1) if reverse else range(len(x))
    for t in order:
        gates = x[t] @ p["w_ih"] + p["b_ih"] + h @ p["w_hh"] + p["b_hh"]
        i, f, g, o = np.split(gates, 4)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        outputs[t] = h
    return outputs, h


def numpy_encoder(params: dict, tokens: np.ndarray, lengths: np.ndarray):
    """Reference words (B,T,2h) and sentence (B,2h), one sequence at a time without padding."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    batch, steps = tokens.shape
    words = np.zeros((batch, steps, HIDDEN))
    sentence = np.zeros((batch, HIDDEN))
    for b in range(batch):
        x = p["encoder"]["embedding"][tokens[b, : lengths[b]]]
        fwd, fwd_h = numpy_lstm(x, p["forward"], reverse=False)
        bwd, bwd_h = numpy_lstm(x, p["backward"], reverse=True)
        words[b, : lengths[b]] = np.concatenate([fwd, bwd], axis=-1)
        sentence[b] = np.concatenate([fwd_h, bwd_h])
    return words, sentence


@pytest.fixture(scope="module")
def setup():
    """Jitted apply, params and a batch with unsorted lengths and garbage ids in the padding."""
    model = TextEncoder(VOCAB, word_dim=WORD_DIM, hidden_dim=HIDDEN)
    rng = np.random.default_rng(0)
    lengths = np.array([3, 7, 1, 5], np.int32)
    tokens = rng.integers(1, VOCAB, size=(4, 7)).astype(np.int32)
    params = jax.jit(model.init)(jax.random.key(0), tokens, lengths)["params"]
    apply = jax.jit(model.apply, static_argnums=3)
    return apply, params, tokens, lengths


def test_parameter_names_shapes_and_init(setup):
    _, params, _, _ = setup
    shapes = jax.tree.map(jnp.shape, params)
    h = HIDDEN // 2
    lstm = {"w_ih": (WORD_DIM, 4 * h), "w_hh": (h, 4 * h), "b_ih": (4 * h,), "b_hh": (4 * h,)}
    assert shapes == {
        "encoder": {"embedding": (VOCAB, WORD_DIM)},
        "forward": lstm,
        "backward": lstm,
    }
    assert np.abs(params["encoder"]["embedding"]).max() <= 0.1
    assert np.abs(params["forward"]["w_hh"]).max() <= h**-0.5
    assert np.abs(params["forward"]["w_hh"]).max() > 0.5 * h**-0.5


def test_matches_numpy_lstm_with_packed_semantics(setup):
    apply, params, tokens, lengths = setup
    words, sentence = apply({"params": params}, tokens, lengths)
    ref_words, ref_sentence = numpy_encoder(params, tokens, lengths)
    assert words.shape == (4, 7, HIDDEN) and sentence.shape == (4, HIDDEN)
    np.testing.assert_allclose(words, ref_words, atol=1e-5)
    np.testing.assert_allclose(sentence, ref_sentence, atol=1e-5)
    pad = np.arange(7)[None, :] >= lengths[:, None]
    assert np.all(np.asarray(words)[pad] == 0.0)
    np.testing.assert_array_equal(sentence[:, : HIDDEN // 2], words[np.arange(4), lengths - 1, :4])
    np.testing.assert_array_equal(sentence[:, HIDDEN // 2 :], words[:, 0, HIDDEN // 2 :])


def test_trailing_padding_and_batch_order_do_not_matter(setup):
    apply, params, tokens, lengths = setup
    words, sentence = apply({"params": params}, tokens, lengths)
    garbage = np.random.default_rng(1).integers(0, VOCAB, size=(4, 3)).astype(np.int32)
    longer = np.concatenate([tokens, garbage], axis=1)
    words_long, sentence_long = apply({"params": params}, longer, lengths)
    np.testing.assert_allclose(words_long[:, :7], words, atol=1e-6)
    assert np.all(np.asarray(words_long)[:, 7:] == 0.0)
    np.testing.assert_allclose(sentence_long, sentence, atol=1e-6)
    order = np.argsort(-lengths)
    words_sorted, sentence_sorted = apply({"params": params}, tokens[order], lengths[order])
    np.testing.assert_allclose(words_sorted, np.asarray(words)[order], atol=1e-6)
    np.testing.assert_allclose(sentence_sorted, np.asarray(sentence)[order], atol=1e-6)


def test_dropout_only_in_training(setup):
    apply, params, tokens, lengths = setup
    variables = {"params": params}
    eval_out = apply(variables, tokens, lengths)
    train_a = apply(variables, tokens, lengths, True, rngs={"dropout": jax.random.key(1)})
    train_b = apply(variables, tokens, lengths, True, rngs={"dropout": jax.random.key(2)})
    assert not np.allclose(train_a[1], eval_out[1])
    assert not np.allclose(train_a[1], train_b[1])
    pad = np.arange(7)[None, :] >= lengths[:, None]
    assert np.all(np.asarray(train_a[0])[pad] == 0.0)
