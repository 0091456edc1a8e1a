"""MAE-mask loss and the background-mask sources."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmani.losses.mask import MASK_SOURCES, background_mask, mae_mask_loss

jit_background_mask = jax.jit(background_mask, static_argnames="source")


def _swapped_pair() -> tuple[jax.Array, jax.Array]:
    """A real image in [-1, 1] and a fake with two 6x6 patches swapped: equal histograms."""
    ramp = np.linspace(-0.7, -0.5, 32, dtype=np.float32)
    real = np.broadcast_to((ramp[:, None] + ramp[None, :] / 10)[None, :, :, None], (2, 32, 32, 3))
    real = real.copy()
    real[:, 4:10, 4:10] = 0.4
    real[:, 22:28, 22:28] = -0.5
    fake = real.copy()
    fake[:, 4:10, 4:10], fake[:, 22:28, 22:28] = real[:, 22:28, 22:28], real[:, 4:10, 4:10]
    return jnp.asarray(real), jnp.asarray(fake)


def test_mae_mask_loss_is_mean_over_all_elements():
    real = jnp.ones((1, 2, 2, 3))
    fake = -jnp.ones((1, 2, 2, 3))
    mask = jnp.array([1.0, 0.0, 0.0, 1.0]).reshape(1, 2, 2, 1)
    # |diff| = 2 on 2 of 4 pixels (6 of 12 elements): mean 1, not normalised by the mask area
    assert float(jax.jit(mae_mask_loss)(real, fake, mask)) == pytest.approx(1.0)
    assert float(mae_mask_loss(real, fake, 0.5 * mask)) == pytest.approx(0.5)


def test_mae_mask_loss_matches_numpy_and_gradient():
    rng = np.random.default_rng(0)
    real, fake = rng.uniform(-1, 1, (2, 2, 5, 4, 3)).astype(np.float32)
    mask = rng.uniform(0, 1, (2, 5, 4, 1)).astype(np.float32)
    expected = np.mean(np.abs(real - fake) * mask)
    np.testing.assert_allclose(mae_mask_loss(real, fake, mask), expected, rtol=1e-6)
    grad = jax.grad(mae_mask_loss, argnums=1)(real, fake, mask)
    np.testing.assert_allclose(grad, np.sign(fake - real) * mask / real.size, rtol=1e-6)


@pytest.mark.parametrize("source", ["fcn", "gt"])
def test_dataset_sources_return_the_batch_mask_without_gradient(source):
    real, fake = _swapped_pair()
    dataset_mask = jnp.asarray(np.random.default_rng(1).uniform(0, 1, (2, 32, 32, 1)), jnp.float32)
    result = jit_background_mask(source, real, fake, dataset_mask, 32.5)
    np.testing.assert_array_equal(result, dataset_mask)
    grad = jax.grad(lambda m: jnp.sum(background_mask(source, real, fake, m, 32.5)))(dataset_mask)
    np.testing.assert_array_equal(grad, 0.0)


def test_dataset_sources_need_a_mask_of_the_image_shape():
    real, fake = _swapped_pair()
    with pytest.raises(ValueError, match="None"):
        background_mask("fcn", real, fake, None, 32.5)
    with pytest.raises(ValueError, match="shape"):
        background_mask("gt", real, fake, jnp.ones((2, 32, 32)), 32.5)


@pytest.mark.parametrize("source", ["hm", "hm_adaptive"])
def test_hm_sources_fire_on_an_edit_of_minus_one_to_one_images(source):
    # the swap changes the patches by 0.9 in [-1, 1] = 115 grey levels: above 32.5 and below the
    # 160 suppression, so the mask only fires if the images are compared on the 0..255 scale once
    real, fake = _swapped_pair()
    mask = np.asarray(jit_background_mask(source, real, fake, None, 32.5))
    assert mask.shape == (2, 32, 32, 1)
    np.testing.assert_array_equal(mask[:, 5:9, 5:9], 0.0)
    np.testing.assert_array_equal(mask[:, 23:27, 23:27], 0.0)
    np.testing.assert_array_equal(mask[:, :6, 20:], 1.0)
    np.testing.assert_array_equal(mask[:, 20:, :6], 1.0)


def test_hm_threshold_is_on_the_255_scale_and_unchanged_images_are_background():
    real, fake = _swapped_pair()
    np.testing.assert_array_equal(jit_background_mask("hm", real, fake, None, 150.0), 1.0)
    np.testing.assert_array_equal(jit_background_mask("hm", real, real, None, 32.5), 1.0)


def test_hm_mask_carries_no_gradient():
    real, fake = _swapped_pair()
    mask = jit_background_mask("hm", real, fake, None, 32.5)
    grad = jax.jit(jax.grad(lambda f: jnp.sum(background_mask("hm", real, f, None, 32.5) * f)))(
        fake
    )
    np.testing.assert_array_equal(grad, jnp.broadcast_to(mask, fake.shape))


def test_unknown_source_names_the_allowed_ones():
    assert MASK_SOURCES == ("fcn", "gt", "hm", "hm_adaptive")
    real, fake = _swapped_pair()
    with pytest.raises(ValueError, match="hm_adaptive"):
        background_mask("otsu", real, fake, None, 32.5)
