"""toy_birds' paired-edit terms: closed forms on hand-made images."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmani.losses.paired_edit import edited_region_loss, paired_edit_loss, recoloured_pixels


def _pair() -> tuple[np.ndarray, np.ndarray]:
    """Two 4x4 real images and their edits: image 0 has 2 pixels recoloured (one in one channel
    only), image 1 none."""
    real = np.zeros((2, 4, 4, 3), np.float32)
    target = real.copy()
    target[0, 1, 1] = 0.5
    target[0, 2, 3, 1] = -0.5
    return real, target


def test_recoloured_pixels_mark_a_change_in_any_channel():
    real, target = _pair()
    region = np.asarray(recoloured_pixels(jnp.asarray(target), jnp.asarray(real)))
    assert region.shape == (2, 4, 4, 1)
    expected = np.zeros((2, 4, 4, 1), np.float32)
    expected[0, 1, 1] = expected[0, 2, 3] = 1.0
    np.testing.assert_array_equal(region, expected)


def test_paired_edit_loss_is_the_mean_over_all_elements():
    real, target = _pair()
    # |0 - target| sums to 3 * 0.5 + 0.5 = 2 over 2 * 4 * 4 * 3 = 96 elements.
    assert float(jax.jit(paired_edit_loss)(real, target)) == pytest.approx(2 / 96)


def test_edited_region_loss_averages_each_image_over_its_recoloured_pixels():
    real, target = _pair()
    edit = real.copy()
    edit[0, 0, 0] = 1.0  # An error outside the recoloured pixels does not count.
    edit[1] = 0.25  # Nor does any error on an image the edit leaves unchanged.
    # Image 0: error 2.0 over 2 pixels x 3 channels = 1/3; image 1: 0; batch mean 1/6.
    value = jax.jit(edited_region_loss)(edit, target, real)
    assert float(value) == pytest.approx(1 / 6)
    assert float(paired_edit_loss(edit, target)) != pytest.approx(1 / 6)


def test_edited_region_loss_pulls_only_the_recoloured_pixels_towards_the_edit():
    real, target = _pair()
    edit = real + 0.1
    grad = np.asarray(jax.grad(edited_region_loss)(jnp.asarray(edit), target, real))
    changed = np.zeros_like(grad, dtype=bool)
    changed[0, 1, 1] = changed[0, 2, 3] = True
    assert np.all(grad[~changed] == 0)
    # d/d edit of |edit - target| / (2 pixels * 3 channels) / 2 images = sign(edit - target) / 12.
    np.testing.assert_allclose(grad[changed], np.sign(edit - target)[changed] / 12)
