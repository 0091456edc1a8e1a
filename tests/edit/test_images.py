"""Safe image reading and atomic writing: every bad input is one UserError line."""

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from jaxmani.edit import images
from jaxmani.errors import UserError


def png_header_only(path, width: int, height: int) -> None:
    """A PNG with a valid header of the given size and no pixel data at all."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


def refused(path) -> str:
    """The one-line message read_image refuses `path` with."""
    with pytest.raises(UserError) as error:
        images.read_image(str(path))
    message = str(error.value)
    assert "\n" not in message
    return message


def noise(shape, seed=0) -> np.ndarray:
    """Seeded uint8 noise."""
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_missing_path_folder_and_non_image_are_refused(tmp_path):
    """A path that does not exist, a folder and a text file each get their own message."""
    assert "no such file" in refused(tmp_path / "absent.png")
    assert "is a folder" in refused(tmp_path)
    (tmp_path / "notes.png").write_text("not pixels")
    assert "not an image file" in refused(tmp_path / "notes.png")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_image_is_refused(tmp_path, suffix):
    """Half of a valid file fails while decoding, never with a traceback."""
    path = tmp_path / f"whole{suffix}"
    Image.fromarray(noise((64, 64, 3))).save(path)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "damaged or truncated" in refused(cut)


def test_one_pixel_image_names_the_minimum(tmp_path):
    """A 1x1 image is refused with the minimum side."""
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    message = refused(tmp_path / "dot.png")
    assert "1x1 is too small" in message and f"{images.MIN_SIDE} pixels" in message


@pytest.mark.parametrize("side", [9000, 20000])
def test_decompression_bombs_are_refused_from_the_header(tmp_path, side):
    """Header-only PNGs (no pixel data): a decode would fail differently, so the refusal came
    from the header's size (9000: jaxmani's limit; 20000: Pillow's own bomb check)."""
    png_header_only(tmp_path / "bomb.png", side, side)
    message = refused(tmp_path / "bomb.png")
    assert "refused before decoding" in message and str(images.MAX_PIXELS) in message


def test_grayscale_palette_and_sixteen_bit_become_rgb(tmp_path):
    """L repeats its value in R, G, B; 16-bit values are scaled by 255/65535."""
    gray = noise((20, 30))
    Image.fromarray(gray).save(tmp_path / "gray.png")
    np.testing.assert_array_equal(
        images.read_image(str(tmp_path / "gray.png")), gray[..., None].repeat(3, -1)
    )
    deep = np.full((20, 20), 257 * 100, np.uint16)
    deep[0, 0] = 65535
    Image.fromarray(deep).save(tmp_path / "deep.png")
    pixels = images.read_image(str(tmp_path / "deep.png"))
    assert pixels.shape == (20, 20, 3) and pixels.dtype == np.uint8
    assert pixels[0, 0].tolist() == [255, 255, 255] and pixels[5, 5].tolist() == [100, 100, 100]


def test_rgba_is_flattened_onto_white(tmp_path):
    """Transparent pixels become white, opaque ones keep their colour."""
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[:10, :, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    pixels = images.read_image(str(tmp_path / "alpha.png"))
    assert pixels[0, 0].tolist() == [10, 20, 30] and pixels[15, 0].tolist() == [255, 255, 255]


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    """CMYK (0, 255, 255, 0) is red."""
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    pixels = images.read_image(str(tmp_path / "cmyk.jpg")).astype(int)
    np.testing.assert_allclose(pixels[16, 16], [255, 0, 0], atol=8)


def test_animated_gif_reads_its_first_frame(tmp_path):
    """Of a red then blue animation only the red frame is read."""
    red, blue = Image.new("RGB", (24, 24), (255, 0, 0)), Image.new("RGB", (24, 24), (0, 0, 255))
    red.save(tmp_path / "anim.gif", save_all=True, append_images=[blue], duration=100)
    with Image.open(tmp_path / "anim.gif") as check:
        assert check.n_frames == 2
    pixels = images.read_image(str(tmp_path / "anim.gif"))
    assert pixels.shape == (24, 24, 3) and pixels[12, 12].tolist() == [255, 0, 0]


def test_write_image_refuses_missing_folder_and_unknown_extension(tmp_path):
    """Nothing is created for an output in a missing folder or of an unknown format."""
    with pytest.raises(UserError, match="does not exist; create it first"):
        images.write_image(str(tmp_path / "no" / "out.png"), noise((20, 20, 3)), overwrite=False)
    with pytest.raises(UserError, match=r"use \.png or \.jpg"):
        images.write_image(str(tmp_path / "out.xyz"), noise((20, 20, 3)), overwrite=False)
    assert os.listdir(tmp_path) == []


def test_write_image_overwrites_only_when_asked(tmp_path):
    """An existing output survives unless overwrite=True replaces it."""
    path = str(tmp_path / "out.png")
    first, second = noise((20, 20, 3), 1), noise((20, 20, 3), 2)
    images.write_image(path, first, overwrite=False)
    with pytest.raises(UserError, match="exists; use --overwrite"):
        images.write_image(path, second, overwrite=False)
    np.testing.assert_array_equal(images.read_image(path), first)
    images.write_image(path, second, overwrite=True)
    np.testing.assert_array_equal(images.read_image(path), second)
    assert os.listdir(tmp_path) == ["out.png"]


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    """An encoder that dies half-way leaves neither the output nor its temporary file."""

    def broken_save(self, fp, format=None, **params):
        fp.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        images.write_image(str(tmp_path / "out.png"), noise((20, 20, 3)), overwrite=False)
    assert os.listdir(tmp_path) == []
