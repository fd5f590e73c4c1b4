"""One asynchronous chat-completions client for any OpenAI-compatible judge (``vllm serve``, hosted APIs).

Built on the official ``openai`` async client, with what a judge in a training loop needs on top:

- **bounded concurrency**: an ``asyncio.Semaphore`` of ``config.concurrency`` requests in flight,
  shared by every reward call on the event loop;
- **replicas**: each request goes to the base URL with the fewest requests in flight (ties go
  round-robin), so several ``vllm serve`` instances share the load;
- **retries**: 408, 409, 429, 5xx, timeouts and dropped connections are retried ``config.max_retries`` times
  with exponential backoff and full jitter, waiting at least what the server asks (``Retry-After``,
  ``retry-after-ms``, or the same passed on by a LiteLLM gateway as ``llm_provider-retry-after``;
  capped at ``backoff_max``). The ``openai`` client's own retries are off so that every retry is
  counted here. A request that still fails returns ``None``: logged and counted, never raised;
- **fail fast on configuration**: 401 / 403 / 404 mean a wrong key, model or URL, which no retry
  fixes, so they raise :class:`JudgeConfigError` naming the URL, the model and the key's variable.
  Gateways also answer those with 400 (LiteLLM: "No connected db.", "Invalid model name"), which
  for one request mid-run cannot be told from a request that is itself wrong: :meth:`JudgeClient.probe`
  (the health check, see :mod:`refine_rft.judge.health`) and the run's failure rule catch them.

The client binds to the event loop it is first used on (httpx connections and the semaphore belong
to one loop); used from a new loop (a second ``asyncio.run``), it starts fresh connections there.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import logging
import os
import random
import re
import time

import openai

from refine_rft.errors import JudgeUnavailable
from refine_rft.judge.config import JudgeConfig, JudgeConfigError
from refine_rft.judge.stats import JudgeStats

logger = logging.getLogger(__name__)

RETRY_STATUSES = (408, 409, 429)  # and every 5xx: busy or failing servers (as the openai client retries)
CONFIG_STATUSES = (401, 403, 404)  # wrong key, model or URL: no retry fixes them


_MODEL_WORDS = re.compile(r"\bmodel\b[^.]{0,60}\b(?:invalid|not found|does not exist|unknown|not supported|no such)"
                          r"|\b(?:invalid|unknown|no such|unsupported)\b[^.]{0,20}\bmodel", re.IGNORECASE)
_KEY_WORDS = re.compile(r"\b(?:auth\w*|api[ _-]?key|key|token|credential\w*|unauthori[sz]ed|forbidden|permission"
                        r"|no connected db)\b", re.IGNORECASE)


def refusal_hint(status: int, message: str) -> str:
    """Which setting a refusal most likely points at (a hint only; see :mod:`refine_rft.judge.health`).

    >>> refusal_hint(400, "/chat/completions: Invalid model name passed in model=x. "
    ...                   "Call `/v1/models` to view available models for your key.")
    'the model name looks wrong'
    >>> refusal_hint(400, "Authentication Error, No connected db."), refusal_hint(401, "")
    ('the API key looks refused', 'the API key looks refused')
    >>> refusal_hint(404, "The model `x` does not exist."), refusal_hint(404, "Not Found")
    ('the model name looks wrong', 'the URL or the model name looks wrong')
    >>> refusal_hint(422, "unprocessable")
    'the endpoint refuses requests of this configuration'
    """
    if _MODEL_WORDS.search(message or ""):
        return "the model name looks wrong"
    if status in (401, 403) or _KEY_WORDS.search(message or ""):
        return "the API key looks refused"
    if status == 404:
        return "the URL or the model name looks wrong"
    return "the endpoint refuses requests of this configuration"


def retryable(status: int) -> bool:
    """Whether an HTTP status means "busy or failing, try again" rather than "this is refused".

    >>> [retryable(code) for code in (400, 401, 429, 500, 503)]
    [False, False, True, True, True]
    """
    return status in RETRY_STATUSES or status >= 500


def describe_failure(url: str, error: Exception, with_url: bool = True) -> str:
    """One line for a failed request: the status and message, or the kind of connection error.

    >>> describe_failure("http://judge/v1", TimeoutError("timed out"))
    'TimeoutError (timed out) from http://judge/v1'
    """
    if isinstance(error, openai.APIStatusError):
        text = f"HTTP {error.status_code}: {error.message}"
    else:
        cause = error.__cause__
        text = f"{type(error).__name__} ({error}{'; ' + str(cause) if cause and str(cause) else ''})"
    return f"{text} from {url}" if with_url else text


# Where servers say how long to wait, most precise first. LiteLLM passes the upstream's headers on
# with an ``llm_provider-`` prefix and sends its own ``retry-after`` for its own rate limits.
RETRY_AFTER_HEADERS = (("retry-after-ms", 0.001), ("retry-after", 1.0),
                       ("llm_provider-retry-after-ms", 0.001), ("llm_provider-retry-after", 1.0))


def retry_after_seconds(error: Exception) -> float | None:
    """Seconds the server asked to wait, or ``None``: the first of :data:`RETRY_AFTER_HEADERS`
    present (``Retry-After`` in seconds or as an HTTP date).

    >>> from types import SimpleNamespace
    >>> def asked(**headers):
    ...     return retry_after_seconds(SimpleNamespace(response=SimpleNamespace(headers=headers)))
    >>> asked(**{"retry-after": "2"}), asked(**{"llm_provider-retry-after": "3"}), asked(**{"retry-after-ms": "250"})
    (2.0, 3.0, 0.25)
    >>> asked(**{"retry-after": "soon"}) is None, asked() is None
    (True, True)
    """
    response = getattr(error, "response", None)
    if response is None:
        return None
    for name, unit in RETRY_AFTER_HEADERS:
        value = response.headers.get(name)
        if not value:
            continue
        try:
            return max(0.0, float(value) * unit)
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            continue
    return None


def backoff_delay(attempt: int, config: JudgeConfig, retry_after: float | None = None) -> float:
    """Full-jitter exponential backoff, at least ``retry_after``, at most ``config.backoff_max``.

    >>> config = JudgeConfig(backend="attributes", backoff_base=1.0, backoff_max=30.0)
    >>> 0.0 <= backoff_delay(3, config) <= 8.0, backoff_delay(0, config, retry_after=5.0) >= 5.0
    (True, True)
    """
    delay = random.uniform(0, min(config.backoff_max, config.backoff_base * 2**attempt))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, config.backoff_max)


def reply_content(body: str) -> str:
    """The first choice's message text of a chat-completions response body ('' for none or a
    malformed body: the caller's parser then treats it as an unusable reply).

    >>> reply_content('{"choices": [{"message": {"role": "assistant", "content": "85"}}]}')
    '85'
    >>> reply_content('{"choices": []}')
    ''
    """
    try:
        return json.loads(body)["choices"][0]["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


class JudgeClient:
    """Send chat requests to the judge replicas; return the reply text or ``None``.

    Args:
        config: the judge configuration (URLs, model, timeouts, concurrency, retries).
        stats: counters to update (requests, retries, latency); a fresh one if not given.
    """

    def __init__(self, config: JudgeConfig, stats: JudgeStats | None = None):
        self.config = config
        self.stats = stats or JudgeStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[str, openai.AsyncOpenAI] = {}
        self._retired: list[dict[str, openai.AsyncOpenAI]] = []
        self._in_flight: dict[str, int] = {}
        self._semaphore: asyncio.Semaphore | None = None
        self._turn = itertools.count()
        self.last_failure = ""  # what the latest failed request got, for the failure rule's message

    def _bind_to_running_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        # Connections opened on a previous loop cannot be closed from this one, and the openai
        # client's finalizer would try (and fail noisily) on the new loop: keep them until exit.
        if self._clients:
            self._retired.append(self._clients)
        self._loop = loop
        self._clients = {
            url: openai.AsyncOpenAI(base_url=url, api_key=self.config.api_key(), timeout=self.config.timeout,
                                    max_retries=0)
            for url in self.config.base_urls
        }
        self._in_flight = dict.fromkeys(self.config.base_urls, 0)
        self._semaphore = asyncio.Semaphore(self.config.concurrency)

    def _pick_replica(self) -> str:
        """The least busy base URL; ties are broken round-robin."""
        urls = self.config.base_urls
        start = next(self._turn) % len(urls)
        rotated = urls[start:] + urls[:start]
        return min(rotated, key=self._in_flight.__getitem__)

    async def _post(self, url: str, messages: list[dict], max_tokens: int) -> str:
        """One chat request to ``url``; its reply text. Raises the ``openai`` client's errors."""
        # The typed ``chat.completions.create`` walks the whole payload (base64 image included)
        # through its TypedDict transformer and builds pydantic models of the reply: milliseconds of
        # CPU per request, the bottleneck at 32+ in flight. The body here is already in wire format
        # and only the reply text is needed, so it goes through the client's documented ``post``
        # (same errors, timeouts, auth).
        started = time.perf_counter()
        response = await self._clients[url].post(
            "/chat/completions", cast_to=str,
            body={"model": self.config.model, "messages": messages, "temperature": 0, "max_tokens": max_tokens})
        self.stats.add(requests=1, latency_total=time.perf_counter() - started)
        return reply_content(response)

    def refused(self, url: str, error: openai.APIStatusError,
                what: str = "refused the configuration") -> JudgeConfigError:
        """The error naming the URL, the model and the key's variable for a refusal by ``url``."""
        key_state = "set" if os.environ.get(self.config.api_key_env) else "not set"
        return JudgeConfigError(
            f"judge endpoint {url} {what} (HTTP {error.status_code}: {error.message}); "
            f"{refusal_hint(error.status_code, error.message)}: check judge.base_urls ({url}), "
            f"judge.model={self.config.model!r} and the API key in ${self.config.api_key_env} ({key_state})")

    async def chat(self, messages: list[dict], max_tokens: int) -> str | None:
        """The judge's reply to ``messages`` (temperature 0), or ``None`` after ``max_retries`` retries."""
        self._bind_to_running_loop()
        for attempt in range(self.config.max_retries + 1):
            async with self._semaphore:
                url = self._pick_replica()
                self._in_flight[url] += 1
                try:
                    return await self._post(url, messages, max_tokens)
                except openai.APIConnectionError as error:  # timeouts, refused or dropped connections
                    failure = error
                except openai.APIStatusError as error:
                    if error.status_code in CONFIG_STATUSES:
                        raise self.refused(url, error) from None
                    if not retryable(error.status_code):
                        # Another 4xx: this request is wrong (e.g. too long), not the server busy.
                        logger.warning("judge request rejected by %s (HTTP %s): %s", url, error.status_code,
                                       error.message)
                        self.last_failure = f"HTTP {error.status_code} from {url}: {error.message}"
                        return None
                    failure = error
                finally:
                    self._in_flight[url] -= 1
            if attempt == self.config.max_retries:
                break
            await self._wait_to_retry(attempt, url, failure)
        logger.warning("judge request failed after %d retries: %s: %s", self.config.max_retries,
                       type(failure).__name__, failure)
        self.last_failure = describe_failure(url, failure)
        return None

    async def _wait_to_retry(self, attempt: int, url: str, failure: Exception) -> None:
        # Sleep outside the semaphore: a request waiting out a 429 must not hold a slot.
        delay = backoff_delay(attempt, self.config, retry_after_seconds(failure))
        self.stats.add(retries=1)
        logger.debug("judge request to %s failed (%s); retry %d in %.2fs", url, type(failure).__name__,
                     attempt + 1, delay)
        await asyncio.sleep(delay)

    async def probe(self, url: str, messages: list[dict], max_tokens: int) -> str:
        """Send ``messages`` to the replica ``url`` with the usual retries; the reply text.

        Unlike :meth:`chat`, every failure raises: a 4xx other than 408 / 409 / 429 as
        :class:`JudgeConfigError` (the probe is a small, well-formed request, so a refusal can only
        be the configuration, whatever status code the server or gateway picks for it), and a
        server that still fails or cannot be reached after the retries as :class:`JudgeUnavailable`.
        """
        self._bind_to_running_loop()
        for attempt in range(self.config.max_retries + 1):
            try:
                return await self._post(url, messages, max_tokens)
            except openai.APIConnectionError as error:
                failure = error
            except openai.APIStatusError as error:
                if not retryable(error.status_code):
                    raise self.refused(url, error, "refused the health check") from None
                failure = error
            if attempt < self.config.max_retries:
                await self._wait_to_retry(attempt, url, failure)
        raise JudgeUnavailable(
            f"judge endpoint {url} did not answer the health check after {self.config.max_retries} retries "
            f"({describe_failure(url, failure, with_url=False)}): is the server at judge.base_urls ({url}) up, "
            f"serving judge.model={self.config.model!r}? (API key from ${self.config.api_key_env})")

    async def aclose(self) -> None:
        """Close the connections (call on the loop that used them)."""
        if self._loop is asyncio.get_running_loop():
            await asyncio.gather(*(client.close() for client in self._clients.values()))
        self._clients, self._loop = {}, None
