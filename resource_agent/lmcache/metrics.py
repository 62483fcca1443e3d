"""LMCache's Prometheus metrics: parse one port's exposition, combine an instance's ports (pure).

Every LMCache series carries `model_name`, `worker_id`, `role` and
`served_model_name`; a *rank* is one (role, worker_id). Ports are combined by
series, so two ports served by the same process (scheduler and worker 0 in a
TP=1 deployment share one registry) count once. Across ranks:

- request and token counters take the max: every tensor-parallel rank handles
  the same requests for its own shard of the KV cache, so summing would count
  each token once per rank;
- evictions, failures and memory usage are per rank and are summed;
- histograms are pooled (sums and counts added) so a mean is request-weighted;
- the ping latency takes the max, health is the AND of all ranks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from resource_agent.exposition import parse_samples

PREFIX = "lmcache:"

# counter name (as exposed, without PREFIX) -> combined over ranks by max
TOKEN_COUNTERS = {
    "requested_tokens": "num_requested_tokens_total",
    "hit_tokens": "num_hit_tokens_total",
    "lookup_tokens": "num_lookup_tokens_total",
    "lookup_hits": "num_lookup_hits_total",
    "stored_tokens": "num_stored_tokens_total",
    "retrieve_requests": "num_retrieve_requests_total",
    "store_requests": "num_store_requests_total",
}
# summed over ranks
EVICTIONS = "local_cpu_evict_keys_count_total"
REMOTE_ERRORS = ("remote_ping_errors_total", "put_failed_count", "get_blocking_failed_count")
PING_COUNTERS = ("remote_ping_errors_total", "remote_ping_successes_total")
# the parts of remote errors, kept apart too (totals key -> name), summed over ranks;
# get_blocking_failed_count and put_failed_count are gauges of a process-lifetime count
REMOTE_PARTS = {
    "get_failures": "get_blocking_failed_count",
    "put_failures": "put_failed_count",
    "ping_errors": "remote_ping_errors_total",
    "ping_successes": "remote_ping_successes_total",
}
LOCAL_CPU_USAGE = "local_cache_usage"
LOCAL_DISK_USAGE = "local_storage_usage"
PING_LATENCY_MS = "remote_ping_latency"
HEALTHY = "lmcache_is_healthy"
# blocking remote gets (ms), observed for failed ones too: a timed-out get records ~blocking_timeout_secs
REMOTE_GET_SYNC = "remote_time_to_get_sync"
HISTOGRAMS = ("time_to_retrieve", "time_to_store", "retrieve_speed", REMOTE_GET_SYNC)
# every series `combine` reads (names without PREFIX): ~25 of the ~130 sample lines of a port's exposition
READ_SERIES = frozenset({
    *TOKEN_COUNTERS.values(), EVICTIONS, *REMOTE_ERRORS, *PING_COUNTERS, *REMOTE_PARTS.values(), LOCAL_CPU_USAGE,
    LOCAL_DISK_USAGE, PING_LATENCY_MS, HEALTHY, *(f"{name}_{part}" for name in HISTOGRAMS for part in ("sum", "count")),
})


class ExpositionError(ValueError):
    """A /metrics body that is not valid Prometheus text or has no LMCache series."""


Rank = tuple[str, str]  # (role, worker_id)


@dataclass(frozen=True)
class PortMetrics:
    """LMCache series of one port: name (without PREFIX) -> rank -> value."""

    values: Mapping[str, Mapping[Rank, float]]
    model_name: str | None = None
    problems: tuple[str, ...] = ()  # lines and series that were skipped (malformed, non-finite); the rest was read

    @property
    def ranks(self) -> set[Rank]:
        return {rank for by_rank in self.values.values() for rank in by_rank}


@dataclass(frozen=True)
class Histogram:
    """Cumulative sum and count of a histogram, all ranks pooled."""

    sum: float
    count: float


@dataclass(frozen=True)
class Combined:
    """One instance's metrics, all ports and ranks combined; cumulative where the name says total."""

    totals: dict[str, float] = field(default_factory=dict)  # keys of TOKEN_COUNTERS and REMOTE_PARTS, "evictions", "remote_errors"
    local_cpu_usage_bytes: float | None = None
    local_disk_usage_bytes: float | None = None
    remote_ping_seconds: float | None = None
    healthy: bool | None = None
    histograms: dict[str, Histogram] = field(default_factory=dict)
    worker_ranks: int = 0
    model_name: str | None = None


def parse_exposition(text: str, series: Collection[str] | None = READ_SERIES) -> PortMetrics:
    """Parse one port's /metrics body; raise ExpositionError when nothing in it is usable.

    Only the lines of `series` (names without PREFIX; None: every lmcache: series) are parsed: of a port's
    ~400 lines (~260 of them HELP and TYPE) `combine` reads ~25, and prometheus_client's parser took half of
    the agent's CPU on a node with LMCache. Malformed lines and non-finite values among them are skipped and
    named in `problems`; the rest is kept."""
    values: dict[str, dict[Rank, float]] = {}
    model_name: str | None = None
    samples, problems = parse_samples(text, None if series is None else _series_lines(series))
    skipped: set[str] = set()
    for sample in samples:
        if not sample.name.startswith(PREFIX):
            continue
        labels = sample.labels
        rank = (labels.get("role", ""), labels.get("worker_id", ""))
        name = sample.name[len(PREFIX) :]
        value = float(sample.value)
        if not math.isfinite(value):
            skipped.add(name)
            continue
        by_rank = values.setdefault(name, {})
        by_rank[rank] = by_rank.get(rank, 0.0) + value
        model_name = model_name or labels.get("model_name") or None
    for name in skipped:  # one rank's NaN would make the series' combination meaningless: drop the series
        values.pop(name, None)
    problems += tuple(f"non-finite value in {PREFIX}{name}" for name in sorted(skipped))
    if not values:
        why = "; ".join(problems) if problems else "no lmcache: series the agent reads in /metrics (is this LMCache's internal API server?)"
        raise ExpositionError(f"malformed Prometheus exposition: {why}" if problems else why)
    return PortMetrics(values=values, model_name=model_name, problems=problems)


def _series_lines(series: Collection[str]) -> Callable[[str], bool]:
    """Whether a line is a sample of one of `series` (its name up to the labels or the value)."""
    def wanted(line: str) -> bool:
        return line.startswith(PREFIX) and line[len(PREFIX):].partition("{")[0].partition(" ")[0] in series

    return wanted


def _merge(ports: Iterable[PortMetrics]) -> dict[str, dict[Rank, float]]:
    merged: dict[str, dict[Rank, float]] = {}
    for port in ports:
        for name, by_rank in port.values.items():
            merged.setdefault(name, {}).update(by_rank)  # same rank on two ports: one process, count once
    return merged


def combine(ports: Iterable[PortMetrics]) -> Combined:
    """Combine the ports of one instance (see the module docstring for the rules)."""
    ports = list(ports)
    series = _merge(ports)

    def over_ranks(name: str, reduce: Callable[[Iterable[float]], float]) -> float | None:
        by_rank = series.get(name)
        return reduce(by_rank.values()) if by_rank else None

    totals: dict[str, float] = {}
    for key, name in TOKEN_COUNTERS.items():
        value = over_ranks(name, max)
        if value is not None:
            totals[key] = value
    if (evictions := over_ranks(EVICTIONS, sum)) is not None:
        totals["evictions"] = evictions
    errors = [value for name in REMOTE_ERRORS if (value := over_ranks(name, sum)) is not None]
    if errors:
        totals["remote_errors"] = sum(errors)
    for key, name in REMOTE_PARTS.items():
        if (value := over_ranks(name, sum)) is not None:
            totals[key] = value

    pings = sum(over_ranks(name, sum) or 0.0 for name in PING_COUNTERS)
    latency_ms = over_ranks(PING_LATENCY_MS, max)
    health = series.get(HEALTHY)
    histograms = {
        name: Histogram(sum=over_ranks(f"{name}_sum", sum) or 0.0, count=over_ranks(f"{name}_count", sum) or 0.0)
        for name in HISTOGRAMS
        if f"{name}_count" in series
    }
    ranks = {rank for port in ports for rank in port.ranks}
    return Combined(
        totals=totals,
        local_cpu_usage_bytes=over_ranks(LOCAL_CPU_USAGE, sum),
        local_disk_usage_bytes=over_ranks(LOCAL_DISK_USAGE, sum),
        remote_ping_seconds=latency_ms / 1000.0 if latency_ms is not None and pings > 0 else None,
        healthy=all(value >= 1.0 for value in health.values()) if health else None,
        histograms=histograms,
        worker_ranks=sum(1 for role, _ in ranks if role != "scheduler"),
        model_name=next((port.model_name for port in ports if port.model_name), None),
    )


def interval_mean(previous: Histogram | None, current: Histogram) -> float | None:
    """Mean observation since the previous scrape; None on the first scrape or with no new observations.

    A count that went down means the process restarted (or /metrics/reset was
    called): the current values are then the increase since the reset.
    """
    if previous is None:
        return None
    if current.count < previous.count or current.sum < previous.sum:
        delta_sum, delta_count = current.sum, current.count
    else:
        delta_sum, delta_count = current.sum - previous.sum, current.count - previous.count
    return delta_sum / delta_count if delta_count > 0 else None
