"""Scrape LMCache internal API servers over HTTP (the I/O edge).

Each port is asked for `/metrics` (required), `/conf` and `/inference_info`
(optional) with a short per-request timeout. All ports of all instances are
scraped concurrently, and each instance gets a total budget: an instance that
has not answered in time is reported unreachable while the others' results
are kept, so one slow or broken instance never delays the sample.

`Scraper` gives the synchronous collector a private event loop thread with a
long-lived HTTP client (keep-alive across samples); `scrape_instances` is the
async core for callers that have their own loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from resource_agent.lmcache.discovery import Instance
from resource_agent.lmcache.metrics import ExpositionError, PortMetrics, parse_exposition
from resource_agent.scrapehttp import LoopClient, describe_failure

DEFAULT_TIMEOUT_SECONDS = 1.0
DEFAULT_BUDGET_SECONDS = 2.0


@dataclass(frozen=True)
class PortScrape:
    """What one port answered. `conf` is raw (may hold credentials): derive facts, never log it."""

    url: str
    metrics: PortMetrics | None = None
    conf: dict[str, Any] | None = None
    inference_info: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class InstanceScrape:
    instance: Instance
    ports: tuple[PortScrape, ...]


async def _get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any] | None:
    """An optional JSON endpoint: None when absent, failing or not a JSON object."""
    try:
        response = await client.get(url)
        if response.status_code != 200:
            return None
        body = json.loads(response.text)
    except (httpx.HTTPError, ValueError):
        return None
    return body if isinstance(body, dict) else None


async def scrape_port(client: httpx.AsyncClient, base_url: str, timeout: float) -> PortScrape:
    """Scrape one port: /metrics must answer; /conf and /inference_info are best effort."""
    try:
        metrics_response, conf, info = await asyncio.gather(
            client.get(f"{base_url}/metrics"),
            _get_json(client, f"{base_url}/conf"),
            _get_json(client, f"{base_url}/inference_info"),
        )
        metrics_response.raise_for_status()
        metrics = parse_exposition(metrics_response.text)
    except (httpx.HTTPError, ExpositionError) as exc:
        return PortScrape(url=base_url, error=f"{base_url}/metrics: {describe_failure(exc, timeout)}")
    return PortScrape(url=base_url, metrics=metrics, conf=conf, inference_info=info)


async def scrape_instance(client: httpx.AsyncClient, instance: Instance, timeout: float, budget: float) -> InstanceScrape:
    """All ports of one instance, within `budget` seconds in total."""
    try:
        ports = await asyncio.wait_for(
            asyncio.gather(*(scrape_port(client, url, timeout) for url in instance.urls)), timeout=budget
        )
    except TimeoutError:
        reason = f"no answer within the {budget:g}s budget"
        return InstanceScrape(instance, tuple(PortScrape(url=url, error=f"{url}: {reason}") for url in instance.urls))
    return InstanceScrape(instance, tuple(ports))


async def scrape_instances(
    client: httpx.AsyncClient,
    instances: Sequence[Instance],
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    budget: float = DEFAULT_BUDGET_SECONDS,
) -> list[InstanceScrape]:
    """Scrape every instance concurrently; the call returns within about `budget` seconds."""
    return list(await asyncio.gather(*(scrape_instance(client, instance, timeout, budget) for instance in instances)))


class Scraper:
    """Synchronous front for `scrape_instances`, on a private event loop thread."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT_SECONDS, budget: float = DEFAULT_BUDGET_SECONDS) -> None:
        self.timeout, self.budget = timeout, budget
        self._http = LoopClient("lmcache-scraper", timeout)

    def scrape(self, instances: Sequence[Instance]) -> list[InstanceScrape]:
        """Scrape all instances; returns within the budget (plus scheduling slack)."""
        return self._http.run(scrape_instances(self._http.client, instances, self.timeout, self.budget), timeout=self.budget + 5.0)

    def close(self) -> None:
        self._http.close()
