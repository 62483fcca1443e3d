"""Turn one instance's scrape into an `LMCacheInstanceSample` (pure).

Counters stay cumulative (the window takes increases and handles resets);
histogram means are over the interval since the previous scrape, so the
caller passes the previous histogram totals and keeps the returned ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from resource_agent.api.samples import LMCacheInstanceSample
from resource_agent.lmcache.config import config_facts, kv_bytes_per_token, redact_url
from resource_agent.lmcache.metrics import REMOTE_GET_SYNC, Histogram, combine, interval_mean

if TYPE_CHECKING:
    from resource_agent.lmcache.client import InstanceScrape

Histograms = Mapping[str, Histogram]


def instance_sample(scrape: InstanceScrape, previous: Histograms | None) -> tuple[LMCacheInstanceSample, dict[str, Histogram]]:
    """The sample for one instance and the histogram totals to pass next time."""
    instance = scrape.instance
    answered = [port for port in scrape.ports if port.metrics is not None]
    errors = [port.error for port in scrape.ports if port.error]
    identity = {
        "instance": redact_url(instance.id),
        "pod": instance.pod,
        "namespace": instance.namespace,
        "urls": [redact_url(url) for url in instance.urls],
    }
    if not answered:
        return LMCacheInstanceSample(**identity, reachable=False, error="; ".join(errors) or "no ports"), {}

    combined = combine(port.metrics for port in answered if port.metrics is not None)
    ranks = max(combined.worker_ranks, 1)
    port_facts = [config_facts(port.conf) for port in answered if port.conf]
    facts = port_facts[0] if port_facts else None
    # every process has its own config: report the tightest timeout any of them runs with
    timeouts = [value for fact in port_facts if (value := fact.blocking_timeout_seconds) is not None]
    per_rank_kv = next((kv for port in answered if port.inference_info and (kv := kv_bytes_per_token(port.inference_info))), None)
    previous = previous or {}

    def mean(name: str) -> float | None:
        current = combined.histograms.get(name)
        return interval_mean(previous.get(name), current) if current is not None else None

    def scaled(value: float | None) -> float | None:
        return value * ranks if value is not None else None

    totals = combined.totals
    get_sync = combined.histograms.get(REMOTE_GET_SYNC)
    get_sync_mean_ms = mean(REMOTE_GET_SYNC)
    sample = LMCacheInstanceSample(
        **identity,
        reachable=True,
        error="; ".join(errors) or None,
        healthy=False if errors else combined.healthy,
        model_name=combined.model_name,
        requested_tokens_total=totals.get("requested_tokens"),
        hit_tokens_total=totals.get("hit_tokens"),
        lookup_tokens_total=totals.get("lookup_tokens"),
        lookup_hits_total=totals.get("lookup_hits"),
        stored_tokens_total=totals.get("stored_tokens"),
        evictions_total=totals.get("evictions"),
        remote_errors_total=totals.get("remote_errors"),
        remote_get_failures_total=totals.get("get_failures"),
        remote_put_failures_total=totals.get("put_failures"),
        remote_ping_errors_total=totals.get("ping_errors"),
        remote_ping_successes_total=totals.get("ping_successes"),
        retrieve_requests_total=totals.get("retrieve_requests"),
        store_requests_total=totals.get("store_requests"),
        local_cpu_usage_bytes=combined.local_cpu_usage_bytes,
        local_disk_usage_bytes=combined.local_disk_usage_bytes,
        retrieve_latency_seconds=mean("time_to_retrieve"),
        store_latency_seconds=mean("time_to_store"),
        retrieve_throughput_tokens_per_second=mean("retrieve_speed"),
        remote_ping_seconds=combined.remote_ping_seconds,
        remote_gets_total=get_sync.count if get_sync is not None else None,
        remote_get_seconds_total=get_sync.sum / 1000.0 if get_sync is not None else None,
        remote_get_seconds=get_sync_mean_ms / 1000.0 if get_sync_mean_ms is not None else None,
        max_local_cpu_size_bytes=scaled(facts.max_local_cpu_size_bytes) if facts else None,
        max_local_disk_size_bytes=scaled(facts.max_local_disk_size_bytes) if facts else None,
        local_cpu_enabled=facts.local_cpu_enabled if facts else None,
        remote_backend=facts.remote_backend if facts else None,
        kv_bytes_per_token=scaled(per_rank_kv),
        blocking_timeout_seconds=min(timeouts) if timeouts else None,
        worker_ranks=combined.worker_ranks or None,
    )
    return sample, dict(combined.histograms)
