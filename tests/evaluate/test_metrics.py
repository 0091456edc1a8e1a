"""The evaluation metrics against closed forms and numpy / scipy / scikit-image oracles."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage
from skimage import metrics as skmetrics

from jaxmani.data import toy_birds
from jaxmani.evaluate import metrics

RNG = np.random.default_rng(0)


def pixels(*shape):
    return RNG.integers(0, 256, shape).astype(np.float32)


def test_mask_score_closed_forms():
    original, edited = np.zeros((2, 16, 16, 3), np.float32), np.full((2, 16, 16, 3), 200.0)
    full, empty = np.ones((2, 16, 16, 1)), np.zeros((2, 16, 16, 1))
    np.testing.assert_allclose(metrics.mask_score(original, edited, full), [40000.0] * 2)
    np.testing.assert_allclose(metrics.mask_score(original, edited, empty), [0.0] * 2)
    quarter = empty.copy()
    quarter[:, :8, :8] = 1.0
    np.testing.assert_allclose(metrics.mask_score(original, edited, quarter), [10000.0] * 2)
    a, b = pixels(3, 8, 8, 3), pixels(3, 8, 8, 3)
    expected = np.mean((a - b) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(metrics.mask_score(a, b, np.ones((3, 8, 8, 1))), expected, 1e-5)


def test_sharpness_closed_forms_and_scipy():
    constant = np.full((1, 256, 256, 3), 255.0, np.float32)
    np.testing.assert_allclose(metrics.sharpness_score(constant), [3.984375], rtol=1e-6)
    checker = (np.indices((256, 256)).sum(0) % 2 * 200.0).astype(np.float32)
    board = np.repeat(checker[None, :, :, None], 3, axis=-1)
    np.testing.assert_allclose(metrics.sharpness_score(board), [798.4375], rtol=1e-6)
    red = np.zeros((1, 32, 32, 3), np.float32)
    red[..., 0] = 90.0
    np.testing.assert_allclose(
        metrics.sharpness_score(red), metrics.sharpness_score(np.full_like(red, 30.0)), 1e-6
    )
    images = pixels(2, 20, 24, 3)
    kernel = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float64)
    oracle = [
        np.mean(np.abs(ndimage.convolve(im.mean(-1).astype(np.float64), kernel, mode="constant")))
        for im in images
    ]
    np.testing.assert_allclose(metrics.sharpness_score(images), oracle, rtol=1e-5)
    np.testing.assert_allclose(
        metrics.sharpness_score(images, scale=1.0), np.asarray(oracle) / 255, rtol=1e-5
    )


def test_manipulative_precision_closed_forms():
    image = pixels(2, 8, 8, 3) * 0.5
    code = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    sentence = np.array([[2.0, 1.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
    similarity = np.array([4.0 / 5.0, 0.0])
    np.testing.assert_allclose(
        metrics.manipulative_precision(image, image, code, sentence), similarity, atol=1e-6
    )
    shifted = image + 0.1 * 255
    np.testing.assert_allclose(
        metrics.manipulative_precision(image, shifted, code, sentence), 0.9 * similarity, 1e-5
    )


def r_precision(codes, sentences, captions, pool, pool_captions, **kw):
    return metrics.r_precision(codes, sentences, captions, pool, pool_captions, seed=3, **kw)


def test_r_precision_perfect_random_and_seeded():
    count = 300
    codes = RNG.normal(size=(count, 16)).astype(np.float32)
    captions = np.arange(count)[:, None].repeat(4, 1)
    mean, std, candidates = r_precision(codes, codes, captions, codes[::-1], captions[::-1])
    assert candidates == 100
    assert (mean, std) == (1.0, 0.0)
    random_sentences = RNG.normal(size=(count, 16)).astype(np.float32)
    pool = RNG.normal(size=(count, 16)).astype(np.float32)
    mean, _, _ = r_precision(codes, random_sentences, captions, pool, captions)
    assert abs(mean - 0.01) < 4 * np.sqrt(0.01 * 0.99 / (count * 10)) + 0.01
    assert r_precision(codes, random_sentences, captions, pool, captions) == r_precision(
        codes, random_sentences, captions, pool, captions
    )


def test_r_precision_excludes_the_image_itself_and_identical_captions():
    codes = np.eye(4, dtype=np.float32)
    captions = np.array([[1, 2], [3, 4], [5, 6], [7, 8]])
    # Image 0 was edited with image 1's caption (identical ids): that pool row is no distractor.
    pool_captions = np.array([[9, 9], [1, 2], [5, 6], [7, 8]])
    sentences = codes * 0.5
    pool = np.eye(4, dtype=np.float32)
    pool[1] = codes[0]
    mean, std, candidates = r_precision(codes, sentences, captions, pool, pool_captions, repeats=3)
    assert candidates == 3  # rows 2 and 3 each exclude themselves and one identical caption
    assert (mean, std) == (1.0, 0.0)


def test_psnr_and_ssim_match_scikit_image():
    edited, target = pixels(2, 32, 32, 3), pixels(2, 32, 32, 3)
    target[1] = np.clip(edited[1] + RNG.normal(0, 10, edited[1].shape), 0, 255)
    psnr = metrics.edit_psnr(jnp.asarray(edited), jnp.asarray(target))
    ssim = metrics.edit_ssim(jnp.asarray(edited), jnp.asarray(target))
    for i in range(2):
        np.testing.assert_allclose(
            psnr[i], skmetrics.peak_signal_noise_ratio(target[i], edited[i], data_range=255), 1e-4
        )
        oracle = skmetrics.structural_similarity(
            target[i] / 255,
            edited[i] / 255,
            data_range=1.0,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        np.testing.assert_allclose(ssim[i], oracle, atol=2e-3)


def test_background_change_counts_only_the_background():
    original = np.zeros((1, 4, 4, 3), np.float32)
    edited = original.copy()
    edited[:, :2] = 12.0  # background half changed by 12
    edited[:, 2:] = 255.0  # bird half changed a lot
    mask = np.zeros((1, 4, 4, 1), np.float32)
    mask[:, :2] = 1.0
    np.testing.assert_allclose(metrics.background_change(original, edited, mask), [12.0])


def toy_example(index):
    example = toy_birds.generate_example(toy_birds.example_seed("test", index), 64)
    return {k: np.asarray(v)[None] for k, v in example.items() if not isinstance(v, list | str)}


def test_part_colour_accuracy_on_toy_ground_truth():
    palette = jnp.asarray(np.array(list(toy_birds.PALETTE.values()), np.float32))
    for index in range(8):
        ex = toy_example(index)
        masks, target = ex["part_masks"].astype(np.float32), ex["edit_attributes"]
        edited_parts = ex["edit_attributes"] != ex["attributes"]
        truth = ex["edit_image"].astype(np.float32)
        original = ex["image"].astype(np.float32)
        assert metrics.part_colour_accuracy(truth, masks, target, palette)[0] == 1.0
        assert metrics.part_colour_accuracy(original, masks, target, palette, edited_parts) == 0.0
    flat = np.zeros((1, 4, 4, 3), np.float32) + palette[2]
    no_parts = np.zeros((1, 4, 4, 7), np.float32)
    assert np.isnan(metrics.part_colour_accuracy(flat, no_parts, target, palette)[0])


def test_part_attention_lift_closed_forms():
    # A 2x2 attention grid over 4x4 images; part 0 covers the top-left cell, part 1 half of the
    # top-right cell, part 2 nothing.
    masks = np.zeros((1, 4, 4, 3), np.float32)
    masks[0, :2, :2, 0] = 1.0
    masks[0, :2, 2, 1] = 1.0
    attention = np.zeros((1, 2, 2, 4), np.float32)
    attention[0, :, :, 0] = [[0.6, 0.2], [0.2, 0.2]]  # token 0: part 0, 0.6 against 0.2 -> 3
    attention[0, :, :, 1] = [[0.1, 0.4], [0.3, 0.3]]  # token 1: part 1, 0.4 against 0.9/3.5
    attention[0, :, :, 2] = 0.25  # token 2: part 2, not visible: not counted
    attention[0, :, :, 3] = [[0.1, 0.2], [0.3, 0.3]]  # token 3: no part
    tokens = np.array([[0, 1, 2, -1]], np.int32)
    lift = float(metrics.part_attention_lift(attention, masks, tokens)[0])
    # Token 1: inside 0.5 * 0.4 / 0.5 = 0.4; outside (0.1 + 0.5 * 0.4 + 0.3 + 0.3) / 3.5.
    assert lift == pytest.approx((3.0 + 0.4 / (0.9 / 3.5)) / 2, rel=1e-6)
    uniform = np.full((1, 2, 2, 4), 0.25, np.float32)
    assert float(metrics.part_attention_lift(uniform, masks, tokens)[0]) == pytest.approx(1.0)
    no_parts = np.full((1, 4), -1, np.int32)
    assert np.isnan(metrics.part_attention_lift(attention, masks, no_parts)[0])


def test_valid_mean_skips_padding_and_nan():
    values = np.array([1.0, 3.0, np.nan, 100.0])
    assert metrics.valid_mean(values, np.array([True, True, True, False])) == 2.0
    assert np.isnan(metrics.valid_mean(values, np.zeros(4, bool)))


@pytest.mark.parametrize("scale", [255.0, 1.0])
def test_sharpness_scale_is_linear(scale):
    images = pixels(1, 8, 8, 3)
    np.testing.assert_allclose(
        metrics.sharpness_score(images, scale), metrics.sharpness_score(images) * scale / 255, 1e-6
    )
