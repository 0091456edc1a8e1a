"""DAMSM word and sentence matching losses (spec §4.1), vectorised over all image-caption pairs."""

import jax
import jax.numpy as jnp

COSINE_EPS = 1e-8  # floor on the product of norms in every cosine similarity


def _safe_norm(x: jax.Array) -> jax.Array:
    """L2 norm over the last axis with a zero (not NaN) gradient at the zero vector."""
    squared = jnp.sum(x * x, axis=-1)
    positive = squared > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)


def _cosine(a: jax.Array, b: jax.Array) -> jax.Array:
    """Cosine similarity over the last axis: dot / max(|a| * |b|, 1e-8)."""
    dot = jnp.sum(a * b, axis=-1)
    return dot / jnp.maximum(_safe_norm(a) * _safe_norm(b), COSINE_EPS)


def _mask_same_class(similarities: jax.Array, class_ids: jax.Array) -> jax.Array:
    """Sets entries (b, i) with b != i and class_ids[b] == class_ids[i] to -inf."""
    same_class = class_ids[:, None] == class_ids[None, :]
    off_diagonal = ~jnp.eye(class_ids.shape[0], dtype=bool)
    return jnp.where(same_class & off_diagonal, -jnp.inf, similarities)


def _matching_losses(similarities: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Cross-entropies of the rows and of the columns of a square score matrix against arange."""
    rows = -jnp.mean(jnp.diagonal(jax.nn.log_softmax(similarities, axis=1)))
    columns = -jnp.mean(jnp.diagonal(jax.nn.log_softmax(similarities, axis=0)))
    return rows, columns


def _word_attention(
    words: jax.Array, valid: jax.Array, regions: jax.Array, gamma1: float
) -> tuple[jax.Array, jax.Array]:
    """func_attention of every caption against every image.

    Args:
      words: (B, T, E) word features with padding words zeroed.
      valid: (B, T) True for real words.
      regions: (B, R, E) region features.
      gamma1: sharpness of the softmax over regions.

    Returns:
      The region context per word (B images, B captions, T, E) and the word->region attention
      (B images, B captions, T, R).
    """
    scores = jnp.einsum("bre,ite->birt", regions, words)
    scores = jnp.where(valid[None, :, None, :], scores, -jnp.inf)
    per_region = jax.nn.softmax(scores, axis=-1)
    attention = jax.nn.softmax(gamma1 * jnp.swapaxes(per_region, -1, -2), axis=-1)
    context = jnp.einsum("bitr,bre->bite", attention, regions)
    return context, attention


def words_loss(
    words_emb: jax.Array,
    word_mask: jax.Array,
    region_features: jax.Array,
    class_ids: jax.Array,
    gamma1: float,
    gamma2: float,
    gamma3: float,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """DAMSM word loss: (loss over images, loss over captions, diagonal attention (B,T,H,W)).

    Args:
      words_emb: (B, T, E) word features; caption i uses only its valid words.
      word_mask: (B, T) bool, True at padding positions (their values never matter).
      region_features: (B, H, W, E) image region features.
      class_ids: (B,) int; other images of a caption's class are removed from its negatives.
      gamma1: attention sharpness over regions.
      gamma2: sharpness of the sum over words.
      gamma3: scale of the similarity matrix.

    Returns:
      loss0 = CE(S, arange) with S[b, i] the score of image b and caption i, loss1 = CE(S.T,
      arange), and the attention of each caption over its own image (zeros at padding words).
    """
    batch, height, width, channels = region_features.shape
    valid = ~word_mask
    words = jnp.where(valid[..., None], words_emb, 0.0)
    regions = region_features.reshape(batch, height * width, channels)
    context, attention = _word_attention(words, valid, regions, gamma1)
    word_scores = jnp.where(valid[None], gamma2 * _cosine(words[None], context), -jnp.inf)
    similarities = gamma3 * jax.nn.logsumexp(word_scores, axis=-1)
    loss0, loss1 = _matching_losses(_mask_same_class(similarities, class_ids))
    own = jnp.diagonal(attention, axis1=0, axis2=1)
    own = jnp.moveaxis(own, -1, 0) * valid[..., None]
    return loss0, loss1, own.reshape(batch, -1, height, width)


def sentence_loss(
    cnn_code: jax.Array, sent_emb: jax.Array, class_ids: jax.Array, gamma3: float
) -> tuple[jax.Array, jax.Array]:
    """DAMSM sentence loss (loss over images, loss over captions) on (B, E) global codes."""
    similarities = gamma3 * _cosine(cnn_code[:, None, :], sent_emb[None, :, :])
    return _matching_losses(_mask_same_class(similarities, class_ids))
