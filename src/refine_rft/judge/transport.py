"""The judge's HTTP transport: keep-alive connection pools of ``httpcore``, the HTTP engine of ``httpx``
and so of the official ``openai`` client (``httpcore2``/``httpx2`` where the installed ``openai`` uses
those).

A judge in a training loop sends hundreds of requests per step, and on a small CPU their cost per
request is the client's bottleneck (``benchmarks/judge_throughput.py`` prints it). The ``openai``
client's ``post`` wraps ``httpx.AsyncClient``, which wraps an ``httpcore`` pool, which runs on
``anyio``; each layer costs CPU per request. :class:`Transport` keeps the pool and drops the layers
above it, keeping what a judge needs from them: the proxy from the environment (``HTTPS_PROXY``,
``NO_PROXY``, ...), httpx's TLS context (``SSL_CERT_FILE``), its keep-alive expiry and one timeout for
every phase. Plain-HTTP endpoints reached without a proxy (a teacher served by ``vllm serve`` next to
the trainer) run on :class:`AsyncioBackend`, ``httpcore``'s network interface implemented on asyncio's
own streams; every other endpoint on ``httpcore``'s default backend. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import urllib.parse
import urllib.request

try:  # the HTTP libraries the installed openai client is built on
    import httpcore2 as httpcore
    import httpx2 as httpx
except ImportError:  # openai before its move to httpx2
    import httpcore
    import httpx

from refine_rft.judge.config import JudgeConfig


class Body:
    """A request body sent as its pieces (:meth:`~refine_rft.judge.wire.BodyEncoder.pieces`), so that
    no request copies its picture.

    >>> body = Body([b'{"a": ', b'"x"', b"}"])
    >>> body.length, asyncio.run(_joined(body))
    (10, b'{"a": "x"}')
    """

    def __init__(self, pieces: list[bytes]):
        self.pieces = pieces
        self.length = sum(len(piece) for piece in pieces)

    async def __aiter__(self):
        for piece in self.pieces:
            yield piece


async def _joined(body) -> bytes:
    return b"".join([piece async for piece in body])


def environment_proxy(url: str) -> str | None:
    """The proxy the environment sets for ``url`` (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``,
    less the hosts of ``NO_PROXY``), as httpx and the openai client read it; ``None`` for none.

    >>> import os
    >>> os.environ.update(HTTPS_PROXY="http://proxy:3128", NO_PROXY="localhost,127.0.0.1")
    >>> environment_proxy("https://api.example.com/v1"), environment_proxy("http://127.0.0.1:8000/v1")
    ('http://proxy:3128', None)
    >>> for name in ("HTTPS_PROXY", "NO_PROXY"):
    ...     del os.environ[name]
    """
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


async def _within(awaitable, timeout: float | None):
    return await (asyncio.wait_for(awaitable, timeout) if timeout is not None else awaitable)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One plain TCP connection on asyncio's streams, raising httpcore's errors."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader, self._writer = reader, writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return await _within(self._reader.read(max_bytes), timeout)  # b"" once the server closed it
        except asyncio.TimeoutError as error:
            raise httpcore.ReadTimeout(str(error) or "read timed out") from error
        except OSError as error:
            raise httpcore.ReadError(str(error)) from error

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._writer.is_closing():  # asyncio would drop the bytes with a log line, not raise
            raise httpcore.WriteError("the connection was closed")
        try:
            self._writer.write(buffer)
            if self._writer.transport.get_write_buffer_size() > 1 << 16:  # wait only when data piles up
                await _within(self._writer.drain(), timeout)
        except asyncio.TimeoutError as error:
            raise httpcore.WriteTimeout(str(error) or "write timed out") from error
        except OSError as error:
            raise httpcore.WriteError(str(error)) from error

    async def aclose(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()  # the socket is released when this returns
        except OSError:  # a connection the server reset is closed all the same
            pass

    def get_extra_info(self, info: str):
        if info == "socket":
            return self._writer.get_extra_info("socket")
        if info in ("client_addr", "server_addr"):
            return self._writer.get_extra_info("sockname" if info == "client_addr" else "peername")
        if info == "is_readable":  # idle and readable: the server closed it, so it cannot be reused
            return self._reader.at_eof() or self._writer.is_closing()
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """``httpcore``'s network interface on asyncio's own streams, for plain TCP (no TLS, no Unix
    sockets): about a quarter of a millisecond of CPU less per request than its default ``anyio``
    backend on a 2-core machine (``benchmarks/judge_throughput.py``)."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options=None) -> AsyncioStream:
        try:
            reader, writer = await _within(asyncio.open_connection(
                host, port, limit=1 << 20, local_addr=(local_address, 0) if local_address else None), timeout)
        except asyncio.TimeoutError as error:
            raise httpcore.ConnectTimeout(str(error) or "connect timed out") from error
        except OSError as error:
            raise httpcore.ConnectError(str(error)) from error
        for option in socket_options or ():
            writer.get_extra_info("socket").setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class Transport:
    """Keep-alive HTTP/1.1 connection pools (``httpcore``) for the judge endpoints, one per proxy
    and kind of connection, shared by every request to the endpoints behind it. :meth:`post` sends a
    body's pieces and returns ``(status, headers, body)``; it raises httpcore's errors, which
    :meth:`~refine_rft.judge.client.JudgeClient._post` turns into the openai client's.

    Args:
        config: the endpoints (``base_urls``), timeout, concurrency and the API key's variable.
    """

    def __init__(self, config: JudgeConfig):
        timeout = config.timeout
        self._extensions = {"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}}
        self._headers = [(b"Authorization", f"Bearer {config.api_key()}".encode()),
                         (b"Content-Type", b"application/json"), (b"Accept", b"application/json"),
                         (b"User-Agent", b"refine-rft")]
        pools: dict[tuple[str | None, bool], httpcore.AsyncConnectionPool] = {}
        self._pools: dict[str, httpcore.AsyncConnectionPool] = {}
        for url in config.base_urls:
            proxy = environment_proxy(url)
            plain = proxy is None and urllib.parse.urlsplit(url).scheme == "http"
            if (proxy, plain) not in pools:
                # httpx's defaults: the openai client's connection limits, idle connections closed
                # after 5 s (servers close theirs too: a stale one would fail a request).
                pools[proxy, plain] = httpcore.AsyncConnectionPool(
                    ssl_context=None if plain else httpx.create_ssl_context(),
                    proxy=httpcore.Proxy(proxy) if proxy else None,
                    max_connections=1000, max_keepalive_connections=max(100, config.concurrency),
                    keepalive_expiry=5.0, network_backend=AsyncioBackend() if plain else None)
            self._pools[url] = pools[proxy, plain]
        self._distinct = list(pools.values())

    async def post(self, url: str, endpoint: str, pieces: list[bytes],
                   headers: tuple[tuple[bytes, bytes], ...] = ()) -> tuple[int, list, bytes]:
        """POST ``pieces`` (one JSON body) to ``endpoint`` of the replica ``url``; (status, headers,
        body), the body read whole."""
        body = Body(pieces)
        response = await self._pools[url].request(
            "POST", endpoint, content=body, extensions=self._extensions,
            headers=[*self._headers, *headers, (b"Content-Length", str(body.length).encode())])
        return response.status, response.headers, response.content

    async def aclose(self) -> None:
        """Close every connection (call on the event loop that used them)."""
        await asyncio.gather(*(pool.aclose() for pool in self._distinct))
