"""The LMCache and serving-engine scrapers' HTTP client (an edge both use): a keep-alive httpx.AsyncClient on a
private event-loop thread, for the synchronous collectors.

Pods' /metrics are plain http. An https:// target gets httpx's verifying transport (certifi's CA bundle), built at
the first such request: building it parses ~150 certificates into an SSL context, ~3 MiB of the agent's RSS for the
first client and ~0.7 MiB for the second, which a node whose engines all speak http never needs.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


class _VerifiedTlsOnFirstUse(httpx.AsyncBaseTransport):
    """httpx's default transport for https:// URLs (certificates verified against certifi's bundle), built when the
    first https request comes. Requests come from one event loop, so building it needs no lock."""

    def __init__(self) -> None:
        self._transport: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._transport is None:
            self._transport = httpx.AsyncHTTPTransport(trust_env=False)
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()


def make_client(timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """A client with a short connect+read timeout, no proxy from the environment and no redirects; `transport`
    (tests) replaces the network for every URL."""
    options: dict[str, Any] = {"timeout": httpx.Timeout(timeout), "trust_env": False, "follow_redirects": False}
    if transport is not None:
        return httpx.AsyncClient(transport=transport, **options)
    # http:// goes through a transport whose SSL context has no CA loaded (never used for TLS: https:// is mounted
    # on the verifying transport; were it used, verification would fail, not pass).
    plain = httpx.AsyncHTTPTransport(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), trust_env=False)
    return httpx.AsyncClient(transport=plain, mounts={"https://": _VerifiedTlsOnFirstUse()}, **options)


def describe_failure(exc: Exception, timeout: float) -> str:
    """A short reason without the response body or URL query (they may carry secrets)."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, ValueError):  # the parsers' ExpositionError: says what was wrong with the body
        return str(exc)
    return type(exc).__name__


class LoopClient:
    """A `make_client` client on its own event-loop thread (daemon, named `name`); `run` waits for a coroutine."""

    def __init__(self, name: str, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()
        self.client: httpx.AsyncClient = self.run(self._make(timeout, transport), timeout=30.0)

    @staticmethod
    async def _make(timeout: float, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
        return make_client(timeout, transport)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=timeout)

    def close(self) -> None:
        if not self._loop.is_running():
            return
        self.run(self.client.aclose(), timeout=5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5.0)
        self._loop.close()
