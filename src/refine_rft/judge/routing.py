"""Which replica judges a request: by question, bounded by what an engine holds, and health-aware.

A serving engine caches the prefix it has already computed (vLLM's automatic prefix caching,
hosted prompt caching), so a question's G requests, which share the image and the instructions,
should all reach the same replica. The rules (``judge.routing: question``, the default):

1. **Affinity.** Requests carry a key (the image's content digest). The replicas are ranked for
   that key by rendezvous (highest-random-weight) hashing, :func:`rendezvous_order`; the first is
   the question's home. Adding or losing a replica moves only the questions that lived on it.
2. **A question stays whole.** A question is placed when its first request is sent, and all its
   requests go to that replica while any of them is still waiting or in flight (the client holds
   the question open with :meth:`Router.question` around each request), however busy the replica
   is. Only a replica that is cooling down (rule 4) gives its questions up: their later requests,
   retries included, move together to the next replica of their order.
3. **Bounded by what an engine holds.** A new question goes to its home unless the home already has
   ``judge.replica_capacity`` requests in flight from this process (default 64, vLLM's
   ``--max-num-seqs`` in the documented serving command); then to the next replica of its order
   with room, or, when none has room, to the least busy. A handful of requests in flight is not
   saturation: an engine batches dozens of sequences at once.
4. **Health.** A replica that refuses a connection, or fails ``judge.replica_failures`` requests in
   a row (timeouts, dropped connections, 5xx), is taken out for ``judge.cooldown_s`` seconds; its
   questions go to the next replica in their order. After the cool-down it is re-probed: it takes
   one request at a time until one succeeds (then it is healthy again) or fails (another
   cool-down). When every replica is cooling down, requests go to their home anyway: they fail
   and are counted, and the run's failure rule decides.

``judge.routing: request`` keeps the earlier rule, for comparison (``benchmarks/teacher_cost.py``):
each request is routed on its own, and its home is skipped while saturated. With ``m`` requests in
flight over the ``n`` healthy replicas, ``C = judge.concurrency`` and ``c = judge.load_factor``, a
replica is saturated when its own in-flight count has reached ``max(ceil(c * (m + 1) / n), ceil(C / n))``
(consistent hashing with bounded loads, Mirrokni, Thorup and Zadimoghaddam, 2018): under load a
question's requests scatter, and each replica then prefills its image again.

Example:
    >>> router = Router(["http://a/v1", "http://b/v1"], concurrency=8, load_factor=1.25, max_failures=3,
    ...                 cooldown_s=30.0, clock=lambda: 0.0)
    >>> with router.question("digest-1"):
    ...     home = router.acquire("digest-1")
    ...     router.release(home, ok=True)
    >>> router.acquire("digest-1") == home
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

ROUTINGS = ("question", "request")


def rendezvous_order(key: str, urls: Sequence[str]) -> list[str]:
    """``urls`` ranked for ``key`` by rendezvous hashing: descending
    ``int(sha256(f"{url}\\n{key}").hexdigest(), 16)``, ties by URL.

    >>> urls = ["http://a/v1", "http://b/v1", "http://c/v1"]
    >>> order = rendezvous_order("image-digest", urls)
    >>> sorted(order) == sorted(urls), order == rendezvous_order("image-digest", list(reversed(urls)))
    (True, True)
    >>> [u for u in rendezvous_order("image-digest", urls[:2])] == [u for u in order if u in urls[:2]]
    True
    """
    def weight(url: str) -> int:
        return int(hashlib.sha256(f"{url}\n{key}".encode()).hexdigest(), 16)

    return sorted(urls, key=lambda url: (-weight(url), url))


@dataclass
class ReplicaState:
    """What the router knows of one replica."""

    in_flight: int = 0
    consecutive_failures: int = 0
    cooling_until: float = 0.0  # > 0 while taken out (and, once passed, until a success: probing)


class Router:
    """The routing rules of the module docstring over ``urls`` (not thread-safe: one event loop).

    ``acquire(key)`` picks a replica and counts the request in flight; ``release(url, ok, refused)``
    ends it and updates the replica's health. ``key=None`` (no image) routes by load alone. With
    ``rule="question"``, ``with router.question(key):`` around a request's attempts keeps the
    question on one replica until its last held request is done.
    """

    def __init__(self, urls: Sequence[str], concurrency: int, load_factor: float, max_failures: int,
                 cooldown_s: float, capacity: int = 64, rule: str = "question",
                 clock: Callable[[], float] = time.monotonic):
        if rule not in ROUTINGS:
            raise ValueError(f"routing rule must be one of {', '.join(ROUTINGS)}, got {rule!r}")
        self.urls = list(urls)
        self.concurrency = concurrency
        self.load_factor = load_factor
        self.max_failures = max_failures
        self.cooldown_s = cooldown_s
        self.capacity = capacity
        self.rule = rule
        self.clock = clock
        self.state = {url: ReplicaState() for url in self.urls}
        self.cooldowns = 0  # cool-downs started (for the judge's counters)
        # Open questions: key -> [requests held, replica placed on (None until the first is sent)].
        self.open: dict[str, list] = {}

    def _available(self, url: str, now: float) -> bool:
        state = self.state[url]
        if state.cooling_until == 0.0:
            return True
        # Cooling down: out. Cool-down over: re-probed by one request at a time.
        return now >= state.cooling_until and state.in_flight == 0

    @contextlib.contextmanager
    def question(self, key: str | None) -> Iterator[None]:
        """Hold the question ``key`` open for one request (its waiting, attempts and retries): while
        any request of it is held, its requests go to the replica it was placed on (rule 2).

        >>> router = Router(["http://a/v1", "http://b/v1"], concurrency=8, load_factor=1.25, max_failures=3,
        ...                 cooldown_s=30.0, capacity=1)
        >>> with router.question("q1"), router.question("q1"):
        ...     first = router.acquire("q1")
        ...     second = router.acquire("q1")  # past the capacity of 1, yet on the same replica
        >>> first == second, router.open
        (True, {})
        """
        if key is None or self.rule != "question":
            yield
            return
        entry = self.open.setdefault(key, [0, None])
        entry[0] += 1
        try:
            yield
        finally:
            entry[0] -= 1
            if entry[0] == 0 and self.open.get(key) is entry:
                del self.open[key]

    def bound(self, healthy: int) -> int:
        """In-flight requests at which a replica counts as saturated under ``rule="request"`` (the
        earlier rule of the module docstring).

        >>> Router(["a", "b"], concurrency=32, load_factor=1.25, max_failures=3, cooldown_s=1).bound(2)
        16
        """
        load = sum(state.in_flight for state in self.state.values())
        return max(math.ceil(self.load_factor * (load + 1) / healthy), math.ceil(self.concurrency / healthy))

    def order(self, key: str | None, avoid: Sequence[str] = ()) -> list[str]:
        """The replicas a request with ``key`` may go to, best first (``avoid``: replicas that
        already failed this request, tried last). Under ``rule="question"`` this places (or moves)
        an open question."""
        now = self.clock()
        ranked = rendezvous_order(key, self.urls) if key is not None else \
            sorted(self.urls, key=lambda url: self.state[url].in_flight)
        available = [url for url in ranked if self._available(url, now)]
        if not available:  # every replica is out: send to the home anyway, and let it fail visibly
            return [url for url in ranked if url not in avoid] or ranked
        preferred = [url for url in available if url not in avoid] or available
        if self.rule == "question" and key is not None:
            entry = self.open.get(key)
            placed = entry[1] if entry is not None else None
            if placed is not None and placed in preferred:  # its replica is up: the question stays whole
                return [placed] + [url for url in preferred if url != placed]
            roomy = [url for url in preferred if self.state[url].in_flight < self.capacity]
            chosen = roomy[0] if roomy else min(preferred, key=lambda url: self.state[url].in_flight)
            if entry is not None and (placed is None or placed not in available):
                entry[1] = chosen  # placed, or moved whole off a replica that is cooling down
            return [chosen] + [url for url in preferred if url != chosen]
        bound = self.bound(len(available))
        for url in preferred:
            if self.state[url].in_flight < bound:
                return [url] + [other for other in preferred if other != url]
        return sorted(preferred, key=lambda url: self.state[url].in_flight)

    def acquire(self, key: str | None, avoid: Sequence[str] = ()) -> str:
        """The replica for this request, counted in flight until :meth:`release`."""
        url = self.order(key, avoid)[0]
        self.state[url].in_flight += 1
        return url

    def release(self, url: str, ok: bool | None, refused: bool = False) -> None:
        """End a request on ``url``: ``ok`` True (a reply), False (a failure of the replica: 5xx,
        timeout, dropped or ``refused`` connection) or None (says nothing of its health: 429, a 4xx)."""
        state = self.state[url]
        state.in_flight -= 1
        if ok:
            state.consecutive_failures, state.cooling_until = 0, 0.0
        elif ok is False:
            state.consecutive_failures += 1
            probing = state.cooling_until > 0.0
            if refused or probing or state.consecutive_failures >= self.max_failures:
                if state.cooling_until <= self.clock():  # not already cooling (a burst fails at once)
                    self.cooldowns += 1
                state.cooling_until = self.clock() + self.cooldown_s

    def available(self) -> list[str]:
        """The replicas that may take a request now (not cooling down, or ready for their re-probe)."""
        now = self.clock()
        return [url for url in self.urls if self._available(url, now)]

    def cooling(self) -> list[str]:
        """The replicas taken out right now."""
        now = self.clock()
        return [url for url in self.urls if self.state[url].cooling_until > now]
