"""Scrape serving engines' /metrics over HTTP (the I/O edge).

Every endpoint is scraped concurrently with a short per-request timeout, and the
whole scrape has a budget per sample: an endpoint that has not answered in time
is reported unreachable while the others' results are kept, so one slow or broken
engine never delays the sample or hides the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from resource_agent.scrapehttp import LoopClient, describe_failure
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


async def scrape_endpoint(client: httpx.AsyncClient, endpoint: Endpoint, timeout: float) -> EndpointScrape:
    try:
        response = await client.get(endpoint.url)
        response.raise_for_status()
        if len(response.content) > MAX_BODY_BYTES:
            raise ExpositionError(f"/metrics body larger than {MAX_BODY_BYTES} bytes")
        groups = parse_exposition(response.text, endpoint.engine)
    except (httpx.HTTPError, ExpositionError) as exc:
        return EndpointScrape(endpoint, error=f"{redact_url(endpoint.url)}: {describe_failure(exc, timeout)}")
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


class Scraper:
    """Synchronous front for `scrape_endpoints`, on a private event loop thread with a keep-alive client."""

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        budget: float = DEFAULT_BUDGET_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout, self.budget = timeout, budget
        self._http = LoopClient("serving-scraper", timeout, transport)

    def scrape(self, endpoints: Sequence[Endpoint]) -> list[EndpointScrape]:
        return self._http.run(scrape_endpoints(self._http.client, endpoints, self.timeout, self.budget), timeout=self.budget + 5.0)

    def close(self) -> None:
        self._http.close()
