"""Images as the judge sees them: loaded from whatever TRL or a predictions file hands over,
hashed (the cache key and the routing key), and sent as a base64 data URL, made once per picture
(:class:`DataUrlCache`).

- An image given as a file (a path, bytes, a ``datasets`` image dict) is hashed by its bytes, and,
  when the file already fits what the judge is sent (:func:`own_data_url`: a JPEG or PNG, RGB or
  grey without transparency, upright, no side over ``max_image_side``), the data URL holds the
  file's own bytes: no pixel is decoded. The six fine-grained datasets are JPEGs of about 500 px,
  so this is the common case.
- Any other image is decoded as every stage decodes it
  (:func:`~refine_rft.data.images.open_image`), hashed by its size and pixels, downscaled and
  JPEG-encoded. A decoded PIL image (what TRL hands over when the dataset decodes images) takes
  this path.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import OrderedDict

from PIL import Image

from refine_rft.data.images import open_image
from refine_rft.errors import DataError
from refine_rft.judge.wire import base64_url


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


def file_bytes(image) -> bytes | None:
    """The encoded file behind ``image`` (a path, bytes, a ``datasets`` image dict, or a one-image
    list of those), or ``None`` for a decoded PIL image or a file that cannot be read (the decoding
    path then reports why).

    >>> file_bytes(b"abc"), file_bytes({"bytes": None, "path": "/no/such.png"}), file_bytes(Image.new("L", (1, 1)))
    (b'abc', None, None)
    """
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        try:
            with open(image, "rb") as handle:
                return handle.read()
        except OSError:
            return None
    if isinstance(image, dict) and (image.get("bytes") or image.get("path")):
        return file_bytes(image.get("bytes") or image["path"])
    if isinstance(image, list) and len(image) == 1:
        return file_bytes(image[0])
    return None


def bytes_hash(data: bytes) -> str:
    """SHA-256 of an image file's bytes: the key of a picture that came as a file.

    >>> bytes_hash(b"abc")[:12]
    'ba7816bf8f01'
    """
    return hashlib.sha256(data).hexdigest()


OWN_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}  # sent as they are when they fit
# How each of them ends when it is whole: JPEG's end-of-image marker, PNG's IEND chunk with its CRC.
# A file cut short lacks it and is decoded instead, which rejects it with its reason.
_ENDINGS = {"JPEG": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82"}


def own_data_url(data: bytes, max_side: int) -> str | None:
    """A data URL of the file ``data`` itself, with no decode, when the file already fits what the
    judge is sent; ``None`` otherwise (the caller decodes and re-encodes it). It fits when it is a
    JPEG or PNG whose header says: RGB or grey, no transparency, no EXIF rotation, no side over
    ``max_side``, that ends as a whole file of its format ends, and is no larger than its raw pixels
    plus 64 KiB of metadata. Only the header and the end are read: the teacher's server decodes the
    pixels, as :func:`open_image` would.

    >>> buffer = io.BytesIO()
    >>> Image.new("RGB", (40, 30), (200, 30, 40)).save(buffer, format="JPEG")
    >>> own_data_url(buffer.getvalue(), 64)[:23], own_data_url(buffer.getvalue(), 32)
    ('data:image/jpeg;base64,', None)
    >>> own_data_url(buffer.getvalue()[:-100], 64) is None  # cut short: decoded, so that it is refused
    True
    >>> buffer = io.BytesIO()
    >>> Image.new("RGBA", (4, 4)).save(buffer, format="PNG")
    >>> own_data_url(buffer.getvalue(), 64) is None  # transparency: composited on white by decoding
    True
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = OWN_FORMATS.get(image.format)
            if (kind is None or image.mode not in ("RGB", "L") or "transparency" in image.info
                    or max(image.size) > max_side or len(data) > 3 * image.width * image.height + 65536
                    or not data.endswith(_ENDINGS[image.format])):
                return None
            exif = image.info.get("exif")
            if exif:
                tags = Image.Exif()
                tags.load(exif)
                if tags.get(0x0112, 1) != 1:  # EXIF orientation: the picture is shown rotated
                    return None
    except Exception:  # noqa: BLE001 - not an image PIL can open lazily: decoding reports why
        return None
    return base64_url(kind, data)


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
    return base64_url("image/jpeg", buffer.getvalue())


class DataUrlCache:
    """An LRU of data URLs keyed by the image's content digest (:func:`image_hash` or
    :func:`bytes_hash`) and the side it is scaled to: a question's G completions arrive as G
    separately decoded copies of one picture (TRL fetches each repeated row anew), and only the
    first is encoded. Thread-safe (images are prepared in worker threads).

    >>> cache = DataUrlCache(capacity=2)
    >>> picture = Image.new("RGB", (8, 8), (255, 0, 0))
    >>> first = cache.data_url(image_hash(picture), lambda: image_data_url(picture, 64), 64)
    >>> copy = Image.new("RGB", (8, 8), (255, 0, 0))
    >>> cache.data_url(image_hash(copy), lambda: image_data_url(copy, 64), 64) is first, cache.encoded
    (True, 1)
    >>> cache.get(image_hash(copy), 64) is first, cache.get("other", 64)
    (True, None)
    """

    def __init__(self, capacity: int = 256):
        self.capacity = capacity
        self.encoded = 0  # how many pictures were encoded (misses)
        self._urls: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._encoding: dict[tuple[str, int], threading.Event] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, max_side: int) -> str | None:
        """The data URL of the picture ``digest`` if it is held, else ``None``."""
        with self._lock:
            url = self._urls.get((digest, max_side))
            if url is not None:
                self._urls.move_to_end((digest, max_side))
            return url

    def data_url(self, digest: str, make, max_side: int) -> str:
        """The data URL of the picture ``digest``: ``make()`` on a miss only; copies of one picture
        prepared at the same moment wait for the first one's encoding."""
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
            url = make()  # outside the lock: encoding takes milliseconds
            with self._lock:
                self.encoded += 1
                self._urls[key] = url
                while len(self._urls) > self.capacity:
                    self._urls.popitem(last=False)
        finally:
            with self._lock:
                self._encoding.pop(key).set()
        return url
