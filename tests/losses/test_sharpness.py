"""Sharpness maps, 2-means split and NSL against scipy, scikit-learn, torch and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage
from sklearn.cluster import KMeans

from jaxmani.losses import sharpness

LAPLACE = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float64)
jit_split = jax.jit(sharpness.two_means_split, static_argnames="iterations")
jit_nsl = jax.jit(sharpness.naive_sharpness_loss, static_argnames=("seed_form", "log_clamp"))
jit_sharpness_map = jax.jit(sharpness.sharpness_map)
jit_sharp_region = jax.jit(sharpness.sharp_region)


def _abs_laplacian(images: np.ndarray, mode: str) -> np.ndarray:
    """scipy |Laplacian| of the channel mean, (B,H,W,1) float64."""
    grey = images.astype(np.float64).mean(axis=-1)
    return np.stack([np.abs(ndimage.convolve(g, LAPLACE, mode=mode, cval=0.0)) for g in grey])[
        ..., None
    ]


def _smooth_and_sharp(seed: int, batch: int = 4, size: int = 32) -> np.ndarray:
    """Smooth random images in [-1, 1] with a textured (sharp) square at a random place."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(batch):
        base = ndimage.gaussian_filter(rng.normal(size=(size, size, 3)), sigma=(3, 3, 0))
        base = 0.6 * base / np.abs(base).max()
        texture = np.zeros((size, size, 3))
        y, x = rng.integers(0, size // 2, 2)
        texture[y : y + size // 2, x : x + size // 2] = rng.normal(size=(size // 2, size // 2, 3))
        images.append(np.clip(base + 0.3 * texture, -1.0, 1.0))
    return np.stack(images).astype(np.float32)


def _sharp_labels(kmeans: KMeans) -> np.ndarray:
    """1 for the points of the cluster with the larger centre."""
    return (kmeans.labels_ == np.argmax(kmeans.cluster_centers_[:, 0])).astype(np.float32)


def test_sharpness_map_is_abs_laplacian_with_replicate_padding():
    images = _smooth_and_sharp(0, batch=2, size=12)
    result = jit_sharpness_map(jnp.asarray(images))
    assert result.shape == (2, 12, 12, 1)
    np.testing.assert_allclose(result, _abs_laplacian(images, "nearest"), rtol=1e-5, atol=1e-6)


def test_two_means_split_iterates_the_threshold_by_hand():
    # mean 4.375 -> {5,6,20} sharp; t = 5.57 -> {6,20}; t = 7.25 -> {20}; t = 11.07 stays
    values = jnp.array([0.0, 0.0, 0.0, 0.0, 4.0, 5.0, 6.0, 20.0]).reshape(1, 2, 4, 1)
    expected = {0: [0, 0, 0, 0, 0, 1, 1, 1], 1: [0, 0, 0, 0, 0, 0, 1, 1], 2: [0] * 7 + [1]}
    for iterations, labels in expected.items():
        np.testing.assert_array_equal(jit_split(values, iterations=iterations).ravel(), labels)
    np.testing.assert_array_equal(jit_split(values).ravel(), expected[2])


def test_two_means_split_equals_kmeans_on_two_clusters():
    rng = np.random.default_rng(1)
    values = np.empty((3, 16, 16, 1), np.float32)
    for b, share in enumerate((0.1, 0.5, 0.8)):
        sharp = rng.uniform(size=(16, 16)) < share
        low, high = rng.normal(0.1, 0.03, (16, 16)), rng.normal(1.0 + b, 0.2, (16, 16))
        values[b, ..., 0] = np.where(sharp, high, low)
    labels = np.asarray(jit_split(jnp.asarray(values)))
    for b in range(3):
        kmeans = KMeans(n_clusters=2, n_init=10, random_state=0).fit(values[b].reshape(-1, 1))
        np.testing.assert_array_equal(labels[b].ravel(), _sharp_labels(kmeans))


def test_two_means_split_equals_lloyd_kmeans_on_laplacian_maps():
    # Lloyd's 2-means in 1-D is exactly iterative thresholding; started from the means of the split
    # at the image mean, scikit-learn's KMeans converges to the very same labels (asserted exactly).
    # k-means++ restarts may settle in another local optimum: at most 1 % of pixels differ there.
    maps = np.asarray(jit_sharpness_map(jnp.asarray(_smooth_and_sharp(2, batch=4))))
    labels = np.asarray(jit_split(jnp.asarray(maps)))
    for b in range(maps.shape[0]):
        flat = maps[b].reshape(-1, 1).astype(np.float64)
        start = flat.mean()
        init = np.array([[flat[flat <= start].mean()], [flat[flat > start].mean()]])
        lloyd = KMeans(2, init=init, n_init=1, tol=0.0, max_iter=100, algorithm="lloyd").fit(flat)
        assert lloyd.n_iter_ <= 20
        np.testing.assert_array_equal(labels[b].ravel(), _sharp_labels(lloyd))
        restarts = KMeans(2, n_init=4, tol=0.0, random_state=0).fit(flat)
        assert np.mean(labels[b].ravel() != _sharp_labels(restarts)) <= 0.01
        assert 0 < labels[b].sum() < flat.size


def test_two_means_split_handles_empty_clusters():
    constant = jnp.full((2, 4, 4, 1), 0.3)
    np.testing.assert_array_equal(jit_split(constant), 0.0)
    outlier = jnp.zeros((1, 4, 4, 1)).at[0, 1, 2, 0].set(5.0)
    np.testing.assert_array_equal(jit_split(outlier), outlier / 5.0)


def test_sharp_region_is_split_of_real_sharpness_without_gradient():
    real = jnp.asarray(_smooth_and_sharp(3, batch=2, size=16))
    region = jit_sharp_region(real)
    np.testing.assert_array_equal(region, jit_split(jit_sharpness_map(real)))
    grad = jax.jit(jax.grad(lambda x: jnp.sum(sharpness.sharp_region(x) * x)))(real)
    np.testing.assert_array_equal(grad, region * np.ones_like(real))


def _clamped_bce(prob: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-element PyTorch BCELoss in float64."""
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(prob), -100.0)
        log_q = np.maximum(np.log(1.0 - prob), -100.0)
    return -(target * log_p + (1.0 - target) * log_q)


@pytest.mark.parametrize("gamma", [0.1, 1.0])
def test_nsl_matches_scipy_oracle(gamma):
    fake = _smooth_and_sharp(4, batch=2, size=16)
    label = np.asarray(jit_sharp_region(jnp.asarray(_smooth_and_sharp(5, batch=2, size=16))))
    prob = np.tanh(gamma * _abs_laplacian(fake, "nearest"))
    bce = _clamped_bce(prob, label)
    paper = jit_nsl(jnp.asarray(fake), jnp.asarray(label), gamma)
    seed = jit_nsl(jnp.asarray(fake), jnp.asarray(label), gamma, seed_form=True)
    np.testing.assert_allclose(paper, bce.mean(), rtol=1e-5)
    np.testing.assert_allclose(seed, bce[label > 0].mean(), rtol=1e-5)
    exact = jit_nsl(jnp.asarray(fake), jnp.asarray(label), gamma, log_clamp=False)
    np.testing.assert_allclose(exact, bce.mean(), rtol=1e-5)


def test_nsl_matches_torch_transcription():
    torch = pytest.importorskip("torch")
    fake = _smooth_and_sharp(6, batch=2, size=16)
    real = _smooth_and_sharp(7, batch=2, size=16)
    label = np.array(jit_sharp_region(jnp.asarray(real)))
    grey = torch.from_numpy(fake).permute(0, 3, 1, 2).mean(dim=1, keepdim=True)
    padded = torch.nn.functional.pad(grey, (1, 1, 1, 1), mode="replicate")
    kernel = torch.tensor(LAPLACE, dtype=torch.float32)[None, None]
    sharp = torch.nn.functional.conv2d(padded, kernel).abs()
    prob = torch.tanh(0.1 * sharp)
    target = torch.from_numpy(label).permute(0, 3, 1, 2)
    paper = torch.nn.functional.binary_cross_entropy(prob, target)
    ones = torch.ones_like(prob)
    per_pixel = torch.nn.functional.binary_cross_entropy(prob, ones, reduction="none")
    seed = (per_pixel * target).sum() / target.sum()
    ours = [jit_nsl(jnp.asarray(fake), jnp.asarray(label), 0.1, seed_form=s) for s in (0, 1)]
    np.testing.assert_allclose(ours, [paper.item(), seed.item()], rtol=1e-5)


def test_nsl_closed_form_on_a_delta():
    # grey delta v: |Lap| = 4v at the centre, v at its 4 neighbours, 0 elsewhere (25 pixels)
    v, gamma = 0.5, 0.7
    fake = jnp.zeros((1, 5, 5, 3)).at[0, 2, 2].set(v)
    label = jnp.zeros((1, 5, 5, 1)).at[0, 2, 2].set(1.0)
    centre, side = np.log(np.tanh(4 * gamma * v)), np.log(1 - np.tanh(gamma * v))
    np.testing.assert_allclose(jit_nsl(fake, label, gamma), -(centre + 4 * side) / 25, rtol=1e-5)
    np.testing.assert_allclose(jit_nsl(fake, label, gamma, seed_form=True), -centre, rtol=1e-5)
    np.testing.assert_array_equal(jit_nsl(fake, 0 * label, gamma, seed_form=True), 0.0)


def test_nsl_log_clamp_only_matters_when_saturated():
    flat = jnp.zeros((1, 4, 4, 3))
    ones = jnp.ones((1, 4, 4, 1))
    assert float(jit_nsl(flat, ones, 1.0)) == pytest.approx(100.0)
    assert float(jit_nsl(flat, ones, 1.0, log_clamp=False)) == np.inf
    delta = jnp.zeros((1, 3, 3, 3)).at[0, 1, 1].set(1.0)
    zeros = jnp.zeros((1, 3, 3, 1))
    # |Lap| = 4 at the centre, 1 at the 4 sides: with gamma 2.5, 1 - tanh(10) rounds to 0 in
    # float32 (clamped log -100) while the exact -log(1 - tanh(10)) = softplus(20) - log 2
    clamped = jit_nsl(delta, zeros, 2.5)
    exact = jit_nsl(delta, zeros, 2.5, log_clamp=False)
    side = -np.log1p(-np.tanh(2.5))
    np.testing.assert_allclose(clamped, (100.0 + 4 * side) / 9, rtol=1e-5)
    np.testing.assert_allclose(exact, (20.0 - np.log(2.0) + 4 * side) / 9, rtol=1e-5)


@pytest.mark.parametrize("log_clamp", [True, False])
@pytest.mark.parametrize("seed_form", [False, True])
def test_nsl_gradients_are_finite(log_clamp, seed_form):
    fake = jnp.asarray(_smooth_and_sharp(8, batch=2, size=8)).at[0, :4, :4].set(0.2)
    label = jnp.ones((2, 8, 8, 1)).at[1, :, :4].set(0.0)

    def loss(x):
        return sharpness.naive_sharpness_loss(x, label, 0.1, seed_form, log_clamp)

    grad = jax.jit(jax.grad(loss))(fake)
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0


def test_sharp_channel_matches_seed_sharp_detector_oracle():
    # the third image is flat mid-grey: only the 0.5/255 floor and the box mean's zero padding make
    # its inside "sharp" (without the floor it would be all 0)
    flat = np.zeros((1, 16, 16, 3), np.float32)
    images = np.concatenate([_smooth_and_sharp(9, batch=2, size=16), flat])
    response = np.maximum(_abs_laplacian(images, "constant"), 0.5 / 255.0)
    smoothed = np.stack(
        [ndimage.uniform_filter(r[..., 0], size=5, mode="constant", cval=0.0) for r in response]
    )[..., None]
    expected = (smoothed > smoothed.mean(axis=(1, 2), keepdims=True)).astype(np.float32)
    result = jax.jit(sharpness.sharp_channel)(jnp.asarray(images))
    assert result.shape == (3, 16, 16, 1) and result.dtype == jnp.float32
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(result[2, 2:-2, 2:-2], 1.0)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(sharpness.sharp_channel(x) * x)))(images)
    np.testing.assert_array_equal(grad, np.broadcast_to(expected, images.shape))
