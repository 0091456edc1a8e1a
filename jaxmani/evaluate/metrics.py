"""Per-image metrics of edited images (METRICS_SPEC §3-§6) and of toy_birds ground truth.

Images are uint8 pixel values held as floats on the 0-255 scale, the values of the saved PNGs
(`jaxmani.data.pipeline.to_uint8` is the one conversion), NHWC. Masks are (B, H, W, 1) with
1 = background (text-irrelevant). Every function returns one value per image, shape (B,); the
caller averages them over the valid examples with `valid_mean`. R-precision ranks captions over the
whole split, so it runs on the host in numpy.
"""

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np

from jaxmani.masks.filters import laplacian, to_grey

PIXEL_MAX = 255.0
PART_PIXEL_THRESHOLD = 0.5  # A (resampled, fractional) part-mask value above this is the part.
EPS = 1e-12  # Guards the attention lift's divisions (a part covering every region, say).
R_PRECISION_CANDIDATES = 100  # The true caption plus 99 random others (AttnGAN).


def _per_image_mean(values: jax.Array) -> jax.Array:
    """Mean over every axis but the first."""
    return jnp.mean(values.reshape(values.shape[0], -1), axis=1)


def mask_score(original: jax.Array, edited: jax.Array, mask: jax.Array) -> jax.Array:
    """MSE(M * I_o, M * I_g) per image over all H*W*3 elements (no area normalisation), 0-255."""
    return _per_image_mean(jnp.square(mask * original - mask * edited))


def sharpness_score(images: jax.Array, scale: float = PIXEL_MAX) -> jax.Array:
    """Mean |4-neighbour Laplacian| (zero padding 1) of the RGB-mean grey image, per image.

    `images` are on the 0-255 scale; `scale=1` gives the seed script's [0, 1] value.
    """
    grey = to_grey(images) * (scale / PIXEL_MAX)
    return _per_image_mean(jnp.abs(laplacian(grey, padding="zero")))


def normalize(vectors: jax.Array) -> jax.Array:
    """Rows scaled to unit L2 norm (norm floored at 1e-8, the DAMSM cosine floor)."""
    norm = jnp.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / jnp.maximum(norm, 1e-8)


def manipulative_precision(
    original: jax.Array, edited: jax.Array, image_code: jax.Array, sentence: jax.Array
) -> jax.Array:
    """MP = (1 - diff) * sim per image (§5): diff = mean |I_o - I_g| on [0, 1], sim = cosine of
    the edited image's DAMSM code and the manipulation caption's sentence embedding."""
    diff = _per_image_mean(jnp.abs(original - edited)) / PIXEL_MAX
    similarity = jnp.sum(normalize(image_code) * normalize(sentence), axis=-1)
    return (1.0 - diff) * similarity


def edit_psnr(edited: jax.Array, target: jax.Array) -> jax.Array:
    """PSNR (dB) of the edit against the ground-truth edit image, data range 255."""
    return dm_pix.psnr(edited / PIXEL_MAX, target / PIXEL_MAX)


def edit_ssim(edited: jax.Array, target: jax.Array) -> jax.Array:
    """SSIM (Gaussian 11x11, sigma 1.5, channel-averaged) against the ground-truth edit."""
    return dm_pix.ssim(edited / PIXEL_MAX, target / PIXEL_MAX, max_val=1.0)


def background_change(original: jax.Array, edited: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean |I_o - I_g| (grey levels, 0-255) over the background, weighted by the true mask."""
    weight = jnp.broadcast_to(mask, original.shape)
    total = jnp.sum((weight * jnp.abs(original - edited)).reshape(original.shape[0], -1), axis=1)
    area = jnp.sum(weight.reshape(original.shape[0], -1), axis=1)
    return total / jnp.maximum(area, 1.0)


def part_means(images: jax.Array, part_masks: jax.Array) -> jax.Array:
    """Mean colour inside each part (0 for a part with no pixel): (B, P, C)."""
    inside = (part_masks > PART_PIXEL_THRESHOLD).astype(images.dtype)
    sums = jnp.einsum("bhwp,bhwc->bpc", inside, images)
    return sums / jnp.maximum(jnp.sum(inside, axis=(1, 2)), 1.0)[..., None]


def visible_parts(part_masks: jax.Array) -> jax.Array:
    """(B, P) bool: which parts have at least one pixel above PART_PIXEL_THRESHOLD."""
    return jnp.sum(part_masks > PART_PIXEL_THRESHOLD, axis=(1, 2)) > 0


def part_colours(images: jax.Array, part_masks: jax.Array, palette: jax.Array) -> jax.Array:
    """Palette index nearest (RGB distance) to the mean colour inside each part: (B, P) int32."""
    means = part_means(images, part_masks)
    distances = jnp.sum(jnp.square(means[:, :, None, :] - palette[None, None]), axis=-1)
    return jnp.argmin(distances, axis=-1).astype(jnp.int32)


def part_colour_accuracy(
    images: jax.Array,
    part_masks: jax.Array,
    target_colours: jax.Array,
    palette: jax.Array,
    parts: jax.Array | None = None,
) -> jax.Array:
    """Per image: the fraction of the visible parts (`parts`-selected, (B, P) bool, if given)
    whose nearest-palette mean colour is the target colour; NaN for an image with none."""
    counted = visible_parts(part_masks)
    if parts is not None:
        counted = counted & parts
    correct = (part_colours(images, part_masks, palette) == target_colours) & counted
    count = jnp.sum(counted, axis=1)
    return jnp.where(count > 0, jnp.sum(correct, axis=1) / jnp.maximum(count, 1), jnp.nan)


def part_attention_lift(
    attention: jax.Array, part_masks: jax.Array, token_parts: jax.Array
) -> jax.Array:
    """Per image: for each caption token that names or colours a visible part (`token_parts`
    (B, T), the part's index, -1 for other tokens), the mean attention G's regions inside the part
    give the token over the mean the other regions give it (each region weighted by the share of
    it the part covers), averaged over those tokens; NaN for an image with none. 1: the attention
    ignores where the part is. `attention` (B, h, w, T) is over words per region; `part_masks`
    (B, S, S, P) with S a multiple of h and w."""
    batch, height, width, length = attention.shape
    side, num_parts = part_masks.shape[1], part_masks.shape[-1]
    cover = part_masks.reshape(batch, height, side // height, width, side // width, num_parts)
    cover = jnp.mean(cover, axis=(2, 4)).reshape(batch, height * width, num_parts)
    token_cover = jnp.einsum("brp,btp->brt", cover, jax.nn.one_hot(token_parts, num_parts))
    weights = attention.reshape(batch, height * width, length)
    inside = jnp.sum(token_cover * weights, axis=1) / jnp.maximum(jnp.sum(token_cover, axis=1), EPS)
    outside_cover = 1.0 - token_cover
    outside = jnp.sum(outside_cover * weights, axis=1) / jnp.maximum(
        jnp.sum(outside_cover, axis=1), EPS
    )
    counted = (token_parts >= 0) & (jnp.sum(token_cover, axis=1) > 0)
    lift = jnp.where(counted, inside / jnp.maximum(outside, EPS), 0.0)
    count = jnp.sum(counted, axis=1)
    return jnp.where(count > 0, jnp.sum(lift, axis=1) / jnp.maximum(count, 1), jnp.nan)


def valid_mean(values: np.ndarray, valid: np.ndarray) -> float:
    """Mean over the valid examples, skipping NaN (an image without the measured thing)."""
    selected = np.asarray(values, np.float64)[np.asarray(valid, bool)]
    selected = selected[~np.isnan(selected)]
    return float(np.mean(selected)) if selected.size else float("nan")


def r_precision(
    image_codes: np.ndarray,
    sentences: np.ndarray,
    captions: np.ndarray,
    pool_sentences: np.ndarray,
    pool_captions: np.ndarray,
    *,
    seed: int,
    repeats: int = 10,
    candidates: int = R_PRECISION_CANDIDATES,
) -> tuple[float, float, int]:
    """Top-1 R-precision of image i among the caption it was made with and random others (§6).

    Row i of `sentences` / `captions` (word ids) is the caption image i was edited with, its
    ground truth; row j of the pool is a caption of image j of the split. Image i's distractors
    are drawn without replacement from the pool rows j != i whose ids differ from its own caption
    (an identical caption could not be told apart); each of
    `repeats` draws uses numpy's generator seeded with (seed, repeat). A hit needs its own
    caption's cosine to beat every distractor's. Returns (mean, population std over the repeats,
    candidates used): fewer than `candidates` when the split is too small.
    """
    codes = np.asarray(normalize(jnp.asarray(image_codes)), np.float64)
    true_scores = np.sum(codes * np.asarray(normalize(jnp.asarray(sentences))), axis=1)
    pool_scores = codes @ np.asarray(normalize(jnp.asarray(pool_sentences)), np.float64).T
    count = len(codes)
    allowed = ~np.all(captions[:, None, :] == pool_captions[None, :, :], axis=-1)
    allowed &= np.arange(count)[:, None] != np.arange(len(pool_captions))[None, :]
    distractors = min(candidates - 1, int(allowed.sum(axis=1).min()))
    if distractors < 1:
        raise ValueError("R-precision needs at least one distractor caption per image")
    scores = []
    for repeat in range(repeats):
        keys = np.random.default_rng((seed, repeat)).random(allowed.shape)
        keys[~allowed] = np.inf
        chosen = np.argpartition(keys, distractors - 1, axis=1)[:, :distractors]
        best = np.take_along_axis(pool_scores, chosen, axis=1).max(axis=1)
        scores.append(np.mean(true_scores > best))
    return float(np.mean(scores)), float(np.std(scores)), distractors + 1
