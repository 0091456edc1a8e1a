"""DAMSM text encoder: word embedding and a bidirectional LSTM with packed-sequence semantics."""

import jax
import jax.numpy as jnp
from flax import linen as nn


def uniform_init(limit: float) -> nn.initializers.Initializer:
    """Initializer drawing from U(-limit, limit), the PyTorch default for embeddings and LSTMs."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -limit, limit)

    return init


def lstm_step(
    carry: tuple[jax.Array, jax.Array], gates_in: jax.Array, w_hh: jax.Array, b_hh: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """One PyTorch LSTM cell update (gate order i, f, g, o) from the precomputed input gates."""
    h, c = carry
    gates = gates_in + h @ w_hh + b_hh
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return h, c


class LSTMDirection(nn.Module):
    """One direction of a single-layer LSTM over padded sequences, skipping padded steps.

    Parameters follow PyTorch's `weight_ih_l0` etc., transposed to (in, 4h) for the weights.
    """

    hidden_dim: int
    reverse: bool = False

    @nn.compact
    def __call__(self, inputs: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Runs over (B,T,D) inputs with a (B,T) validity mask.

        Returns:
            outputs (B,T,h), exactly 0 at padded steps, and the final hidden state (B,h).
        """
        h_dim = self.hidden_dim
        init = uniform_init(h_dim**-0.5)
        w_ih = self.param("w_ih", init, (inputs.shape[-1], 4 * h_dim))
        w_hh = self.param("w_hh", init, (h_dim, 4 * h_dim))
        b_ih = self.param("b_ih", init, (4 * h_dim,))
        b_hh = self.param("b_hh", init, (4 * h_dim,))
        gates_in = inputs @ w_ih + b_ih

        def step(carry, xs):
            gate_t, valid_t = xs
            new_h, new_c = lstm_step(carry, gate_t, w_hh, b_hh)
            valid = valid_t[:, None]
            h = jnp.where(valid, new_h, carry[0])
            c = jnp.where(valid, new_c, carry[1])
            return (h, c), jnp.where(valid, new_h, 0.0)

        batch = inputs.shape[0]
        zeros = jnp.zeros((batch, h_dim), gates_in.dtype)
        xs = (jnp.swapaxes(gates_in, 0, 1), jnp.swapaxes(mask, 0, 1))
        (h_final, _), outputs = jax.lax.scan(step, (zeros, zeros), xs, reverse=self.reverse)
        return jnp.swapaxes(outputs, 0, 1), h_final


class TextEncoder(nn.Module):
    """RNN_ENCODER: embedding, dropout and a bidirectional LSTM over (B,T) token ids."""

    vocab_size: int
    word_dim: int = 300
    hidden_dim: int = 256
    dropout: float = 0.5

    @nn.compact
    def __call__(
        self, tokens: jax.Array, lengths: jax.Array, train: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        """Encodes captions; positions at or past each length are padding.

        Returns:
            words (B,T,hidden_dim) with forward then backward channels, zero at padding, and the
            sentence (B,hidden_dim) = [forward final h, backward final h].
        """
        per_direction = self.hidden_dim // 2
        embed = nn.Embed(
            self.vocab_size, self.word_dim, embedding_init=uniform_init(0.1), name="encoder"
        )
        x = nn.Dropout(self.dropout, deterministic=not train)(embed(tokens))
        mask = jnp.arange(tokens.shape[1])[None, :] < lengths[:, None]
        fwd_out, fwd_h = LSTMDirection(per_direction, name="forward")(x, mask)
        bwd_out, bwd_h = LSTMDirection(per_direction, reverse=True, name="backward")(x, mask)
        words = jnp.concatenate([fwd_out, bwd_out], axis=-1)
        sentence = jnp.concatenate([fwd_h, bwd_h], axis=-1)
        return words, sentence
