"""One way to open an image, shared by every stage (training, evaluation, ``predict``, the judge and
the report), so that each sees the same pixels, and none decodes more pixels than it can hold.

:func:`open_image` returns an RGB picture whatever the file holds:

- EXIF orientation is applied (a phone photo stored sideways is shown upright: the ``datasets``
  library does this for training, so evaluation and the judge must too);
- 16-bit grey (PNG, TIFF) is scaled to 8 bits (a plain ``convert("RGB")`` clips it to white);
- transparency (RGBA, LA, a palette or grey with a transparent colour) is composited on white
  (a plain conversion drops the alpha and shows whatever colour the transparent pixels hold);
- CMYK, palette and grey become RGB.

Decoding is bounded. The header says the size before any pixel is decoded; a JPEG larger than the
area the model will see (``max_pixels``) is decoded at a reduced scale (1/2 to 1/8, PIL's
``draft``: libjpeg never builds the full-size pixels), and any image whose decoded area would still
exceed :func:`decode_limit` is refused with a one-line reason, so one 12000 x 12000 PNG of a few KB
cannot take gigabytes. A row whose image is refused is rejected like any unreadable image.

>>> from PIL import Image
>>> open_image(Image.new("RGBA", (2, 1), (0, 0, 0, 0))).getpixel((0, 0))
(255, 255, 255)
>>> decode_limit(12544), decode_limit(None)
(16000000, 51380224)
"""

from __future__ import annotations

import io
import math
import os
import stat
import warnings

from PIL import Image, ImageOps

from refine_rft.errors import DataError
from refine_rft.resolution import QWEN_MAX_PIXELS

# Any image may be decoded up to this area (a 16 Mpx camera photo: 48 MB of RGB), whatever the model's
# resolution; beyond it, only up to 4 x the model's largest image area (the processor shrinks it anyway).
DECODE_FLOOR = 16_000_000
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")


def decode_limit(max_pixels: int | None) -> int:
    """The largest area (pixels) decoded for a model whose images are at most ``max_pixels``
    (``None``: Qwen-VL's default, 12.8 Mpx)."""
    return max(DECODE_FLOOR, 4 * (max_pixels or QWEN_MAX_PIXELS))


def open_image(source, max_pixels: int | None = None) -> Image.Image:
    """An RGB picture from a file path, bytes or a PIL image (see the module docstring); a
    :class:`~refine_rft.errors.DataError` with the reason when the file is missing, unreadable or
    too large to decode.

    >>> open_image(Image.new("I;16", (1, 1), 32896)).getpixel((0, 0))
    (128, 128, 128)
    """
    if isinstance(source, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(source))
    image, name = _open_lazily(source)
    with image:
        _reduce_on_decode(image, name, max_pixels)
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
        except Exception as error:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, ...
            raise DataError(f"unreadable image {name} ({type(error).__name__}: {error})") from None
        return _to_rgb(upright)


def file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a readable image file, in its own words, or ``None``: missing, a symbolic
    link to nothing, a folder, a FIFO, a socket or a device (never opened: reading a FIFO would wait
    forever), or a file this user may not read.

    >>> file_problem("/no/such.png"), file_problem("/")
    ('image not found: /no/such.png', 'image / is a folder, not an image file')
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return f"image {path} is a symbolic link to {os.readlink(path)}, which does not exist"
        return f"image not found: {path}"
    except OSError as error:
        return f"image {path} cannot be reached ({error.strerror})"
    if stat.S_ISREG(mode):
        return None if os.access(path, os.R_OK) else f"image {path} cannot be read (permission denied)"
    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file")
    return f"image {path} is {kind}, not an image file"


def image_problem(path: str, decode: bool = True, max_pixels: int | None = None) -> str | None:
    """Why the image file at ``path`` cannot be used, or ``None``: missing, or (with ``decode``) not
    an image, cut short, or too large to decode (:func:`decode_limit`). Large JPEGs are decoded at a
    reduced scale, which still reads every byte.

    >>> image_problem("/no/such.png")
    'image not found: /no/such.png'
    """
    if (problem := file_problem(path)) is not None:
        return problem
    if not decode:
        return None
    try:
        image, name = _open_lazily(path)
        with image:
            _reduce_on_decode(image, name, max_pixels)
            image.draft(None, (1, 1))  # a JPEG need not be decoded at full scale to prove it whole
            image.load()
    except DataError as error:
        return str(error)
    except Exception as error:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, ... on bad files
        return f"unreadable image {path} ({type(error).__name__}: {error})"
    return None


def _open_lazily(source) -> tuple[Image.Image, str]:
    """The opened (header-only) image and a name for messages."""
    if isinstance(source, (str, os.PathLike)):
        if (problem := file_problem(source)) is not None:
            raise DataError(problem)
        name, handle = str(source), source
    elif isinstance(source, (bytes, bytearray)):
        name, handle = f"({len(source)} bytes)", io.BytesIO(source)
    else:
        raise DataError(f"cannot read an image from {type(source).__name__} "
                        "(want a path, bytes or a PIL image)")
    try:
        with warnings.catch_warnings():  # the size is checked next, against this run's own limit
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(handle), name
    except Image.DecompressionBombError as error:
        raise DataError(f"image {name} refused before decoding: {error}") from None
    except Exception as error:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, ... on bad files
        raise DataError(f"unreadable image {name} ({type(error).__name__}: {error})") from None


def _reduce_on_decode(image: Image.Image, name: str, max_pixels: int | None) -> None:
    """Ask a JPEG to decode at the smallest scale still covering ``max_pixels``; refuse an image whose
    decoded area would exceed :func:`decode_limit`. Only the header has been read so far."""
    width, height = image.size
    target = max_pixels or QWEN_MAX_PIXELS
    if width * height > target:
        scale = math.sqrt(target / (width * height))
        image.draft(None, (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))
    limit = decode_limit(max_pixels)
    if image.width * image.height > limit:
        raise DataError(f"image {name} is {width} x {height} pixels, more than the {limit:,} this run "
                        "decodes (only JPEGs are reduced while decoding); scale it down first")


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB pixels: 16-bit grey scaled to 8 bits, transparency composited on white."""
    if image.mode in SIXTEEN_BIT_MODES:
        import numpy as np

        grey = (np.asarray(image, dtype=np.int64) + 128) // 257  # 0..65535 -> 0..255, rounded
        image = Image.fromarray(grey.clip(0, 255).astype(np.uint8), "L")
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")
