"""Images as the judge sees them: loaded from whatever TRL or a predictions file hands over,
hashed by their pixels (the cache key), and sent as a downscaled base64 data URL."""

from __future__ import annotations

import base64
import hashlib
import io
import os

from PIL import Image

from refine_rft.data.images import open_image
from refine_rft.errors import DataError


def load_image(image) -> Image.Image:
    """An RGB PIL image from a PIL image, a file path, raw bytes, or a ``datasets`` image dict
    (``{"bytes": ..., "path": ...}``, what an ``Image(decode=False)`` column holds).

    >>> load_image(Image.new("L", (4, 2))).mode
    'RGB'
    """
    if isinstance(image, Image.Image):
        picture = image
    elif isinstance(image, (str, os.PathLike, bytes, bytearray)):
        return open_image(image)
    elif isinstance(image, dict) and (image.get("bytes") or image.get("path")):
        return load_image(image.get("bytes") or image["path"])
    elif isinstance(image, list) and len(image) == 1:  # an ``images`` column with one image per prompt
        return load_image(image[0])
    else:
        raise DataError(f"judge: cannot read an image from {type(image).__name__} (want PIL image, path, "
                        "bytes or a datasets image dict)")
    # The one image-opening function of every stage, so the judge sees the pixels the policy saw.
    return open_image(picture)


def image_hash(image: Image.Image) -> str:
    """SHA-256 of size and pixels: the same picture has the same key whether it came as a path or
    as a decoded PIL image.

    >>> image_hash(Image.new("RGB", (2, 2))) == image_hash(Image.new("RGB", (2, 2)))
    True
    """
    digest = hashlib.sha256(f"{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def image_data_url(image: Image.Image, max_side: int) -> str:
    """The image as a ``data:image/jpeg;base64,...`` URL, downscaled so its longest side is at most
    ``max_side`` (never upscaled). JPEG at quality 90 keeps requests small for large photos.

    >>> image_data_url(Image.new("RGB", (1000, 500)), 64)[:23]
    'data:image/jpeg;base64,'
    """
    if max(image.size) > max_side:
        scale = max_side / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
