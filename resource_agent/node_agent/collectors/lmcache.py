"""The "lmcache" collector: one LMCacheInstanceSample per LMCache instance on the node.

Instances come from `CollectorContext.lmcache_urls` and, when enabled, from
annotated pods on this node (see resource_agent.lmcache.discovery; refreshed
every `lmcache.discovery-interval` seconds, the last good list kept when the
API server is unreachable). An unreachable instance is a sample with
`reachable=False`, not a collector failure; a wrong URL spec is such a sample
too, so the rest is still collected.

Options (CollectorContext.options): `lmcache.discover-pods` (true/false;
default: true in a cluster when the node name is known),
`lmcache.discovery-interval` (s, 60), `lmcache.timeout` (s per request, 1),
`lmcache.budget` (s per instance and sample, 2).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from resource_agent.api.samples import LMCacheInstanceSample, LMCacheSample, Sample
from resource_agent.lmcache.config import redact_url, to_bool
from resource_agent.lmcache.discovery import DiscoveryError, Instance, instances_from_pods, list_node_pods, merge, parse_url_spec
from resource_agent.lmcache.metrics import Histogram
from resource_agent.lmcache.sample import instance_sample
from resource_agent.node_agent.collectors.base import Collector, CollectorContext, CollectorUnavailable, register_collector

if TYPE_CHECKING:
    from resource_agent.lmcache.client import Scraper

log = logging.getLogger(__name__)

PodLister = Callable[[str], list[dict[str, Any]]]


class LMCacheCollector(Collector):
    name = "lmcache"

    def __init__(
        self,
        context: CollectorContext,
        scraper: Scraper | None = None,
        list_pods: PodLister | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        options = context.options
        self._direct: list[Instance] = []
        self._bad_specs: list[LMCacheInstanceSample] = []
        for spec in context.lmcache_urls:
            try:
                self._direct.append(parse_url_spec(spec))
            except DiscoveryError as exc:
                self._bad_specs.append(LMCacheInstanceSample(instance=redact_url(spec), reachable=False, error=str(exc)))
        in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and context.node_name is not None
        discover = to_bool(options.get("lmcache.discover-pods", in_cluster)) and context.node_name is not None
        self._node = context.node_name
        self._list_pods = (list_pods or list_node_pods) if discover else None
        self._discovery_interval = float(options.get("lmcache.discovery-interval", 60.0))
        self._discovered: list[Instance] = []
        self._discovered_at: float | None = None
        self._clock = clock
        self._scraper = scraper  # started on the first scrape: a node with nothing to scrape keeps no loop, thread or client
        self._scraper_options = {name: float(options[f"lmcache.{name}"]) for name in ("timeout", "budget") if f"lmcache.{name}" in options}
        self._histograms: dict[str, dict[str, Histogram]] = {}
        self._unreachable: set[str] = set()

    def _refresh_pods(self) -> None:
        if self._list_pods is None or self._node is None:
            return
        now = self._clock()
        if self._discovered_at is not None and now - self._discovered_at < self._discovery_interval:
            return
        self._discovered_at = now
        try:
            pods = self._list_pods(self._node)
        except Exception as exc:  # the API server being away must not stop scraping known instances
            log.warning("lmcache pod discovery failed, keeping %d known instances: %s", len(self._discovered), type(exc).__name__)
            return
        self._discovered, errors = instances_from_pods(pods)
        for error in errors:
            log.warning("lmcache pod discovery: %s", error)

    def instances(self) -> list[Instance]:
        """The instances to scrape now."""
        self._refresh_pods()
        return merge(self._direct, self._discovered)

    def update(self, sample: Sample) -> None:
        instances = self.instances()
        if not instances and not self._bad_specs:
            raise CollectorUnavailable("no LMCache instances configured or discovered")
        results: list[LMCacheInstanceSample] = list(self._bad_specs)
        histograms: dict[str, dict[str, Histogram]] = {}
        if self._scraper is None:
            # asyncio and an async HTTP client only where there is something to scrape
            from resource_agent.lmcache.client import DEFAULT_BUDGET_SECONDS, DEFAULT_TIMEOUT_SECONDS, Scraper

            limits = self._scraper_options
            self._scraper = Scraper(timeout=limits.get("timeout", DEFAULT_TIMEOUT_SECONDS), budget=limits.get("budget", DEFAULT_BUDGET_SECONDS))
        for scrape in self._scraper.scrape(instances):
            key = scrape.instance.id
            result, histograms[key] = instance_sample(scrape, self._histograms.get(key))
            self._note_reachability(result)
            results.append(result)
        self._histograms = histograms  # instances that disappeared lose their state
        sample.lmcache = LMCacheSample(instances=results)

    def _note_reachability(self, result: LMCacheInstanceSample) -> None:
        if not result.reachable and result.instance not in self._unreachable:
            self._unreachable.add(result.instance)
            log.warning("lmcache instance %s unreachable: %s", result.instance, result.error)
        elif result.reachable and result.instance in self._unreachable:
            self._unreachable.discard(result.instance)
            log.info("lmcache instance %s reachable again", result.instance)

    def close(self) -> None:
        if self._scraper is not None:
            self._scraper.close()


@register_collector("lmcache", enabled_by_default=True)
def lmcache_collector(context: CollectorContext) -> Collector:
    return LMCacheCollector(context)
