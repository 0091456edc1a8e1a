"""The Manipulator on a tiny trained workdir and on params files of random weights."""

import json
import pickle
import shutil

import jax
import ml_collections
import numpy as np
import pytest

from jaxmani import params_io
from jaxmani.edit import manipulator as manipulator_module
from jaxmani.edit.manipulator import Manipulator, window_box
from jaxmani.errors import UserError

TEXTS = ["a red bird with black wings", "a small blue bird", "this bird is yellow"]


def noise_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Seeded uint8 RGB noise."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_window_box_is_the_training_crop_centred():
    """S / int(S * 76 / 64) of the shorter side, centred (closed forms at S = 64 and 256)."""
    assert window_box(64, 64, 64) == (5, 5, 54)  # round(64 * 64 / 76) = 54.
    assert window_box(70, 50, 64) == (14, 4, 42)  # round(50 * 64 / 76) = 42.
    assert window_box(500, 375, 256) == (92, 29, 316)  # round(375 * 256 / 304) = 316.


def test_edits_keep_the_callers_sizes_and_pixels_outside_the_window(manipulator):
    """Two images of other sizes: outputs at their sizes, untouched outside the window."""
    pixels = [noise_image(50, 70, 1), noise_image(64, 64, 2)]
    result = manipulator.edit(pixels, TEXTS[:2], seed=0)
    size = manipulator.image_size
    assert result.model_images.shape == (2, size, size, 3)
    assert result.attention.shape == (2, size // 4, size // 4, manipulator.config.data.words_num)
    for image, edited, kept in zip(pixels, result.images, result.masks, strict=True):
        assert edited.shape == image.shape and edited.dtype == np.uint8
        assert kept.shape == image.shape[:2] and kept.dtype == np.float32
        left, top, side = window_box(image.shape[1], image.shape[0], size)
        outside = np.ones(image.shape[:2], bool)
        outside[top : top + side, left : left + side] = False
        np.testing.assert_array_equal(edited[outside], image[outside])
        assert np.all(kept[outside] == 1.0) and 0.0 <= kept.min() <= kept.max() <= 1.0
        assert not np.array_equal(edited, image)
    assert result.words[1] == ("a", "small", "blue", "bird")


def test_same_seed_same_edit_other_seed_other_edit(manipulator):
    """Deterministic for a seed; the seed's z changes the output."""
    image = noise_image(40, 48)
    first = manipulator.edit(image, TEXTS[0], seed=7)
    again = manipulator.edit(image, TEXTS[0], seed=7)
    other = manipulator.edit(image, TEXTS[0], seed=8)
    np.testing.assert_array_equal(first.model_images, again.model_images)
    np.testing.assert_array_equal(first.images[0], again.images[0])
    assert np.abs(first.model_images - other.model_images).max() > 1e-4


def test_one_image_with_k_captions_equals_k_single_edits(manipulator):
    """Each row of a one-image batch is the edit of that caption alone."""
    image = noise_image(60, 52, 3)
    batch = manipulator.edit(image, TEXTS, seed=1)
    for index, text in enumerate(TEXTS):
        single = manipulator.edit(image, text, seed=1)
        np.testing.assert_allclose(single.model_images[0], batch.model_images[index], atol=1e-5)
        np.testing.assert_allclose(single.attention[0], batch.attention[index], atol=1e-5)
        np.testing.assert_allclose(single.masks[0], batch.masks[index], atol=1e-5)


def test_compiles_once_per_shape(manipulator, monkeypatch):
    """Traces of the edit function: one per (images, captions) shape, none on repeats."""
    traces = []
    real = manipulator_module.edit_forward

    def counting(*args, **kwargs):
        traces.append(args[-5].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(manipulator_module, "edit_forward", counting)
    fresh = Manipulator(
        manipulator.config, manipulator.vocabulary, manipulator.g_variables, manipulator.frozen
    )
    image = noise_image(30, 40)
    for _ in range(2):
        fresh.edit(image, TEXTS[0])
        fresh.edit(noise_image(80, 30), TEXTS[1], seed=5)
        fresh.edit([image, image], TEXTS[:2])
    size = manipulator.image_size
    assert traces == [(1, size, size, 3), (2, size, size, 3)]
    assert sorted(fresh.compiled) == [(1, 1), (2, 2)]


def test_mismatched_batches_and_bad_pixels_are_user_errors(manipulator):
    """Two images for three captions, float pixels and a 1x1 array are refused."""
    image = noise_image(30, 30)
    with pytest.raises(UserError, match="2 images for 3 captions"):
        manipulator.edit([image, image], TEXTS)
    with pytest.raises(UserError, match=r"image 1: float32 \(30, 30, 3\)"):
        manipulator.edit(image.astype(np.float32), TEXTS[0])
    with pytest.raises(UserError, match="image 1: 1x1 is too small"):
        manipulator.edit(image[:1, :1], TEXTS[0])
    with pytest.raises(UserError, match="caption 2 is empty"):
        manipulator.edit(image, [TEXTS[0], "  "])


def test_workdir_without_checkpoint_is_refused(workdir, tmp_path):
    """Config and vocabulary alone are not enough, and a missing workdir says so."""
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "vocabulary.json"):
        shutil.copy(f"{workdir}/{name}", bare / name)
    with pytest.raises(UserError, match="no checkpoints"):
        Manipulator.from_workdir(str(bare))
    with pytest.raises(UserError, match="no such workdir"):
        Manipulator.from_workdir(str(tmp_path / "absent"))


def test_checkpoint_of_another_config_is_one_line(workdir, tmp_path):
    """A config.json with another generator width: mis-shaped leaves in one line."""
    other = tmp_path / "other"
    shutil.copytree(workdir, other)
    config = json.loads((other / "config.json").read_text())
    config["model"]["g"]["gf_dim"] *= 2
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError) as error:
        Manipulator.from_workdir(str(other))
    message = str(error.value)
    assert "does not fit the configured network" in message and "mis-shaped" in message
    assert "\n" not in message


@pytest.fixture(scope="module")
def converted(manipulator, tmp_path_factory):
    """Params files of seeded random weights (the trained ones plus noise), the vocabulary as
    the baseline's captions.pickle."""
    root = tmp_path_factory.mktemp("converted")
    rng = np.random.default_rng(0)
    trained = {"generator": manipulator.g_variables, **manipulator.frozen}
    variables = {
        name: {
            **tree,
            "params": jax.tree_util.tree_map(
                lambda x: np.asarray(x) + rng.normal(0, 0.05, x.shape).astype(np.float32),
                tree["params"],
            ),
        }
        for name, tree in trained.items()
    }
    paths = {name: str(root / f"{name}.msgpack") for name in variables}
    for name, path in paths.items():
        params_io.save_variables(path, name, variables[name], source="random")
    words = manipulator.vocabulary.words
    captions = [[], [], dict(enumerate(words)), {word: i for i, word in enumerate(words)}]
    with open(root / "captions.pickle", "wb") as f:
        pickle.dump(captions, f, protocol=2)
    return variables, paths, str(root / "captions.pickle")


def test_from_pytorch_edits_like_the_weights_it_was_given(manipulator, converted):
    """Params files + the baseline's captions.pickle edit as the in-memory weights do."""
    variables, paths, vocabulary = converted
    config = ml_collections.ConfigDict(manipulator.config.to_dict())
    config.model.text.vocab_size = 0
    loaded = Manipulator.from_pytorch(vocabulary=vocabulary, config=config, **paths)
    frozen = {name: variables[name] for name in ("text_encoder", "image_encoder", "vgg")}
    direct = Manipulator(manipulator.config, manipulator.vocabulary, variables["generator"], frozen)
    image = noise_image(44, 44)
    np.testing.assert_array_equal(
        loaded.edit(image, TEXTS[0]).model_images, direct.edit(image, TEXTS[0]).model_images
    )
    trained = manipulator.edit(image, TEXTS[0]).model_images
    assert np.abs(loaded.edit(image, TEXTS[0]).model_images - trained).max() > 1e-3


def test_from_pytorch_refuses_a_vocabulary_of_another_size(manipulator, converted, tmp_path):
    """A vocabulary.json with one word too many does not fit the text encoder."""
    _, paths, _ = converted
    words = [*manipulator.vocabulary.words, "zorbo"]
    (tmp_path / "vocabulary.json").write_text(json.dumps(words))
    with pytest.raises(UserError, match="vocab_size"):
        Manipulator.from_pytorch(
            vocabulary=str(tmp_path / "vocabulary.json"), config=manipulator.config, **paths
        )
