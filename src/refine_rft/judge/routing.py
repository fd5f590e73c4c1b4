"""Cache-affine choice of a judge replica: rendezvous hashing of a key (the image digest) over the URLs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def rendezvous_order(key: str, urls: Sequence[str]) -> list[str]:
    """``urls`` by descending rendezvous weight ``sha256(f"{url}\\n{key}")`` (ties by URL): the first is
    the key's replica, the next its fallbacks. Removing a URL moves only the keys that ranked it first.

    >>> urls = ["http://a/v1", "http://b/v1", "http://c/v1"]
    >>> order = rendezvous_order("image-digest", urls)
    >>> sorted(order) == sorted(urls), rendezvous_order("image-digest", urls[::-1]) == order
    (True, True)
    >>> [url for url in order if url != order[0]] == rendezvous_order("image-digest", order[1:])
    True
    """
    def weight(url: str) -> int:
        return int(hashlib.sha256(f"{url}\n{key}".encode()).hexdigest(), 16)

    return sorted(urls, key=lambda url: (-weight(url), url))
