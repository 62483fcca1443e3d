"""Reduce the LMCache sections of a run of samples to per-instance summaries (pure).

`LMCacheReducer.add` takes one sample's LMCache section at a time and keeps one row
of numbers per instance sample and each instance's latest sample (for its static
fields), so a replay that reduces samples as they are parsed holds no sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

from resource_agent.api.samples import LMCacheInstanceSample, LMCacheSample, Sample
from resource_agent.api.summary import LMCacheInstanceSummary
from resource_agent.node_agent.stats import Row, increase, last, ratio_percent, stat

_COLUMNS = (
    "requested_tokens_total",
    "hit_tokens_total",
    "lookup_tokens_total",
    "lookup_hits_total",
    "evictions_total",
    "remote_errors_total",
    "remote_get_failures_total",
    "remote_put_failures_total",
    "remote_ping_errors_total",
    "remote_ping_successes_total",
    "remote_gets_total",
    "remote_get_seconds_total",
    "remote_get_seconds",
    "local_cpu_usage_bytes",
    "max_local_cpu_size_bytes",
    "local_disk_usage_bytes",
    "remote_usage_bytes",
    "retrieve_latency_seconds",
    "store_latency_seconds",
    "retrieve_throughput_tokens_per_second",
    "remote_ping_seconds",
    "kv_bytes_per_token",
    "blocking_timeout_seconds",
    "worker_ranks",
)
_GET_COLUMNS = attrgetter(*_COLUMNS)
_INDEX = {name: position for position, name in enumerate(_COLUMNS)}


class LMCacheReducer:
    """Per-instance columns of LMCache sections, fed one sample at a time."""

    def __init__(self) -> None:
        self._rows: dict[str, list[Row]] = {}  # by instance, in order of first appearance
        self._latest: dict[str, LMCacheInstanceSample] = {}

    def add(self, lmcache: LMCacheSample) -> None:
        rows, latest = self._rows, self._latest
        for instance in lmcache.instances:
            name = instance.instance
            instance_rows = rows.get(name)
            if instance_rows is None:
                instance_rows = rows[name] = []
            instance_rows.append(_GET_COLUMNS(instance))
            latest[name] = instance

    def instances(self) -> list[LMCacheInstanceSummary]:
        """One summary per LMCache instance seen so far, in order of first appearance."""
        return [_summarize_instance(self._latest[name], instance_rows) for name, instance_rows in self._rows.items()]


def lmcache_instances(samples: Iterable[Sample]) -> list[LMCacheInstanceSummary]:
    """One summary per LMCache instance seen in the samples, in order of first appearance."""
    reducer = LMCacheReducer()
    for sample in samples:
        if sample.lmcache is not None:
            reducer.add(sample.lmcache)
    return reducer.instances()


def _rate(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _optional_increase(values: Sequence[float | None]) -> float | None:
    """The increase of a counter the instance may not expose: None when no sample had it."""
    return increase(values) if any(value is not None for value in values) else None


def _since_last_change(values: Sequence[Any], setting: Sequence[Any]) -> Sequence[Any]:
    """The tail of `values` taken while `setting` had its latest value (all of it when never known)."""
    current = last(setting)
    start = 0
    for position, value in enumerate(setting):
        if value is not None and value != current:
            start = position + 1
    return values[start:]


def _summarize_instance(instance: LMCacheInstanceSample, rows: list[Row]) -> LMCacheInstanceSummary:
    columns = list(zip(*rows, strict=True))

    def column(name: str) -> Sequence[Any]:
        return columns[_INDEX[name]]

    requested = increase(column("requested_tokens_total"))
    hits = increase(column("hit_tokens_total"))
    lookups = increase(column("lookup_tokens_total"))
    lookup_hits = increase(column("lookup_hits_total"))
    kv_bytes_per_token = last(column("kv_bytes_per_token"))
    max_local_cpu = last(column("max_local_cpu_size_bytes"))
    return LMCacheInstanceSummary(
        instance=instance.instance,
        pod=instance.pod,
        namespace=instance.namespace,
        urls=list(instance.urls),
        reachable=instance.reachable,
        error=instance.error,
        healthy=instance.healthy,
        model_name=instance.model_name,
        requested_tokens=requested,
        hit_tokens=hits,
        lookup_tokens=lookups,
        lookup_hits=lookup_hits,
        evictions=increase(column("evictions_total")),
        remote_errors=increase(column("remote_errors_total")),
        # judged against the timeout in force: failures from before the last change of it do not count
        remote_get_failures=_optional_increase(
            _since_last_change(column("remote_get_failures_total"), column("blocking_timeout_seconds"))
        ),
        remote_gets=_optional_increase(_since_last_change(column("remote_gets_total"), column("blocking_timeout_seconds"))),
        remote_get_time_seconds=_optional_increase(
            _since_last_change(column("remote_get_seconds_total"), column("blocking_timeout_seconds"))
        ),
        remote_put_failures=_optional_increase(column("remote_put_failures_total")),
        remote_ping_errors=_optional_increase(column("remote_ping_errors_total")),
        remote_ping_successes=_optional_increase(column("remote_ping_successes_total")),
        token_hit_rate=_rate(hits, requested),
        lookup_hit_rate=_rate(lookup_hits, lookups),
        local_cpu_usage_bytes=stat(column("local_cpu_usage_bytes")),
        local_cpu_usage_percent=stat(ratio_percent(column("local_cpu_usage_bytes"), column("max_local_cpu_size_bytes"))),
        local_disk_usage_bytes=stat(column("local_disk_usage_bytes")),
        remote_usage_bytes=stat(column("remote_usage_bytes")),
        retrieve_latency_seconds=stat(column("retrieve_latency_seconds")),
        store_latency_seconds=stat(column("store_latency_seconds")),
        retrieve_throughput_tokens_per_second=stat(column("retrieve_throughput_tokens_per_second")),
        remote_ping_seconds=stat(column("remote_ping_seconds")),
        remote_get_seconds=stat(column("remote_get_seconds")),
        max_local_cpu_size_bytes=max_local_cpu,
        max_local_disk_size_bytes=instance.max_local_disk_size_bytes,
        local_cpu_enabled=instance.local_cpu_enabled,
        remote_backend=instance.remote_backend,
        kv_bytes_per_token=kv_bytes_per_token,
        saved_prefill_tokens=hits,
        saved_kv_bytes=hits * kv_bytes_per_token if kv_bytes_per_token is not None else None,
        blocking_timeout_seconds=last(column("blocking_timeout_seconds")),
        worker_ranks=last(column("worker_ranks")),
    )
