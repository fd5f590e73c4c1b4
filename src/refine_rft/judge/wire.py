"""The judge's request bodies as JSON bytes, each image's data URL encoded once.

A question's G requests carry one data URL of tens of kilobytes (the same string object, from
:class:`~refine_rft.judge.images.DataUrlCache`). ``json.dumps`` would scan it for characters to
escape in every request. Encoding it once cut the client's CPU per judgement from 4.1-4.3 to 3.4-3.5 ms
on a 2-core CPU with the pictures already prepared (448 px pictures, 384 judgements at 32 in flight,
as ``benchmarks/judge_throughput.py`` sends them); the bytes are exactly ``json.dumps``'s.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections import OrderedDict

LONG_URL = 4096  # image URLs at least this long (data URLs) are JSON-encoded once, then reused


class Base64Url(str):
    """A data URL made here from base64 (``data:<type>;base64,<payload>``): none of its characters
    needs escaping in JSON, so its encoding is the string between quotes, with no scan of its
    hundreds of kilobytes. Made only by :func:`base64_url`.

    >>> url = base64_url("image/png", b"PNG?")
    >>> url, json.dumps(url) == BodyEncoder()._encoded(url).decode()
    ('data:image/png;base64,UE5HPw==', True)
    """


def base64_url(media_type: str, data: bytes) -> Base64Url:
    """The data URL of ``data`` (of the ``media_type``, e.g. ``image/jpeg``)."""
    if not re.fullmatch(r"[a-z]+/[a-z0-9.+-]+", media_type):
        raise ValueError(f"not a media type: {media_type!r}")
    return Base64Url(f"data:{media_type};base64," + base64.b64encode(data).decode("ascii"))


class BodyEncoder:
    """JSON request bodies in which each image's data URL is encoded once.

    A question's G requests carry one data URL (one string object, from the data URL cache):
    ``json.dumps`` would scan its tens of kilobytes for characters to escape in every request.
    Here each long image URL is stood in for by a marker holding a random code of this encoder (so
    no text in the request can spell it), the small rest is ``json.dumps``'ed, and the marker is
    replaced by the URL's encoding, kept in a small LRU keyed by the URL. The bytes are exactly
    ``json.dumps(body).encode()``; :meth:`pieces` gives them without joining them, so that a
    request of a large picture costs no copy of it.

    >>> encoder = BodyEncoder()
    >>> image = {"type": "image_url", "image_url": {"url": "data:," + "A" * 5000}}
    >>> body = {"model": "m", "messages": [{"role": "system", "content": "be fair"},
    ...     {"role": "user", "content": [
    ...     {"type": "text", "text": 'a "quoted" caf\u00e9'}, image, {"type": "text", "text": "x"}, image]}],
    ...     "max_tokens": 8}
    >>> encoder.encode(body) == json.dumps(body).encode(), encoder.encode(body) == json.dumps(body).encode()
    (True, True)
    >>> encoder.hits, len(encoder._urls)
    (3, 1)
    >>> [len(piece) for piece in encoder.pieces(body)][1::2] == [5008, 5008]  # the two shared URL pieces
    True
    """

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self.hits = 0
        self._urls: OrderedDict[str, str] = OrderedDict()
        self._marker = f"refine-rft-image-{uuid.uuid4().hex}-"

    def _encoded(self, url: str) -> bytes:
        encoded = self._urls.get(url)  # one hash per string object: Python caches a string's hash
        if encoded is None:
            # A base64 URL needs no escaping: its JSON is itself between quotes (json.dumps scans
            # every character, about a millisecond for a 500 KB picture).
            encoded = b'"' + url.encode() + b'"' if type(url) is Base64Url else json.dumps(url).encode()
            self._urls[url] = encoded
            if len(self._urls) > self.capacity:
                self._urls.popitem(last=False)
        else:
            self.hits += 1
            self._urls.move_to_end(url)
        return encoded

    def encode(self, body: dict) -> bytes:
        """``json.dumps(body).encode()`` for a chat-completions body (``body["messages"]``)."""
        return b"".join(self.pieces(body))

    def pieces(self, body: dict) -> list[bytes]:
        """:meth:`encode`'s bytes in pieces, each image URL's encoding one shared ``bytes`` object:
        the pieces can be sent one after the other, and no request copies the picture."""
        urls: list[str] = []

        def stand_in(part):
            image = part.get("image_url") if isinstance(part, dict) else None
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or len(url) < LONG_URL:
                return part
            urls.append(url)
            return {**part, "image_url": {**image, "url": f"{self._marker}{len(urls) - 1}"}}

        messages = [{**message, "content": [stand_in(part) for part in message["content"]]}
                    if isinstance(message, dict) and isinstance(message.get("content"), list) else message
                    for message in body["messages"]]
        rest, pieces = json.dumps({**body, "messages": messages}), []
        for index, url in enumerate(urls):
            head, _, rest = rest.partition(f'"{self._marker}{index}"')
            pieces += [head.encode(), self._encoded(url)]
        pieces.append(rest.encode())
        return pieces
