"""A real OpenAI-compatible HTTP judge on 127.0.0.1 with scripted behaviour, for tests and benchmarks.

It speaks the chat-completions protocol (``POST /v1/chat/completions``, ``GET /v1/models``) from
a ``ThreadingHTTPServer`` in a background thread, so the real ``openai`` client talks to it over
real sockets, with many requests in flight at once. What it answers is scripted:

- ``reply``: a string (always that reply) or a function ``reply(request) -> behaviour`` of the
  parsed request body; by default a score derived from a hash of the student text (so GRPO
  groups get different rewards) or, for Reasoning-Answer prompts, a valid RSC JSON;
- ``script``: behaviours served first, one per request, in arrival order (then ``reply``);
- ``latency``: seconds every request waits before its behaviour;
- ``sees_images``: the health check's sight question (:data:`~refine_rft.judge.health.SIGHT_QUESTION`)
  is answered with the colour the server sees in the image it was sent (decoded from the data
  URL), ahead of ``script`` and ``reply``; with ``sees_images=False`` the server is like a text-only
  model: the sight question gets the scripted reply like any other request.

Stopping the server (leaving the ``with`` block, or :meth:`ScriptedJudgeServer.stop`) also closes
its open keep-alive connections, as a stopped process would: clients see dropped, then refused
connections. ``port`` binds a given port (to restart a stopped replica at the same URL).

A behaviour is a string (a 200 reply with that content), :class:`Content` (a 200 reply whose
content is not a string), :class:`Status` (an HTTP error, e.g.
``Status(429, retry_after=0.1)``, ``Status(500)``, or any body and headers: :data:`LITELLM_BAD_KEY`
and :data:`LITELLM_BAD_MODEL` answer as the LiteLLM gateway does), :data:`HANG` (never answer; the
client must time out) or :data:`DROP` (close the connection without a response).

Example:
    >>> import openai
    >>> with ScriptedJudgeServer(reply="Score: 85", script=[Status(500)]) as server:
    ...     client = openai.OpenAI(base_url=server.url, api_key="EMPTY", max_retries=1)
    ...     reply = client.chat.completions.create(model="judge", messages=[{"role": "user", "content": "hi"}])
    ...     client.close()
    >>> reply.choices[0].message.content, server.count
    ('Score: 85', 2)
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import multiprocessing
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from refine_rft.judge.health import SIGHT_QUESTION
from refine_rft.judge.prompts import BEGIN, NONCE, markers


@dataclass(frozen=True)
class Status:
    """Answer with HTTP ``code``: a ``Retry-After`` header when ``retry_after`` is set, any other
    ``headers``, and the body ``{"error": {"message": message, ...}}`` or ``body`` (a JSON-able value)."""

    code: int
    retry_after: float | None = None
    message: str = "scripted error"
    headers: tuple[tuple[str, str], ...] = ()
    body: object = None
    text: str | None = None  # a plain-text body instead of JSON (as some proxies send)


@dataclass(frozen=True)
class Content:
    """A 200 reply whose message ``content`` is ``value`` as it is: a number, ``None`` or a list of
    parts, as some gateways send."""

    value: object


def litellm_error(code: int, message: str, error_type: str, headers=()) -> Status:
    """An error as the LiteLLM proxy sends it: its status and body shape (``code`` as a string)."""
    return Status(code, headers=tuple(headers), body={"error": {"message": message, "type": error_type,
                                                                "param": None, "code": str(code)}})


# What LiteLLM 1.108 answers (proxy with a master key, no database) for a key it does not know
# (the openai client sends "EMPTY" when no key is set) and for a model name no route serves:
# both HTTP 400, not 401 / 404. Recorded from a real proxy in front of this server.
LITELLM_BAD_KEY = litellm_error(400, "No connected db.", "no_db_connection")
LITELLM_BAD_MODEL = litellm_error(
    400, "/chat/completions: Invalid model name passed in model=teacher. "
         "Call `/v1/models` to view available models for your key.", "invalid_request_error")


def upstream_rate_limit(seconds: float) -> Status:
    """A 429 passed on by LiteLLM: the upstream's Retry-After arrives as ``llm_provider-retry-after``."""
    return litellm_error(429, "litellm.RateLimitError: RateLimitError: OpenAIException - scripted error",
                         "throttling_error",
                         headers=(("llm_provider-retry-after", f"{seconds:g}"),))


# A valid Reasoning-Answer reply, to script one (the health check of ``refine-rft judge`` asks for it).
RSC_REPLY = json.dumps({"RSC_A": 100, "RSC_A_feedback": "Right.", "RSC_U": 90, "RSC_U_feedback": "Sound.",
                        "RSC_O": 100, "RSC_O_feedback": "Right."})

HANG = "<hang>"
DROP = "<drop>"


def request_text(request: dict) -> str:
    """All text parts of all messages of a chat request, joined by newlines."""
    parts = []
    for message in request.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [part.get("text", "") for part in content if part.get("type") == "text"]
    return "\n".join(parts)


def request_nonce(request: dict) -> str | None:
    """The delimiter code of a judge request (the last BEGIN delimiter's), ``None`` if none."""
    found = re.findall(re.escape(BEGIN).replace(re.escape("{nonce}"), f"({NONCE.pattern})"), request_text(request))
    return found[-1] if found else None


def student_text(request: dict) -> str:
    """The student response inside the judge prompt's delimiters ('' if none)."""
    text, nonce = request_text(request), request_nonce(request)
    if nonce is None:
        return ""
    begin, end = markers(nonce)
    start, stop = text.rfind(begin), text.rfind(end)
    return text[start + len(begin):stop].strip() if 0 <= start < stop else ""


def student_texts(request: dict) -> list[str]:
    """Every fenced student response of a judge request, in order (several for a group judgement)."""
    text, found = request_text(request), []
    for nonce in re.findall(re.escape(BEGIN).replace(re.escape("{nonce}"), f"({NONCE.pattern})"), text):
        begin, end = markers(nonce)
        start = text.find(begin)
        stop = text.find(end, start)
        found.append(text[start + len(begin):stop].strip() if 0 <= start < stop else "")
    return found


def hashed_score(student: str) -> int:
    """The scripted teacher's score of one student text: 0-100 from its hash (deterministic)."""
    return int(hashlib.sha256(student.encode()).hexdigest(), 16) % 101


def hashed_reply(request: dict) -> str:
    """The default reply: for a Reasoning-Answer prompt a valid RSC JSON; for a group judgement
    (several fenced responses) one ``k: score`` line each; else a score 0-100 that depends only on
    the student text (deterministic, and different across a GRPO group)."""
    students = student_texts(request)
    if len(students) > 1:
        return "\n".join(f"{k}: {hashed_score(text)}" for k, text in enumerate(students, start=1))
    score = hashed_score(student_text(request))
    if "RSC_A" in request_text(request):
        return json.dumps({"RSC_A": score, "RSC_A_feedback": "Scripted.", "RSC_U": score,
                           "RSC_U_feedback": "Scripted.", "RSC_O": score, "RSC_O_feedback": "Scripted."})
    return str(score)


PALETTE = {"red": (220, 30, 30), "green": (30, 160, 60), "blue": (30, 60, 220), "yellow": (230, 210, 40),
           "white": (245, 245, 245), "black": (10, 10, 10), "grey": (128, 128, 128)}


def seen_colour(request: dict) -> str:
    """The name of the colour nearest to the mean of the first image in ``request`` ('none' without one)."""
    from PIL import Image, ImageStat

    for message in request.get("messages", []):
        for part in message.get("content") if isinstance(message.get("content"), list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                data = part["image_url"]["url"].split(",", 1)[1]
                mean = ImageStat.Stat(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")).mean
                return min(PALETTE, key=lambda name: sum((a - b) ** 2 for a, b in zip(PALETTE[name], mean)))
    return "none"


class ScriptedJudgeServer:
    """Context manager running the scripted judge; ``server.url`` is its ``.../v1`` base URL.

    Attributes:
        requests: parsed bodies of every chat request received, in arrival order.
        count: how many chat requests arrived (including errored, hung and dropped ones).
        max_in_flight: the most chat requests being handled at the same moment.
    """

    def __init__(self, reply=hashed_reply, script=(), latency: float = 0.0, model: str = "scripted-judge",
                 hang_seconds: float = 60.0, sees_images: bool = True, port: int = 0,
                 echo_authorization: bool = False):
        self.reply = reply
        # A careless gateway: "{authorization}" in a reply or error text becomes the request's
        # Authorization header, and every response carries it back in X-Echoed-Authorization.
        self.echo_authorization = echo_authorization
        self.sees_images = sees_images
        self.port = port
        self._connections: set[socket.socket] = set()
        self.script = deque(script)
        self.latency = latency
        self.model = model
        self.hang_seconds = hang_seconds
        self.requests: list[dict] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def url(self) -> str:
        return self._url

    def _next_behaviour(self, request: dict):
        with self._lock:
            self.requests.append(request)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            sight = self.sees_images and SIGHT_QUESTION in request_text(request)
            scripted = self.script.popleft() if self.script and not sight else None
        if sight:
            return seen_colour(request).capitalize() + "."
        if scripted is not None:
            return scripted
        return self.reply(request) if callable(self.reply) else self.reply

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def __enter__(self) -> ScriptedJudgeServer:
        self._stop.clear()
        self._server = _Server(("127.0.0.1", self.port), _handler_for(self))
        host, self.port = self._server.server_address[:2]
        self._url = f"http://{host}:{self.port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="scripted-judge")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving: refuse new connections and drop the open ones."""
        if self._server is None:
            return
        self._stop.set()  # releases hanging requests
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
        self._server = None


def _handler_for(server: ScriptedJudgeServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
        # Headers and body go out as separate writes; with Nagle's algorithm on, the body waits for
        # the client's delayed ACK (~40 ms per request), which would swamp any latency scripted here.
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def setup(self) -> None:
            super().setup()
            with server._lock:
                server._connections.add(self.connection)

        def finish(self) -> None:
            with server._lock:
                server._connections.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass

        def _send_json(self, code: int, payload, headers: dict | None = None, text: str | None = None) -> None:
            body = (text if text is not None else json.dumps(payload))
            headers = dict(headers or {})
            if server.echo_authorization:
                said = self.headers.get("Authorization", "")
                body = body.replace("{authorization}", said)
                headers["X-Echoed-Authorization"] = said
            body = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain" if text is not None else "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send_json(200, {"object": "list", "data": [
                    {"id": server.model, "object": "model", "created": 0, "owned_by": "scripted"}]})
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            request = json.loads(raw or b"{}")
            behaviour = server._next_behaviour(request)
            try:
                if server.latency:
                    time.sleep(server.latency)
                self._act(behaviour, request)
            finally:
                server._done()

        def _act(self, behaviour, request: dict) -> None:
            if behaviour == HANG:
                server._stop.wait(server.hang_seconds)
                self.close_connection = True
            elif behaviour == DROP:
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
            elif isinstance(behaviour, Status):
                headers = dict(behaviour.headers)
                if behaviour.retry_after is not None:
                    headers["Retry-After"] = str(behaviour.retry_after)
                body = behaviour.body
                if body is None:
                    body = {"error": {"message": behaviour.message, "type": "scripted", "code": behaviour.code}}
                self._send_json(behaviour.code, body, headers, text=behaviour.text)
            else:
                content = behaviour.value if isinstance(behaviour, Content) else str(behaviour)
                self._send_json(200, {
                    "id": f"chatcmpl-{server.count}", "object": "chat.completion", "created": int(time.time()),
                    "model": request.get("model", server.model),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}})

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 refuses bursts of concurrent connections
    daemon_threads = True


class ScriptedJudgeProcess:
    """The scripted judge in a process of its own, as a real judge runs on its own machine: its
    CPU (parsing bodies, decoding images) is not charged to the client being measured. For
    benchmarks. Keyword arguments go to :class:`ScriptedJudgeServer` in that process, so they must
    pickle: a reply string, not a function.

    ``url`` is its base URL inside the ``with`` block; on leaving it, ``count`` (chat requests),
    ``max_in_flight`` and ``judgements`` (chat requests other than health checks) are read back.

    >>> with ScriptedJudgeProcess(latency=0.0) as server:
    ...     import openai
    ...     client = openai.OpenAI(base_url=server.url, api_key="-")
    ...     reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    ...     client.close()
    >>> server.count, server.judgements, reply.choices[0].message.content.isdigit()
    (1, 1, True)
    """

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.count = self.max_in_flight = self.judgements = 0

    def __enter__(self) -> ScriptedJudgeProcess:
        context = multiprocessing.get_context("spawn")  # no copy of the caller's threads or CUDA state
        self._replies, self._stop = context.Queue(), context.Event()
        self._process = context.Process(target=_serve_until_stopped, daemon=True,
                                        args=(self.kwargs, self._replies, self._stop))
        self._process.start()
        self.url = self._replies.get(timeout=60)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.count, self.max_in_flight, self.judgements = self._replies.get(timeout=30)
        self._process.join(timeout=30)


def _serve_until_stopped(kwargs: dict, replies, stop) -> None:
    from refine_rft.judge.health import PROBE_TEXT

    with ScriptedJudgeServer(**kwargs) as server:
        replies.put(server.url)
        stop.wait()
        # The health checks (probe and sight questions) all carry PROBE_TEXT.
        judgements = sum(PROBE_TEXT not in request_text(request) for request in server.requests)
        replies.put((server.count, server.max_in_flight, judgements))
