"""`manipulate`, the library side of `jaxmani manipulate`, on the tiny trained workdir."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from jaxmani.edit import command, images
from jaxmani.errors import UserError


def save_noise(path, height: int, width: int, seed: int) -> np.ndarray:
    """Writes seeded noise as an image file and returns the pixels read back."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return images.read_image(str(path))


def test_one_image_side_by_side_is_original_edit_and_mask(workdir, manipulator, tmp_path):
    """The file holds original | the API's edit | its mask; an existing file stays."""
    pixels = save_noise(tmp_path / "bird.jpg", 50, 60, 0)
    out = str(tmp_path / "edited.png")
    text = "a red bird with a zorbo beak"
    arguments = {"workdir": workdir, "image": str(tmp_path / "bird.jpg"), "text": text, "out": out}
    report = command.manipulate(**arguments, seed=2, side_by_side=True)
    assert report.written == [out]
    assert report.warnings == ["--text: skipped words not in the vocabulary: zorbo"]
    expected = manipulator.edit(pixels, text, seed=2)
    view = images.read_image(out)
    mask = np.round(expected.masks[0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(view[:, :60], pixels)
    np.testing.assert_array_equal(view[:, 60:120], expected.images[0])
    np.testing.assert_array_equal(view[:, 120:], np.repeat(mask[..., None], 3, -1))
    with pytest.raises(UserError, match="exists; use --overwrite"):
        command.manipulate(**arguments)
    np.testing.assert_array_equal(images.read_image(out), view)


def test_folder_edits_every_caption_of_every_image(workdir, manipulator, tmp_path):
    """Three captions of one image (one batch) and one of another: four files."""
    folder = tmp_path / "in"
    folder.mkdir()
    first = save_noise(folder / "a.png", 40, 40, 1)
    second = save_noise(folder / "b.png", 30, 45, 2)
    lines = ["a.png\ta red bird", "b.png\ta blue bird", "a.png\ta yellow bird", "a.png\tblack"]
    (tmp_path / "captions.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    report = command.manipulate(
        workdir=workdir, images=str(folder), captions=str(tmp_path / "captions.txt"), out=str(out)
    )
    assert sorted(os.listdir(out)) == ["a_0.png", "a_1.png", "a_2.png", "b_0.png"]
    assert len(report.written) == 4 and report.warnings == []
    batch = manipulator.edit(first, ["a red bird", "a yellow bird", "black"])
    for index in range(3):
        np.testing.assert_array_equal(
            images.read_image(str(out / f"a_{index}.png")), batch.images[index]
        )
    single = manipulator.edit(second, "a blue bird")
    np.testing.assert_array_equal(images.read_image(str(out / "b_0.png")), single.images[0])


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_image", "no such file"),
        ("missing_folder", "does not exist; create it first"),
        ("empty_text", "--text is empty"),
        ("unknown_words", "has no word the model knows"),
        ("no_checkpoint", "no checkpoints"),
        ("not_utf8", "line 1 is not UTF-8"),
        ("no_model", "manipulate needs --workdir"),
    ],
)
def test_bad_inputs_are_one_line_and_write_nothing(workdir, tmp_path, case, message):
    """Each mistake is a one-line UserError, and the output folder stays empty."""
    save_noise(tmp_path / "bird.png", 32, 32, 0)
    out = tmp_path / "out"
    out.mkdir()
    kwargs = {"workdir": workdir, "image": str(tmp_path / "bird.png"), "text": "a red bird"}
    kwargs["out"] = str(out / "edited.png")
    if case == "missing_image":
        kwargs["image"] = str(tmp_path / "absent.png")
    elif case == "missing_folder":
        kwargs["out"] = str(tmp_path / "absent" / "edited.png")
    elif case == "empty_text":
        kwargs["text"] = " "
    elif case == "unknown_words":
        kwargs["text"] = "zorbo qux"
    elif case == "no_checkpoint":
        kwargs["workdir"] = str(tmp_path)
        for name in ("config.json", "vocabulary.json"):
            shutil.copy(os.path.join(workdir, name), tmp_path / name)
    elif case == "not_utf8":
        (tmp_path / "captions.txt").write_bytes(b"bird.png\ta caf\xe9 bird\n")
        del kwargs["image"], kwargs["text"]
        kwargs.update(images=str(tmp_path), captions=str(tmp_path / "captions.txt"))
        kwargs["out"] = str(out)
    elif case == "no_model":
        kwargs["workdir"] = None
        kwargs["generator"] = "g.msgpack"
    with pytest.raises(UserError) as error:
        command.manipulate(**kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert os.listdir(out) == []
