"""FID: Frechet distance closed forms, statistics over padded batches, inputs, weights errors."""

import numpy as np
import pytest
from flax import linen as nn
from scipy import linalg, stats

from configs import default
from jaxmani import params_io
from jaxmani.errors import UserError
from jaxmani.evaluate import fid, inception_runs
from jaxmani.models import registry


def gaussian_features(rng, n, d, scale=1.0, shift=0.0):
    """n rows of d correlated Gaussian features."""
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mixing * scale + shift


def rotation(rng, d):
    """A random orthogonal d x d matrix."""
    return stats.special_ortho_group.rvs(d, random_state=rng)


def test_identical_sets_give_zero():
    features = gaussian_features(np.random.default_rng(0), 200, 32)
    mu, sigma = fid.statistics(features)
    assert abs(fid.frechet_distance(mu, sigma, mu, sigma)) < 1e-6 * np.trace(sigma)


def test_equal_covariances_give_squared_mean_distance():
    d = 256  # pytorch-fid's own test (at d = 2048): means 0 and 1, identity covariances.
    value = fid.frechet_distance(np.zeros(d), np.eye(d), np.ones(d), np.eye(d))
    assert value == pytest.approx(d, rel=1e-12)


def test_commuting_covariances_closed_form():
    rng = np.random.default_rng(1)
    d = 64
    q = rotation(rng, d)
    a1, a2 = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    value = fid.frechet_distance(mu1, q @ np.diag(a1) @ q.T, mu2, q @ np.diag(a2) @ q.T)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a1) - np.sqrt(a2)) ** 2)
    assert value == pytest.approx(expected, abs=1e-9)


def test_one_dimensional_closed_form():
    m1, s1, m2, s2 = 0.3, 2.0, -1.2, 0.5
    value = fid.frechet_distance(
        np.array([m1]), np.array([[s1**2]]), np.array([m2]), np.array([[s2**2]])
    )
    assert value == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-12)


def test_same_rotation_of_both_sets_keeps_the_value():
    rng = np.random.default_rng(2)
    a = gaussian_features(rng, 300, 16)
    b = gaussian_features(rng, 300, 16, scale=1.3, shift=0.2)
    q = rotation(rng, 16)
    assert fid.fid_from_features(a @ q, b @ q) == pytest.approx(
        fid.fid_from_features(a, b), rel=1e-9
    )


def test_rank_deficient_covariances_match_eigenvalue_route():
    # N < d: scipy's sqrtm returns a complex matrix whose real part pytorch-fid keeps.
    rng = np.random.default_rng(3)
    a = gaussian_features(rng, 30, 64)
    b = gaussian_features(rng, 30, 64, scale=0.8, shift=0.1)
    (mu1, s1), (mu2, s2) = fid.statistics(a), fid.statistics(b)
    eigenvalues = np.linalg.eigvals(s1 @ s2).astype(complex)
    trace_sqrt = np.sqrt(eigenvalues).real.sum()
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)


def test_non_finite_sqrtm_adds_eps_to_both_covariances(monkeypatch):
    rng = np.random.default_rng(4)
    s1 = np.cov(gaussian_features(rng, 40, 4), rowvar=False)
    s2 = np.cov(gaussian_features(rng, 40, 4), rowvar=False)
    calls = []
    real_sqrtm = linalg.sqrtm

    def stub(matrix):
        calls.append(matrix)
        return np.full_like(matrix, np.nan) if len(calls) == 1 else real_sqrtm(matrix)

    monkeypatch.setattr(fid.linalg, "sqrtm", stub)
    value = fid.frechet_distance(np.zeros(4), s1, np.zeros(4), s2)
    offset = fid.EPS * np.eye(4)
    np.testing.assert_allclose(calls[0], s1 @ s2, rtol=1e-15)
    np.testing.assert_allclose(calls[1], (s1 + offset) @ (s2 + offset), rtol=1e-15)
    expected = np.trace(s1) + np.trace(s2) - 2 * np.trace(real_sqrtm((s1 + offset) @ (s2 + offset)))
    assert value == pytest.approx(expected, rel=1e-12)


def test_finite_sqrtm_adds_no_eps(monkeypatch):
    calls = []
    monkeypatch.setattr(fid.linalg, "sqrtm", lambda m: calls.append(m) or np.eye(len(m)))
    assert fid.frechet_distance(np.zeros(3), 2 * np.eye(3), np.zeros(3), 3 * np.eye(3)) == 9.0
    assert len(calls) == 1


@pytest.mark.parametrize(("imaginary", "fails"), [(2e-3, True), (5e-4, False)])
def test_complex_sqrtm_diagonal_tolerance(monkeypatch, imaginary, fails):
    monkeypatch.setattr(fid.linalg, "sqrtm", lambda m: np.eye(len(m)) * (1 + imaginary * 1j))
    args = (np.zeros(3), np.eye(3), np.zeros(3), np.eye(3))
    if fails:
        with pytest.raises(UserError, match="imaginary"):
            fid.frechet_distance(*args)
    else:
        assert fid.frechet_distance(*args) == pytest.approx(0.0, abs=1e-12)


def test_statistics_need_two_images():
    with pytest.raises(UserError, match="at least 2 images"):
        fid.statistics(np.ones((1, 8)))


def padded_batches(images, batch_size):
    """The evaluation pipeline's batches: the last one padded with junk rows marked invalid."""
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        valid = np.ones(batch_size, bool)
        valid[len(chunk) :] = False
        junk = np.full((batch_size - len(chunk), *images.shape[1:]), 255, images.dtype)
        yield np.concatenate([chunk, junk]), valid


@pytest.mark.parametrize("batch_size", [1, 7, 50])
def test_padded_rows_never_enter_the_statistics(batch_size):
    images = np.random.default_rng(5).integers(0, 256, (23, 5, 6, 3), dtype=np.uint8)
    rows = inception_runs.collect_rows(
        lambda x: x.reshape(len(x), -1)[:, :20].astype(np.float32) / 255,
        padded_batches(images, batch_size),
        -(-23 // batch_size),
        "test",
    )
    expected = images.reshape(23, -1)[:, :20] / 255
    np.testing.assert_allclose(rows, expected, rtol=1e-6)
    mu, sigma = fid.statistics(rows)
    np.testing.assert_allclose(mu, rows.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(rows.T, ddof=1), rtol=1e-12)


def test_empty_batches_are_a_user_error():
    with pytest.raises(UserError, match="empty"):
        inception_runs.collect_rows(lambda x: x, iter(()), 0, "FID features")


def numpy_resize(image, size):
    """Half-pixel bilinear resize of one HWC image (PyTorch align_corners=False, no antialias)."""

    def weights(n_in):
        src = np.maximum((np.arange(size) + 0.5) * n_in / size - 0.5, 0)
        low = np.floor(src).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        matrix = np.zeros((size, n_in))
        np.add.at(matrix, (np.arange(size), low), 1 - (src - low))
        np.add.at(matrix, (np.arange(size), high), src - low)
        return matrix

    rows, cols = weights(image.shape[0]), weights(image.shape[1])
    return np.einsum("ih,hwc,jw->ijc", rows, image.astype(np.float64), cols, optimize=True)


@pytest.mark.parametrize("shape", [(256, 256), (320, 301)])
def test_pytorch_fid_input_is_resized_unit_range_times_two_minus_one(shape):
    image = np.random.default_rng(6).integers(0, 256, (*shape, 3), dtype=np.uint8)
    ours = np.asarray(fid.network_input(image[None], "pytorch_fid"))[0]
    # float32 source coordinates (PyTorch's too) put both up to 1e-4 from the float64 oracle;
    # an antialiased resize of the 320x301 image would be 0.1 away.
    np.testing.assert_allclose(ours, 2 * numpy_resize(image / 255, 299) - 1, atol=1e-4)


def test_seed_train_input_is_normalised_twice():
    generator_range = np.linspace(-1, 1, 2 * 8 * 8 * 3, dtype=np.float32).reshape(2, 8, 8, 3)
    ours = np.asarray(fid.network_input(generator_range, "seed_train"))
    assert ours.min() == pytest.approx(-3.0) and ours.max() == pytest.approx(1.0)
    pixels = np.array([0, 255], np.uint8).reshape(1, 1, 2, 1).repeat(3, axis=-1)
    seen = np.asarray(fid.network_input(pixels, "seed_train"))
    np.testing.assert_allclose(seen[..., 0, 0], -3.0)
    np.testing.assert_allclose(seen[..., -1, 0], 1.0)
    unit = np.asarray(fid.network_input(pixels, "pytorch_fid"))
    np.testing.assert_allclose((seen + 1) / 2, unit, atol=1e-6)


def test_unknown_protocol_is_a_user_error():
    with pytest.raises(UserError, match="pytorch_fid, seed_train"):
        fid.network_input(np.zeros((1, 4, 4, 3), np.uint8), "clean")


class MeanPool(nn.Module):
    """A stand-in for the FID Inception: 'pool' = a Dense of the per-channel mean."""

    @nn.compact
    def __call__(self, x):
        return {"pool": nn.Dense(4, name="fc")(x.mean(axis=(1, 2)))}


def test_compute_features_runs_the_protocol_input_through_the_network(monkeypatch):
    monkeypatch.setattr(registry, "create_network", lambda name, config: MeanPool())
    kernel = np.random.default_rng(7).normal(size=(3, 4)).astype(np.float32)
    variables = {"params": {"fc": {"kernel": kernel, "bias": np.zeros(4, np.float32)}}}
    images = np.random.default_rng(8).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    config = default.get_config()
    for protocol in fid.PROTOCOLS:
        features = fid.compute_features(variables, padded_batches(images, 2), 3, protocol, config)
        inputs = np.asarray(fid.network_input(images, protocol), np.float64)
        np.testing.assert_allclose(features, inputs.mean(axis=(1, 2)) @ kernel, atol=1e-5)


def test_missing_weights_name_the_field_and_the_convert_command(tmp_path):
    config = default.get_config()
    with pytest.raises(UserError) as unset:
        fid.load_weights("", config)
    missing = str(tmp_path / "fid.msgpack")
    with pytest.raises(UserError) as absent:
        fid.load_weights(missing, config)
    for error in (unset, absent):
        message = str(error.value)
        assert fid.WEIGHTS_FIELD in message
        assert "jaxmani convert --network=fid_inception --src=pt_inception-2015-12-05" in message
    assert missing in str(absent.value)


def test_weights_of_another_network_are_refused(tmp_path):
    path = str(tmp_path / "vgg.msgpack")
    params_io.save_variables(path, "vgg", {"params": {}})
    with pytest.raises(UserError, match="not 'fid_inception'"):
        fid.load_weights(path, default.get_config())
