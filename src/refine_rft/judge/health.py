"""Is the judge able to judge? A health check before the first judgement, and a failure rule during the run.

**Health check** (:func:`check_endpoints`): before training starts or ``refine-rft judge`` sends its
first judgement, every replica in ``judge.base_urls`` gets one real judgement-shaped request: the
model, a small image and a short text, through the same client, key and retries as the run. A
refused key, an unknown model or a URL that does not answer stops everything at once with a message
naming the URL, the model and the key's environment variable.

How a refusal is recognised, whatever the status code: servers say "wrong key" and "wrong model"
with 401, 403 or 404, but gateways choose their own codes (LiteLLM answers a bad key with 400 "No
connected db." or an auth error, an unknown model with 400 "Invalid model name"). Reading error
texts would break with the next gateway release, so the decision never depends on the text: the
probe is a small, well-formed request, so *any* 4xx other than 408 / 409 / 429 can only mean the
configuration is refused. The text is used for one thing, the hint of which setting to look at
first (:func:`~refine_rft.judge.client.refusal_hint`); the message always names all three. 408 /
409 / 429 / 5xx, timeouts and refused connections are retried as judgements are; a replica that
still fails is unavailable.

**Failure rule** (:class:`FailureRule`): during the run, a judgement that fails after its retries
is counted and skipped. When more than ``judge.max_failure_rate`` of the last ``judge.failure_window``
judgements failed (default: half of the last 64), the run stops with :class:`JudgeUnavailable`
instead of training on without R_cot. Mid-run 400s (a gateway that starts refusing the key) end
up here too, after a window of failures.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque

from PIL import Image

from refine_rft.errors import JudgeUnavailable
from refine_rft.judge.config import JudgeConfig, JudgeConfigError

logger = logging.getLogger(__name__)

PROBE_TEXT = "This is a connection test before grading starts. Reply with only the number 100."

def probe_messages() -> list[dict]:
    """The health check's chat: a small grey image and :data:`PROBE_TEXT`, shaped like a judgement,
    so an endpoint that cannot take images fails here too."""
    from refine_rft.judge.images import image_data_url

    url = image_data_url(Image.new("RGB", (32, 32), (128, 128, 128)), 32)
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                         {"type": "text", "text": PROBE_TEXT}]}]


async def probe_endpoints(config: JudgeConfig) -> dict[str, float]:
    """Probe every replica at once; seconds each took to answer (nothing to probe for the
    ``attributes`` backend). Raises one error naming every replica that failed
    (:class:`JudgeConfigError` if any refused the configuration)."""
    from refine_rft.judge.client import JudgeClient

    if config.backend != "openai":
        return {}
    client = JudgeClient(config)

    async def one(url: str) -> float:
        started = time.perf_counter()
        await client.probe(url, probe_messages(), config.max_tokens)
        return time.perf_counter() - started

    try:
        results = await asyncio.gather(*(one(url) for url in config.base_urls), return_exceptions=True)
    finally:
        await client.aclose()
    errors = [result for result in results if isinstance(result, BaseException)]
    for error in errors:
        if not isinstance(error, JudgeUnavailable):
            raise error
    if errors:
        kind = JudgeConfigError if any(isinstance(e, JudgeConfigError) for e in errors) else JudgeUnavailable
        raise kind("\n".join(str(error) for error in errors))
    return dict(zip(config.base_urls, results))


def check_endpoints(config: JudgeConfig) -> dict[str, float]:
    """The health check (see the module docstring) from synchronous code; nothing to check for the
    ``attributes`` backend. Returns the seconds each replica took to answer."""
    seconds = asyncio.run(probe_endpoints(config))
    for url, took in seconds.items():
        logger.info("judge endpoint %s (model %s) answered the health check in %.2fs", url, config.model, took)
    return seconds


class FailureRule:
    """Stop when more than ``max_rate`` of the last ``window`` judgements failed.

    Example:
        >>> rule = FailureRule(max_rate=0.5, window=4)
        >>> for failed in (True, False, True):
        ...     rule.record(failed)
        >>> rule.record(True, "HTTP 500 from http://judge/v1: upstream down")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        refine_rft.errors.JudgeUnavailable: judge: 3 of the last 4 judgements failed (more than judge.max_failure_rate=50%; ...
    """

    def __init__(self, max_rate: float, window: int):
        self.max_rate = max_rate
        self.outcomes: deque[bool] = deque(maxlen=window)
        self._lock = threading.Lock()

    def record(self, failed: bool, latest_failure: str = "") -> None:
        """Count one judgement's outcome; raise :class:`JudgeUnavailable` once the window is full
        and its share of failures passes the threshold."""
        with self._lock:
            self.outcomes.append(failed)
            full = len(self.outcomes) == self.outcomes.maxlen
            failures = sum(self.outcomes)
        if full and failures > self.max_rate * len(self.outcomes):
            latest = f"; latest: {latest_failure}" if latest_failure else ""
            raise JudgeUnavailable(
                f"judge: {failures} of the last {len(self.outcomes)} judgements failed (more than "
                f"judge.max_failure_rate={self.max_rate:.0%}{latest}); stopping instead of going on without "
                f"the judge's scores. Fix the endpoint and rerun, or raise judge.max_failure_rate (1.0 never stops).")
