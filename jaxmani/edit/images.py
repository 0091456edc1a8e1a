"""The user's image files: read safely, written atomically, every mistake a one-line UserError.

What `read_image` accepts, and what it does with it:

- any still or animated format Pillow decodes (PNG, JPEG, GIF, BMP, TIFF, WebP, ...); of an
  animated image only the first frame is read;
- the EXIF orientation is applied, so the image is edited the way viewers show it;
- grayscale, palette, CMYK and 16-bit images become 8-bit RGB (16-bit values scaled by 255/65535);
- transparency (RGBA, LA, palettes or grayscale with a transparent colour) is flattened onto white;
- refused: a side shorter than MIN_SIDE pixels; more than MAX_PIXELS pixels, refused from the
  header's size before any pixel is decoded (decompression bombs); truncated or damaged files.

`write_image` writes a temporary file beside the target and renames it when complete, so a
failure never leaves a partial image, and it replaces an existing file only when asked to.
"""

import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from jaxmani.data import cub_birds
from jaxmani.errors import UserError

MIN_SIDE = 16  # Shortest side jaxmani edits, in pixels.
MAX_PIXELS = 64_000_000  # Largest image jaxmani decodes (e.g. 8000 x 8000).
WRITE_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)  # Pillow's damaged-file errors.


def check_size(label: str, width: int, height: int) -> None:
    """Refuses images with a side under MIN_SIDE or more than MAX_PIXELS pixels."""
    if min(width, height) < MIN_SIDE:
        raise UserError(
            f"{label}: {width}x{height} is too small; images need at least {MIN_SIDE} pixels on "
            "each side"
        )
    if width * height > MAX_PIXELS:
        raise UserError(
            f"{label}: {width}x{height} is {width * height} pixels, more than the {MAX_PIXELS} "
            "jaxmani decodes (refused before decoding); downscale it first"
        )


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB of any Pillow mode; transparent pixels are flattened onto white."""
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return cub_birds.to_rgb(image)


def read_image(path: str) -> np.ndarray:
    """The image file at `path` as (H, W, 3) uint8 RGB, as the module docstring describes."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder, not an image file")
    try:
        with warnings.catch_warnings():
            # Pillow warns from 89 Mpixels and refuses from 179; MAX_PIXELS decides below both.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                check_size(path, *image.size)
                image.load()
                return np.asarray(to_rgb(ImageOps.exif_transpose(image)))
    except Image.DecompressionBombError as e:
        raise UserError(
            f"{path}: more than the {MAX_PIXELS} pixels jaxmani decodes (refused before "
            "decoding); downscale it first"
        ) from e
    except UnidentifiedImageError as e:
        raise UserError(f"{path}: not an image file (no image format recognises it)") from e
    except PermissionError as e:
        raise UserError(f"{path}: cannot be read ({e.strerror})") from e
    except _DECODE_ERRORS as e:
        raise UserError(f"{path}: damaged or truncated image ({e})") from e


def output_format(path: str) -> str:
    """The Pillow format named by the extension of `path` (a UserError when none fits)."""
    extension = os.path.splitext(path)[1].lower()
    image_format = Image.registered_extensions().get(extension)
    if image_format not in WRITE_FORMATS:
        raise UserError(
            f"{path}: cannot tell the image format from {extension or 'a missing extension'!r}; "
            "use .png or .jpg"
        )
    return image_format


def check_output(path: str, overwrite: bool) -> None:
    """Refuses an output path whose folder is missing, a folder, or an existing file."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{path}: the folder {folder} does not exist; create it first")
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder; give an image file name")
    if os.path.exists(path) and not overwrite:
        raise UserError(f"{path}: exists; use --overwrite (overwrite=True) to replace it")
    output_format(path)


def write_image(path: str, pixels: np.ndarray, *, overwrite: bool) -> None:
    """Writes uint8 pixels to `path` atomically, in the format its extension names."""
    check_output(path, overwrite)
    partial = f"{path}.{os.getpid()}.partial"
    try:
        with open(partial, "xb") as f:
            Image.fromarray(pixels).save(f, format=output_format(path))
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
