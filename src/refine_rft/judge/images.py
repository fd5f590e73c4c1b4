"""Images as the judge sees them: loaded from whatever TRL or a predictions file hands over,
hashed by their pixels (the cache key and the routing key), and sent as a downscaled base64 data
URL, encoded once per picture (:class:`DataUrlCache`)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
from collections import OrderedDict

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


class DataUrlCache:
    """An LRU of data URLs keyed by the image's content digest (:func:`image_hash`) and the side it
    is scaled to: a question's G completions arrive as G separately decoded copies of one picture
    (TRL fetches each repeated row anew), and only the first is JPEG-encoded. Thread-safe (images
    are prepared in worker threads).

    >>> cache = DataUrlCache(capacity=2)
    >>> picture = Image.new("RGB", (8, 8), (255, 0, 0))
    >>> first = cache.data_url(image_hash(picture), picture, 64)
    >>> cache.data_url(image_hash(picture), Image.new("RGB", (8, 8), (255, 0, 0)), 64) is first, cache.encoded
    (True, 1)
    """

    def __init__(self, capacity: int = 256):
        self.capacity = capacity
        self.encoded = 0  # how many pictures were encoded (misses)
        self._urls: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._encoding: dict[tuple[str, int], threading.Event] = {}
        self._lock = threading.Lock()

    def data_url(self, digest: str, image: Image.Image, max_side: int) -> str:
        """The data URL of ``image`` (whose :func:`image_hash` is ``digest``), encoded on a miss only;
        copies of one picture prepared at the same moment wait for the first one's encoding."""
        key = (digest, max_side)
        while True:
            with self._lock:
                url = self._urls.get(key)
                if url is not None:
                    self._urls.move_to_end(key)
                    return url
                waiting = self._encoding.get(key)
                if waiting is None:
                    self._encoding[key] = threading.Event()
                    break
            waiting.wait()
        try:
            url = image_data_url(image, max_side)  # outside the lock: encoding takes milliseconds
            with self._lock:
                self.encoded += 1
                self._urls[key] = url
                while len(self._urls) > self.capacity:
                    self._urls.popitem(last=False)
        finally:
            with self._lock:
                self._encoding.pop(key).set()
        return url
