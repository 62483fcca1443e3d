"""Scrape serving engines' /metrics over HTTP (the I/O edge).

Every endpoint is scraped concurrently with a short per-request timeout, and the
whole scrape has a budget per sample: an endpoint that has not answered in time
is reported unreachable while the others' results are kept, so one slow or broken
engine never delays the sample or hides the others.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from resource_agent.serving.discovery import Endpoint, redact_url
from resource_agent.serving.metrics import EngineMetrics, ExpositionError, parse_exposition

DEFAULT_TIMEOUT_SECONDS = 1.0
DEFAULT_BUDGET_SECONDS = 2.0
MAX_BODY_BYTES = 16 * 1024 * 1024  # a vLLM /metrics body is ~100 KiB; refuse runaway ones


@dataclass(frozen=True)
class EndpointScrape:
    endpoint: Endpoint
    groups: tuple[EngineMetrics, ...] = ()
    error: str | None = None


def _describe(exc: Exception, timeout: float) -> str:
    """A short reason without the response body or URL query (they may carry secrets)."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, ExpositionError):
        return str(exc)
    return type(exc).__name__


async def scrape_endpoint(client: httpx.AsyncClient, endpoint: Endpoint, timeout: float) -> EndpointScrape:
    try:
        response = await client.get(endpoint.url)
        response.raise_for_status()
        if len(response.content) > MAX_BODY_BYTES:
            raise ExpositionError(f"/metrics body larger than {MAX_BODY_BYTES} bytes")
        groups = parse_exposition(response.text, endpoint.engine)
    except (httpx.HTTPError, ExpositionError) as exc:
        return EndpointScrape(endpoint, error=f"{redact_url(endpoint.url)}: {_describe(exc, timeout)}")
    return EndpointScrape(endpoint, groups=tuple(groups))


async def _bounded(client: httpx.AsyncClient, endpoint: Endpoint, timeout: float, budget: float) -> EndpointScrape:
    try:
        return await asyncio.wait_for(scrape_endpoint(client, endpoint, timeout), timeout=budget)
    except TimeoutError:
        return EndpointScrape(endpoint, error=f"{redact_url(endpoint.url)}: no answer within the {budget:g}s budget")


async def scrape_endpoints(
    client: httpx.AsyncClient,
    endpoints: Sequence[Endpoint],
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    budget: float = DEFAULT_BUDGET_SECONDS,
) -> list[EndpointScrape]:
    """Scrape every endpoint concurrently; returns within about `budget` seconds."""
    return list(await asyncio.gather(*(_bounded(client, endpoint, timeout, budget) for endpoint in endpoints)))


def make_client(timeout: float = DEFAULT_TIMEOUT_SECONDS, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """An HTTP client with a short timeout and no proxy from the environment."""
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout), trust_env=False, follow_redirects=False, transport=transport)


class Scraper:
    """Synchronous front for `scrape_endpoints`, on a private event loop thread with a keep-alive client."""

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        budget: float = DEFAULT_BUDGET_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout, self.budget = timeout, budget
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="serving-scraper", daemon=True)
        self._thread.start()
        self._client = asyncio.run_coroutine_threadsafe(self._make_client(transport), self._loop).result()

    async def _make_client(self, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
        return make_client(self.timeout, transport)

    def scrape(self, endpoints: Sequence[Endpoint]) -> list[EndpointScrape]:
        future = asyncio.run_coroutine_threadsafe(scrape_endpoints(self._client, endpoints, self.timeout, self.budget), self._loop)
        return future.result(timeout=self.budget + 5.0)

    def close(self) -> None:
        if not self._loop.is_running():
            return
        asyncio.run_coroutine_threadsafe(self._client.aclose(), self._loop).result(timeout=5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5.0)
        self._loop.close()
