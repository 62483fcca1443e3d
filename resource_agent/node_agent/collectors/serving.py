"""The "serving" collector: what the serving engines on the node (vLLM, SGLang) report about their work.

Endpoints come from `CollectorContext.serving_urls` (`vllm=http://host:port`) and,
when enabled, from annotated pods on this node (see resource_agent.serving.discovery;
refreshed every `serving.discovery-interval` seconds, the last good list kept when the
API server is unreachable), and, from the same pod list (no extra API call), unannotated
pods that hold GPUs in this sample (GPU processes' pod UIDs from the gpu collector, the
kubelet's assignments from the podresources collector; both sort before this one) whose
containers look like vLLM or SGLang (resource_agent.serving.discovery.endpoints_from_gpu_pods).
Such a guessed endpoint that does not answer with its engine's metrics is left out, not
reported unreachable. Each endpoint is scraped within the per-sample budget; an
endpoint that does not answer, or answers with something that is not its engine's
metrics, is a sample with `reachable=False`, never a collector failure, so one broken
endpoint never hides the others. A wrong URL spec is such a sample too.

Options (CollectorContext.options): `serving.discover-pods` (true/false; default: true
in a cluster when the node name is known), `serving.discover-gpu-pods` (true/false,
default true; only with pod discovery), `serving.discovery-interval` (s, 60),
`serving.timeout` (s per request, 1), `serving.budget` (s per sample, 2).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from resource_agent.api.samples import Sample, ServingInstanceSample, ServingSample
from resource_agent.lmcache.discovery import list_node_pods
from resource_agent.node_agent.collectors.base import Collector, CollectorContext, CollectorUnavailable, register_collector
from resource_agent.serving.discovery import (
    DiscoveryError,
    Endpoint,
    endpoints_from_gpu_pods,
    endpoints_from_pods,
    merge,
    parse_url_spec,
    redact_url,
)
from resource_agent.serving.sample import instance_samples, unreachable

if TYPE_CHECKING:
    from resource_agent.serving.client import Scraper

log = logging.getLogger(__name__)

PodLister = Callable[[str], list[dict[str, Any]]]


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class ServingCollector(Collector):
    name = "serving"

    def __init__(
        self,
        context: CollectorContext,
        scraper: Scraper | None = None,
        list_pods: PodLister | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        options = context.options
        self._direct: list[Endpoint] = []
        self._bad_specs: list[ServingInstanceSample] = []
        for spec in context.serving_urls:
            try:
                self._direct.append(parse_url_spec(spec))
            except DiscoveryError as exc:
                kind, _, url = spec.partition("=")
                shown = redact_url(url if "://" in url else f"http://{url}") if url else redact_url(spec)
                self._bad_specs.append(ServingInstanceSample(instance=shown, engine=kind if url else "unknown", reachable=False, error=str(exc)))
        in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and context.node_name is not None
        discover = _to_bool(options.get("serving.discover-pods", in_cluster)) and context.node_name is not None
        self._node = context.node_name
        self._list_pods = (list_pods or list_node_pods) if discover else None
        self._discovery_interval = float(options.get("serving.discovery-interval", 60.0))
        self._discover_gpu_pods = discover and _to_bool(options.get("serving.discover-gpu-pods", True))
        self._discovered: list[Endpoint] = []
        self._pods: list[dict[str, Any]] = []
        self._guessed_misses: set[str] = set()
        self._discovered_at: float | None = None
        self._clock = clock
        self._scraper = scraper  # started on the first scrape: a node with nothing to scrape keeps no loop, thread or client
        self._scraper_options = {name: float(options[f"serving.{name}"]) for name in ("timeout", "budget") if f"serving.{name}" in options}
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
        except Exception as exc:  # the API server being away must not stop scraping known engines
            log.warning("serving pod discovery failed, keeping %d known endpoints: %s", len(self._discovered), type(exc).__name__)
            return
        self._pods = pods if self._discover_gpu_pods else []
        self._discovered, errors = endpoints_from_pods(pods)
        for error in errors:
            log.warning("serving pod discovery: %s", error)

    def endpoints(self, gpu_pods: Iterable[str] = ()) -> list[Endpoint]:
        """The endpoints to scrape now; `gpu_pods` names the pods holding GPUs (UIDs or namespace/name)."""
        self._refresh_pods()
        guessed = endpoints_from_gpu_pods(self._pods, gpu_pods) if self._pods else []
        direct = {endpoint.url for endpoint in self._direct}
        merged = merge(self._direct, [*self._discovered, *guessed])
        return [replace(endpoint, guessed=False) if endpoint.guessed and endpoint.url in direct else endpoint for endpoint in merged]

    def update(self, sample: Sample) -> None:
        endpoints = self.endpoints(gpu_pods(sample) if self._discover_gpu_pods else ())
        if not endpoints and not self._bad_specs:
            raise CollectorUnavailable("no serving engines configured or discovered")
        results: list[ServingInstanceSample] = list(self._bad_specs)
        if self._scraper is None:
            # asyncio and an async HTTP client only where there is something to scrape
            from resource_agent.serving.client import DEFAULT_BUDGET_SECONDS, DEFAULT_TIMEOUT_SECONDS, Scraper

            limits = self._scraper_options
            self._scraper = Scraper(timeout=limits.get("timeout", DEFAULT_TIMEOUT_SECONDS), budget=limits.get("budget", DEFAULT_BUDGET_SECONDS))
        for scrape in self._scraper.scrape(endpoints):
            endpoint = scrape.endpoint
            if scrape.error is not None and endpoint.guessed:
                if endpoint.id not in self._guessed_misses:  # a container we took for an engine that is not one
                    self._guessed_misses.add(endpoint.id)
                    log.info("GPU pod %s does not serve %s metrics at %s; left out", endpoint.id, endpoint.engine, scrape.error)
                continue
            if scrape.error is not None:
                results.append(unreachable(endpoint, scrape.error))
                self._note(endpoint.id, scrape.error)
                continue
            try:
                results.extend(instance_samples(endpoint, list(scrape.groups)))
            except Exception as exc:  # a figure the model refuses must not hide the other endpoints
                error = f"{redact_url(endpoint.url)}: unusable metrics: {type(exc).__name__}"
                results.append(unreachable(endpoint, error))
                self._note(endpoint.id, error)
                continue
            self._note(endpoint.id, None)
        if not results:
            raise CollectorUnavailable("no serving engines answered among the GPU pods' containers")
        sample.serving = ServingSample(instances=results)

    def _note(self, endpoint: str, error: str | None) -> None:
        if error is not None and endpoint not in self._unreachable:
            self._unreachable.add(endpoint)
            log.warning("serving endpoint %s unreachable: %s", endpoint, error)
        elif error is None and endpoint in self._unreachable:
            self._unreachable.discard(endpoint)
            log.info("serving endpoint %s reachable again", endpoint)

    def close(self) -> None:
        if self._scraper is not None:
            self._scraper.close()


def gpu_pods(sample: Sample) -> set[str]:
    """The pods holding GPUs in `sample`: UIDs from the GPU processes' cgroups, namespace/name from the kubelet (GPU resources only)."""
    holding: set[str] = set()
    if sample.gpu is not None:
        holding.update(process.pod_uid for device in sample.gpu.devices for process in device.processes if process.pod_uid)
    if sample.pod_resources is not None:
        holding.update(f"{device.namespace}/{device.pod}" for device in sample.pod_resources.devices)
    return holding


@register_collector("serving", enabled_by_default=True)
def serving_collector(context: CollectorContext) -> Collector:
    return ServingCollector(context)
