"""One asynchronous chat-completions client for any OpenAI-compatible judge (``vllm serve``, hosted APIs).

Requests go through :class:`~refine_rft.judge.transport.Transport` (keep-alive ``httpcore`` pools,
the HTTP engine under ``httpx`` and the official ``openai`` client, without the layers above it),
posting bodies that are already JSON bytes (:class:`~refine_rft.judge.wire.BodyEncoder`): a judge
in a training loop sends hundreds of requests per step, and the ``openai`` client's ``post`` cost
about 1.5 ms of CPU per request on a 2-core machine (``benchmarks/judge_throughput.py`` prints the
transport's own cost beside it). Failures are raised as the ``openai`` client's exception types,
built as it builds them, so everything here reads them as it would from that client. On top of the
transport:

- **bounded concurrency**: an ``asyncio.Semaphore`` of ``config.concurrency`` requests in flight,
  shared by every reward call on the event loop;
- **replicas**: a question's requests go to one replica, chosen by rendezvous hashing of the
  image digest and bounded by what a replica holds, moving only off a replica cooling down
  (:mod:`refine_rft.judge.routing`), so a serving engine's prefix cache serves the whole group;
- **retries**: 408, 409, 429, 5xx, timeouts and dropped connections are retried ``config.max_retries`` times
  with exponential backoff and full jitter, waiting at least what the server asks (``Retry-After``,
  ``retry-after-ms``, or the same passed on by a LiteLLM gateway as ``llm_provider-retry-after``;
  capped at ``backoff_max``). A retry goes to another replica when there is one. Every HTTP
  attempt is counted here (``judge/requests``,
  ``judge/request_failures``, ``judge/mean_latency_s`` over all attempts). A request that still
  fails returns ``None``: logged and counted, never raised;
- **the server's own words**: an error quotes the server's error text whatever the body's shape
  (OpenAI's ``{"error": {"message"}}``, FastAPI's ``{"detail": ...}``, plain text), see
  :func:`server_error_text`; a reply whose content is not text (a number, ``null``) is a failed
  judgement, and a list of parts (some gateways send them) is read by joining its text parts;
- **fail fast on configuration**: 401 / 403 / 404 mean a wrong key, model or URL, which no retry
  fixes, so they raise :class:`JudgeConfigError` naming the URL, the model and the key's variable.
  Gateways also answer those with 400 (LiteLLM: "No connected db.", "Invalid model name"), which
  for one request mid-run cannot be told from a request that is itself wrong: :meth:`JudgeClient.probe`
  (the health check, see :mod:`refine_rft.judge.health`) and the run's failure rule catch them.

The client binds to the event loop it is first used on (the connections and the semaphore belong
to one loop); used from a new loop (a second ``asyncio.run``), it starts fresh connections there,
and the previous loop's connections are closed on that loop. Whoever owns a client closes it with
:meth:`JudgeClient.aclose` when done (a reward at the end of training, ``refine-rft judge`` at the end
of the command); a loop that ``asyncio.run`` shuts down first closes its connections itself, so a
client used once per ``asyncio.run`` holds the connections of one loop at a time, never more.
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
import uuid

import openai

from refine_rft.errors import JudgeUnavailable
from refine_rft.judge.config import JudgeConfig, JudgeConfigError
from refine_rft.judge.routing import Router
from refine_rft.judge.stats import JudgeStats
from refine_rft.judge.transport import Transport, httpcore, httpx
from refine_rft.judge.wire import BodyEncoder
from refine_rft.masking import mask, mask_value

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


def server_error_text(error: openai.APIStatusError, limit: int = 300) -> str:
    """What the server itself said in an error response, whatever the body's shape: OpenAI's
    ``{"error": {"message": ...}}``, ``{"error": "..."}``, FastAPI's ``{"detail": ...}`` (a string or
    a list of ``{"msg": ...}``), ``{"message": ...}``, plain text; else the body as JSON. At most
    ``limit`` characters; the openai client's own message when the body is empty.

    >>> from types import SimpleNamespace
    >>> def said(body):
    ...     return server_error_text(SimpleNamespace(body=body, message="Error code: 400"))
    >>> said({"detail": "Model does not support images"}), said({"detail": [{"loc": ["body"], "msg": "bad"}]})
    ('Model does not support images', 'bad')
    >>> said({"error": {"message": "too long", "type": "x"}}), said({"error": "busy"}), said("Bad Gateway\\n")
    ('too long', 'busy', 'Bad Gateway')
    >>> said(None), said({"object": "error", "code": 7})
    ('Error code: 400', '{"object": "error", "code": 7}')
    """
    body = getattr(error, "body", None)
    text = None
    if isinstance(body, dict):
        for name in ("error", "detail", "message"):
            value = body.get(name)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail") or value.get("msg")
            if isinstance(value, list):  # FastAPI's validation errors
                value = "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item)
                                  for item in value)
            if isinstance(value, str) and value.strip():
                text = value
                break
        if text is None:
            text = json.dumps(body, default=str)
    elif isinstance(body, (str, bytes)) and body.strip():
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
    text = " ".join((text or error.message or "").split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


_STATUS_ERRORS = {400: openai.BadRequestError, 401: openai.AuthenticationError, 403: openai.PermissionDeniedError,
                  404: openai.NotFoundError, 409: openai.ConflictError, 422: openai.UnprocessableEntityError,
                  429: openai.RateLimitError}


def status_error(response: httpx.Response) -> openai.APIStatusError:
    """The ``openai`` client's error for an error ``response``, built as that client builds it: the
    body as JSON when it parses (its ``error`` member when it has one), else as text; the message
    ``Error code: N`` plus the server's ``message`` when it gives one.

    >>> error = status_error(httpx.Response(429, json={"error": {"message": "slow down", "type": "rate"}},
    ...                                     request=httpx.Request("POST", "http://judge/v1/chat/completions")))
    >>> type(error).__name__, error.status_code, error.body, error.message
    ('RateLimitError', 429, {'message': 'slow down', 'type': 'rate'}, 'Error code: 429 - slow down')
    >>> status_error(httpx.Response(502, text="Bad Gateway\\n", request=error.request)).body
    'Bad Gateway'
    """
    body = text = response.text.strip()
    message = f"Error code: {response.status_code}"
    try:
        body = json.loads(text)
    except ValueError:
        pass
    else:
        inner = body.get("error", body) if isinstance(body, dict) else None
        said = inner.get("message") if isinstance(inner, dict) else None
        if isinstance(said, str) and said:
            message += f" - {said}"
    data = body.get("error", body) if isinstance(body, dict) else body
    kind = _STATUS_ERRORS.get(response.status_code,
                              openai.InternalServerError if response.status_code >= 500 else openai.APIStatusError)
    return kind(message, response=response, body=data)


def mask_error(error: openai.APIError) -> None:
    """Mask every configured secret (:mod:`refine_rft.masking`) in what an ``openai`` error carries from
    the server (its body and message), in place: whoever prints or stores it later sees ``***``."""
    error.body = mask_value(error.body)
    error.message = mask(error.message)
    error.args = tuple(mask_value(arg) for arg in error.args)


def describe_failure(url: str, error: Exception, with_url: bool = True) -> str:
    """One line for a failed request: the status and the server's text, or the kind of connection error.

    >>> describe_failure("http://judge/v1", TimeoutError("timed out"))
    'TimeoutError (timed out) from http://judge/v1'
    """
    if isinstance(error, openai.APIStatusError):
        text = f"HTTP {error.status_code}: {server_error_text(error)}"
    else:
        cause = error.__cause__
        text = f"{type(error).__name__} ({error}{'; ' + str(cause) if cause and str(cause) else ''})"
    return f"{text} from {url}" if with_url else text


def connection_refused(error: Exception) -> bool:
    """Whether a connection error is a refused (or unroutable) connection, not a timeout or a drop:
    the replica is down, so it is taken out at once rather than after several failures."""
    cause, seen = error.__cause__, 0
    while cause is not None and seen < 8:  # httpx's ConnectError, or the OS error under it
        if isinstance(cause, ConnectionRefusedError) or type(cause).__name__ == "ConnectError":
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


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


def reply_content(body: str) -> str | None:
    """The first choice's message text of a chat-completions response body: a string as it is, a
    list of parts as its text parts joined (some gateways send ``[{"type": "text", "text": ...}]``).
    ``None`` for anything else (a number, ``null``, parts without text, a malformed body): the
    judgement fails and is counted, it never crashes the parser.

    >>> reply_content('{"choices": [{"message": {"role": "assistant", "content": "85"}}]}')
    '85'
    >>> reply_content('{"choices": [{"message": {"content": [{"type": "text", "text": "8"}, '
    ...               '{"type": "text", "text": "5"}]}}]}')
    '85'
    >>> [reply_content(body) for body in ('{"choices": [{"message": {"content": 85}}]}',
    ...  '{"choices": [{"message": {"content": null}}]}', '{"choices": []}', 'not json')]
    [None, None, None, None]
    """
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part if isinstance(part, str) else part["text"] for part in content
                 if isinstance(part, str) or (isinstance(part, dict) and part.get("type", "text") == "text"
                                              and isinstance(part.get("text"), str))]
        return "".join(texts) if texts else None
    return None


def content_kind(body: str) -> str:
    """What a reply held instead of text, for the failure message."""
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return f"a body without choices[0].message.content ({body[:100]!r})"
    return f"content {json.dumps(content)[:100]}"


class JudgeClient:
    """Send chat requests to the judge replicas; return the reply text or ``None``.

    Args:
        config: the judge configuration (URLs, model, timeouts, concurrency, retries, routing).
        stats: counters to update (requests, retries, latency); a fresh one if not given.
    """

    def __init__(self, config: JudgeConfig, stats: JudgeStats | None = None):
        self.config = config
        self.stats = stats or JudgeStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: Transport | None = None
        self._keeper: asyncio.Task | None = None  # closes the transport on its loop (_bind_to_running_loop)
        self._endpoints = {url: url.rstrip("/") + "/chat/completions" for url in config.base_urls}
        self._semaphore: asyncio.Semaphore | None = None
        # Replica health outlives an event loop: a replica found down stays out for its cool-down.
        self.router = Router(config.base_urls, concurrency=config.concurrency, load_factor=config.load_factor,
                             max_failures=config.replica_failures, cooldown_s=config.cooldown_s,
                             capacity=config.replica_capacity, rule=config.routing)
        self._cooldowns_seen = 0
        self._request_numbers = itertools.count()
        self._key_prefix = f"refine-rft-{uuid.uuid4().hex}"
        self._bodies = BodyEncoder()
        self.last_failure = ""  # what the latest failed request got, for the failure rule's message

    def _bind_to_running_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        self._release()
        self._loop = loop
        self._transport = Transport(self.config)
        # Connections can only be closed on the loop that opened them. A task on that loop closes them
        # when cancelled: by aclose(), by a later loop taking over (_release), or by asyncio.run,
        # which cancels the tasks left before it closes its loop.
        self._keeper = loop.create_task(_close_when_cancelled(self._transport))
        for state in self.router.state.values():
            state.in_flight = 0
        self._semaphore = asyncio.Semaphore(self.config.concurrency)

    async def _post(self, url: str, messages: list[dict], max_tokens: int) -> str:
        """One chat request to ``url``; the raw response body. Raises the ``openai`` client's errors,
        as that client raises them: :func:`status_error` for a status outside 2xx,
        ``APITimeoutError`` for a timeout and ``APIConnectionError`` for any other failure to get a
        reply, each raised from the transport's own error. Counted as one request, failed or not,
        with its latency."""
        # The body is JSON bytes, each data URL encoded once (:class:`BodyEncoder`), and only the
        # reply text is needed: no typed request or reply models. The idempotency key is unique per
        # request as the openai client's own is, without a uuid4 each time.
        started = time.perf_counter()
        endpoint = self._endpoints[url]
        try:
            pieces = self._bodies.pieces({"model": self.config.model, "messages": messages, "temperature": 0,
                                          "max_tokens": max_tokens})
            key = f"{self._key_prefix}-{next(self._request_numbers)}".encode()
            try:
                status, headers, body = await self._transport.post(url, endpoint, pieces,
                                                                   ((b"Idempotency-Key", key),))
            except httpcore.TimeoutException as error:
                raise openai.APITimeoutError(request=httpx.Request("POST", endpoint)) from error
            except Exception as error:  # refused, dropped, reset, protocol errors: as the openai client
                raise openai.APIConnectionError(request=httpx.Request("POST", endpoint)) from error
            if not 200 <= status < 300:
                raise status_error(httpx.Response(status, headers=headers, content=body,
                                                  request=httpx.Request("POST", endpoint)))
        except BaseException as error:
            self.stats.add(requests=1, request_failures=1, latency_total=time.perf_counter() - started)
            if isinstance(error, openai.APIError):
                mask_error(error)  # whatever the server said back (a 401 echoing the key, say)
            raise
        self.stats.add(requests=1, latency_total=time.perf_counter() - started)
        # A reply that quotes the key is stored, scored and logged without it.
        return mask(body.decode("utf-8", errors="replace"))

    def _text(self, url: str, body: str) -> str | None:
        """The reply text of ``body``, or ``None`` (logged, quoted in :attr:`last_failure`) when its
        content is not text."""
        text = reply_content(body)
        if text is None:
            self.last_failure = f"a reply without text from {url}: {content_kind(body)}"
            logger.warning("judge %s", self.last_failure)
        return text

    def refused(self, url: str, error: openai.APIStatusError,
                what: str = "refused the configuration") -> JudgeConfigError:
        """The error naming the URL, the model and the key's variable for a refusal by ``url``."""
        key_state = "set" if os.environ.get(self.config.api_key_env) else "not set"
        said = server_error_text(error)
        return JudgeConfigError(
            f"judge endpoint {url} {what} (HTTP {error.status_code}: {said}); "
            f"{refusal_hint(error.status_code, said)}: check judge.base_urls ({url}), "
            f"judge.model={self.config.model!r} and the API key in ${self.config.api_key_env} ({key_state})")

    async def chat(self, messages: list[dict], max_tokens: int, key: str | None = None,
                   tried: list[str] | None = None) -> str | None:
        """The judge's reply to ``messages`` (temperature 0), or ``None`` after ``max_retries`` retries
        or for a reply without text. ``key`` (the image digest) chooses the replica
        (:mod:`refine_rft.judge.routing`); a retry avoids the replicas that already failed it.
        ``tried``: replicas that already failed this judgement (avoided too); the replicas this
        request fails on are appended to it."""
        self._bind_to_running_loop()
        with self.router.question(key):
            return await self._chat(messages, max_tokens, key, [] if tried is None else tried)

    def others_up(self, failed: list[str]) -> bool:
        """Whether a replica other than those in ``failed`` may take a request now."""
        return any(url not in failed for url in self.router.available())

    async def _chat(self, messages: list[dict], max_tokens: int, key: str | None, tried: list[str]) -> str | None:
        for attempt in range(self.config.max_retries + 1):
            async with self._semaphore:
                url = self.router.acquire(key, tried)
                health, refused = None, False
                try:
                    body = await self._post(url, messages, max_tokens)
                    health = True
                    return self._text(url, body)
                except openai.APIConnectionError as error:  # timeouts, refused or dropped connections
                    failure, health, refused = error, False, connection_refused(error)
                except openai.APIStatusError as error:
                    if error.status_code in CONFIG_STATUSES:
                        raise self.refused(url, error) from None
                    if not retryable(error.status_code):
                        # Another 4xx: this request is wrong (e.g. too long), not the server busy.
                        self.last_failure = describe_failure(url, error)
                        logger.warning("judge request rejected: %s", self.last_failure)
                        return None
                    # 5xx: the replica is failing; 408 / 409 / 429: busy, which says nothing of health.
                    failure, health = error, (False if error.status_code >= 500 else None)
                finally:
                    self.router.release(url, health, refused)
            self._note_cooldowns()
            tried.append(url)
            if attempt == self.config.max_retries:
                break
            # A dropped or refused connection with another replica up: go there at once.
            elsewhere = isinstance(failure, openai.APIConnectionError) and self.others_up(tried)
            await self._wait_to_retry(attempt, url, failure, at_once=elsewhere)
        self.last_failure = describe_failure(url, failure)
        logger.warning("judge request failed after %d retries: %s", self.config.max_retries, self.last_failure)
        return None

    def _note_cooldowns(self) -> None:
        started = self.router.cooldowns - self._cooldowns_seen
        if started:
            self._cooldowns_seen = self.router.cooldowns
            self.stats.add(cooldowns=started)
            logger.warning("judge replicas cooling down for %.0fs: %s", self.config.cooldown_s,
                           ", ".join(self.router.cooling()))

    async def _wait_to_retry(self, attempt: int, url: str, failure: Exception, at_once: bool = False) -> None:
        # Sleep outside the semaphore: a request waiting out a 429 must not hold a slot.
        delay = 0.0 if at_once else backoff_delay(attempt, self.config, retry_after_seconds(failure))
        self.stats.add(retries=1)
        logger.debug("judge request to %s failed (%s); retry %d in %.2fs", url, type(failure).__name__,
                     attempt + 1, delay)
        await asyncio.sleep(delay)

    async def probe(self, url: str, messages: list[dict], max_tokens: int) -> str:
        """Send ``messages`` to the replica ``url`` with the usual retries; the reply text.

        Unlike :meth:`chat`, every failure raises: a 4xx other than 408 / 409 / 429 as
        :class:`JudgeConfigError` (the probe is a small, well-formed request, so a refusal can only
        be the configuration, whatever status code the server or gateway picks for it), a server
        that still fails or cannot be reached after the retries, or a reply without text, as
        :class:`JudgeUnavailable`.
        """
        self._bind_to_running_loop()
        for attempt in range(self.config.max_retries + 1):
            try:
                body = await self._post(url, messages, max_tokens)
            except openai.APIConnectionError as error:
                failure = error
            except openai.APIStatusError as error:
                if not retryable(error.status_code):
                    raise self.refused(url, error, "refused the health check") from None
                failure = error
            else:
                text = self._text(url, body)
                if text is None:
                    raise JudgeUnavailable(
                        f"judge endpoint {url} answered the health check with {content_kind(body)}, not text: "
                        f"is judge.model={self.config.model!r} a chat model?")
                return text
            if attempt < self.config.max_retries:
                await self._wait_to_retry(attempt, url, failure)
        raise JudgeUnavailable(
            f"judge endpoint {url} did not answer the health check after {self.config.max_retries} retries "
            f"({describe_failure(url, failure, with_url=False)}): is the server at judge.base_urls ({url}) up, "
            f"serving judge.model={self.config.model!r}? (API key from ${self.config.api_key_env})")

    def _release(self) -> None:
        """Have the loop the client is bound to close its connections, when that loop next runs (a
        closed loop has closed them already: asyncio.run cancelled the keeper)."""
        if self._keeper is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._keeper.cancel)
        self._keeper, self._transport, self._loop = None, None, None

    async def aclose(self) -> None:
        """Close the connections: on the loop that used them, closed when this returns; called from
        another loop, that loop closes them when it next runs. The client can be used again after
        (it opens new connections)."""
        if self._keeper is not None and self._loop is asyncio.get_running_loop():
            keeper, transport = self._keeper, self._transport
            self._keeper, self._transport, self._loop = None, None, None
            keeper.cancel()  # its own close then finds nothing left to close
            await transport.aclose()
        else:
            self._release()


async def _close_when_cancelled(transport: Transport) -> None:
    """Wait until cancelled, then close ``transport``: the task that owns a loop's connections."""
    try:
        await asyncio.get_running_loop().create_future()
    except asyncio.CancelledError:  # the signal to close, not a failure
        await transport.aclose()
