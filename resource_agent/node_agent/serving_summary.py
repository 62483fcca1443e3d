"""Reduce the serving sections of a run of samples to per-engine summaries (pure).

`ServingReducer.add` takes one sample's serving section (and its timestamp) at a time. Gauges
are kept as columns; counters as columns reduced by `stats.increase` (a value below the
previous one is a restart: the new value counts in full, as Prometheus' `increase()` does).
Histograms are never kept as cumulative buckets: each bucket's increase is accumulated as
the samples arrive (per bucket series, resets handled the same way), and the window's
quantiles are `histogram_quantile` of those increases, exactly as PromQL computes
`histogram_quantile(q, increase(h_bucket[window]))` over the same scrapes (without the
extrapolation to the range's ends, which scales every bucket alike and so leaves the
quantiles unchanged). A histogram whose bucket bounds change (an engine restarted with other
buckets) starts over from the first sample with the new bounds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any
from urllib.parse import urlsplit

from resource_agent.api.samples import Sample, ServingHistogram, ServingInstanceSample, ServingSample
from resource_agent.api.summary import GpuSummary, LatencySummary, LMCacheInstanceSummary, ServingInstanceSummary
from resource_agent.node_agent.stats import Row, increase, last, stat

_COLUMNS = (
    "requests_running",
    "requests_waiting",
    "kv_cache_usage_percent",
    "prefix_cache_hit_rate_percent",
    "preemptions_total",
    "prefix_cache_queries_total",
    "prefix_cache_hits_total",
    "prompt_tokens_total",
    "generation_tokens_total",
    "requests_finished_total",
    "gpu_memory_utilization",
    "num_gpu_blocks",
    "block_size",
    "max_total_num_tokens",
)
_GET_COLUMNS = attrgetter(*_COLUMNS)
_INDEX = {name: position for position, name in enumerate(_COLUMNS)}
HISTOGRAMS = ("ttft_seconds", "inter_token_latency_seconds", "queue_time_seconds", "e2e_latency_seconds")

Key = tuple[str, str | None, str | None]  # (instance, model_name, engine_index)


# --- histograms -----------------------------------------------------------------------------


def bucket_quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """PromQL's `histogram_quantile` of classic buckets (promql/quantile.go `bucketQuantile`).

    `bounds` are the finite upper bounds, ascending; `counts` the cumulative counts per bound and
    the +Inf bucket last. None where PromQL gives NaN (no observations, fewer than two buckets).
    Counts are first made monotonic as Prometheus' `ensureMonotonic` does: a bucket whose count
    is below the bucket under it is raised to that count."""
    if math.isnan(q):
        return None
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if len(counts) != len(bounds) + 1 or len(counts) < 2:
        return None
    cumulative = list(counts)
    for position in range(1, len(cumulative)):  # ensureMonotonic: never below the previous bucket
        if cumulative[position] < cumulative[position - 1]:
            cumulative[position] = cumulative[position - 1]
    observations = cumulative[-1]
    if observations <= 0:
        return None
    rank = q * observations
    b = next(position for position, count in enumerate(cumulative) if count >= rank)
    if b == len(cumulative) - 1:  # in the +Inf bucket: the highest finite bound
        return bounds[-1]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[b], cumulative[b]
    if b > 0:
        start = bounds[b - 1]
        count -= cumulative[b - 1]
        rank -= cumulative[b - 1]
    return start + (end - start) * (rank / count)


@dataclass
class HistogramIncrease:
    """The increase of every bucket (and the sum) of one histogram, fed one scrape at a time."""

    bounds: tuple[float, ...] = ()
    previous: list[float] = field(default_factory=list)
    previous_sum: float = 0.0
    counts: list[float] = field(default_factory=list)
    sum: float = 0.0

    def add(self, histogram: ServingHistogram) -> None:
        bounds = tuple(histogram.bounds)
        values = list(histogram.counts)
        if len(values) != len(bounds) + 1:
            return  # malformed: ignore this scrape of it
        if bounds != self.bounds or not self.previous:  # first scrape, or other buckets: start over
            self.bounds, self.previous, self.previous_sum = bounds, values, histogram.sum
            self.counts, self.sum = [0.0] * len(values), 0.0
            return
        for position, (before, now) in enumerate(zip(self.previous, values, strict=True)):
            self.counts[position] += now - before if now >= before else now
        self.sum += histogram.sum - self.previous_sum if histogram.sum >= self.previous_sum else histogram.sum
        self.previous, self.previous_sum = values, histogram.sum

    def summary(self) -> LatencySummary | None:
        if not self.previous:
            return None
        count = self.counts[-1]
        return LatencySummary(
            count=count,
            mean=self.sum / count if count > 0 else None,
            p50=bucket_quantile(0.5, self.bounds, self.counts),
            p95=bucket_quantile(0.95, self.bounds, self.counts),
        )


# --- the reducer ----------------------------------------------------------------------------


@dataclass
class _Engine:
    latest: ServingInstanceSample
    first_timestamp: float
    last_timestamp: float
    rows: list[Row] = field(default_factory=list)
    histograms: dict[str, HistogramIncrease] = field(default_factory=dict)
    finished_by_reason: dict[str, list[float]] = field(default_factory=dict)


class ServingReducer:
    """Per-engine columns of serving sections, fed one sample at a time."""

    def __init__(self) -> None:
        self._engines: dict[Key, _Engine] = {}
        self._endpoints: dict[str, ServingInstanceSample] = {}  # instance -> its latest sample (reachability)

    def add(self, timestamp: float, serving: ServingSample) -> None:
        seen: set[str] = set()
        for instance in serving.instances:
            if instance.instance not in seen or not instance.reachable:
                self._endpoints[instance.instance] = instance
            seen.add(instance.instance)
            if not instance.reachable:
                continue
            key = (instance.instance, instance.model_name, instance.engine_index)
            engine = self._engines.get(key)
            if engine is None:
                engine = self._engines[key] = _Engine(latest=instance, first_timestamp=timestamp, last_timestamp=timestamp)
            engine.latest, engine.last_timestamp = instance, timestamp
            engine.rows.append(_GET_COLUMNS(instance))
            for name in HISTOGRAMS:
                histogram = getattr(instance, name)
                if histogram is not None:
                    engine.histograms.setdefault(name, HistogramIncrease()).add(histogram)
            for reason, value in instance.requests_finished_by_reason.items():
                engine.finished_by_reason.setdefault(reason, []).append(value)

    def instances(self) -> list[ServingInstanceSummary]:
        """One summary per engine and model seen, and one per endpoint never reached."""
        summaries = [_summarize(engine, self._endpoints.get(key[0])) for key, engine in self._engines.items()]
        reached = {key[0] for key in self._engines}
        for name, endpoint in self._endpoints.items():
            if name not in reached:
                summaries.append(
                    ServingInstanceSummary(
                        instance=endpoint.instance,
                        engine=endpoint.engine,
                        pod=endpoint.pod,
                        namespace=endpoint.namespace,
                        pod_uid=endpoint.pod_uid,
                        url=endpoint.url,
                        reachable=False,
                        error=endpoint.error,
                    )
                )
        return summaries


def serving_instances(samples: Iterable[Sample]) -> list[ServingInstanceSummary]:
    """One summary per serving engine and model seen in the samples."""
    reducer = ServingReducer()
    for sample in samples:
        if sample.serving is not None:
            reducer.add(sample.timestamp, sample.serving)
    return reducer.instances()


def _optional_increase(values: Sequence[float | None]) -> float | None:
    return increase(values) if any(value is not None for value in values) else None


def _per_second(value: float | None, seconds: float) -> float | None:
    return value / seconds if value is not None and seconds > 0 else None


def _summarize(engine: _Engine, endpoint: ServingInstanceSample | None) -> ServingInstanceSummary:
    latest = engine.latest
    columns = list(zip(*engine.rows, strict=True))

    def column(name: str) -> Sequence[Any]:
        return columns[_INDEX[name]]

    seconds = max(engine.last_timestamp - engine.first_timestamp, 0.0)
    queries = _optional_increase(column("prefix_cache_queries_total"))
    hits = _optional_increase(column("prefix_cache_hits_total"))
    hit_rate: float | None = None
    if queries and hits is not None:
        hit_rate = min(hits / queries, 1.0)
    elif (gauge := stat(column("prefix_cache_hit_rate_percent"))) is not None:
        hit_rate = gauge.mean / 100.0
    prompt = _optional_increase(column("prompt_tokens_total"))
    generation = _optional_increase(column("generation_tokens_total"))
    finished = _optional_increase(column("requests_finished_total"))
    reachable = endpoint.reachable if endpoint is not None else True
    return ServingInstanceSummary(
        instance=latest.instance,
        engine=latest.engine,
        model_name=latest.model_name,
        engine_index=latest.engine_index,
        pod=latest.pod,
        namespace=latest.namespace,
        pod_uid=latest.pod_uid,
        url=latest.url,
        reachable=reachable,
        error=None if reachable or endpoint is None else endpoint.error,
        samples=len(engine.rows),
        window_seconds=seconds,
        requests_running=stat(column("requests_running")),
        requests_waiting=stat(column("requests_waiting")),
        kv_cache_usage_percent=stat(column("kv_cache_usage_percent")),
        preemptions=_optional_increase(column("preemptions_total")),
        prefix_cache_queries=queries,
        prefix_cache_hits=hits,
        prefix_cache_hit_rate=hit_rate,
        prompt_tokens_per_second=_per_second(prompt, seconds),
        generation_tokens_per_second=_per_second(generation, seconds),
        requests_per_second=_per_second(finished, seconds),
        requests_finished=finished,
        requests_finished_by_reason={reason: increase(values) for reason, values in engine.finished_by_reason.items()},
        ttft_seconds=_latency(engine, "ttft_seconds"),
        inter_token_latency_seconds=_latency(engine, "inter_token_latency_seconds"),
        queue_time_seconds=_latency(engine, "queue_time_seconds"),
        e2e_latency_seconds=_latency(engine, "e2e_latency_seconds"),
        gpu_memory_utilization=last(column("gpu_memory_utilization")),
        num_gpu_blocks=last(column("num_gpu_blocks")),
        block_size=last(column("block_size")),
        max_total_num_tokens=last(column("max_total_num_tokens")),
    )


def _latency(engine: _Engine, name: str) -> LatencySummary | None:
    histogram = engine.histograms.get(name)
    return histogram.summary() if histogram is not None else None


# --- links to the node's other sections -------------------------------------------------------


def _host(url: str | None) -> str | None:
    try:
        return urlsplit(url).hostname if url else None
    except ValueError:
        return None


def link(serving: list[ServingInstanceSummary], lmcache: Sequence[LMCacheInstanceSummary], gpus: Sequence[GpuSummary]) -> list[ServingInstanceSummary]:
    """Fill each engine's LMCache instance (same pod, else same host) and the GPUs its pod holds."""
    linked = []
    for instance in serving:
        cache = None
        if instance.pod:
            cache = next((c for c in lmcache if c.pod == instance.pod and c.namespace == instance.namespace), None)
        if cache is None and (host := _host(instance.url)):
            cache = next((c for c in lmcache if any(_host(url) == host for url in c.urls)), None)
        indices = sorted({gpu.index for gpu in gpus if instance.pod_uid and any(p.pod_uid == instance.pod_uid for p in gpu.processes)})
        linked.append(instance.model_copy(update={"lmcache_instance": cache.instance if cache else None, "gpu_indices": indices}))
    return linked
