"""Serving engines' Prometheus metrics: parse one /metrics body into per-model engine figures (pure).

Metric families, checked against the engines' source:

- vLLM V1, `vllm/v1/metrics/loggers.py` (`PrometheusStatLogger`): every series carries
  `model_name` and `engine` (the engine-core index; several with data parallelism).
  Older names are read when the newer one is absent: `vllm:gpu_cache_usage_perc`
  (renamed `vllm:kv_cache_usage_perc` in 0.9), `vllm:gpu_prefix_cache_queries/_hits`
  (renamed `vllm:prefix_cache_queries/_hits` in 0.9), `vllm:time_per_output_token_seconds`
  (renamed `vllm:inter_token_latency_seconds`); vLLM V0 (`vllm/engine/metrics.py`) used the
  same names without the `engine` label and had `vllm:gpu_prefix_cache_hit_rate` (a gauge).
  `vllm:cache_config_info` is an info gauge whose labels are the CacheConfig
  (`gpu_memory_utilization`, `num_gpu_blocks`, `block_size`, ...).
- SGLang, `python/sglang/srt/metrics/collector.py` (`SchedulerMetricsCollector`,
  `TokenizerMetricsCollector`): `sglang:num_running_reqs`, `sglang:num_queue_reqs`,
  `sglang:token_usage` (KV pool use, 0-1), `sglang:cache_hit_rate` (0-1),
  `sglang:max_total_num_tokens`, `sglang:num_retracted_requests_total` (SGLang's
  preemption), the counters `sglang:prompt_tokens_total`, `sglang:generation_tokens_total`,
  `sglang:cached_tokens_total`, `sglang:num_requests_total` and the histograms
  `sglang:time_to_first_token_seconds`, `sglang:inter_token_latency_seconds`,
  `sglang:e2e_request_latency_seconds`, `sglang:queue_time_seconds`. Series carry
  `model_name` and, on the scheduler's, rank labels (`tp_rank`, `dp_rank`, ...); one
  SGLang server is one group per model, its ranks combined.

Within a group, series that differ in other labels are combined: request counts, counters and
histogram buckets are summed, usage takes the maximum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from resource_agent.exposition import parse_samples


class ExpositionError(ValueError):
    """A /metrics body that is not valid Prometheus text or has none of the engine's series."""


# canonical figure -> names to read, preferred first; "max" figures take the maximum over series
VLLM_GAUGES: Mapping[str, tuple[str, ...]] = {
    "requests_running": ("vllm:num_requests_running",),
    "requests_waiting": ("vllm:num_requests_waiting",),
    "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    "prefix_cache_hit_rate": ("vllm:gpu_prefix_cache_hit_rate",),
}
VLLM_COUNTERS: Mapping[str, tuple[str, ...]] = {
    "preemptions": ("vllm:num_preemptions_total",),
    "prefix_cache_queries": ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total"),
    "prefix_cache_hits": ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total"),
    "prompt_tokens": ("vllm:prompt_tokens_total",),
    "generation_tokens": ("vllm:generation_tokens_total",),
    "requests_finished": ("vllm:request_success_total",),
}
VLLM_HISTOGRAMS: Mapping[str, tuple[str, ...]] = {
    "ttft": ("vllm:time_to_first_token_seconds",),
    "inter_token": ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
    "e2e": ("vllm:e2e_request_latency_seconds",),
    "queue": ("vllm:request_queue_time_seconds",),
}
VLLM_CACHE_INFO = "vllm:cache_config_info"
VLLM_SUCCESS = "vllm:request_success_total"

SGLANG_GAUGES: Mapping[str, tuple[str, ...]] = {
    "requests_running": ("sglang:num_running_reqs",),
    "requests_waiting": ("sglang:num_queue_reqs",),
    "kv_cache_usage": ("sglang:token_usage",),
    "prefix_cache_hit_rate": ("sglang:cache_hit_rate",),
    "max_total_num_tokens": ("sglang:max_total_num_tokens",),
}
SGLANG_COUNTERS: Mapping[str, tuple[str, ...]] = {
    "preemptions": ("sglang:num_retracted_requests_total",),
    "prefix_cache_queries": ("sglang:prompt_tokens_total",),  # per finished request: prompt tokens ...
    "prefix_cache_hits": ("sglang:cached_tokens_total",),  # ... and those found in the radix cache
    "prompt_tokens": ("sglang:prompt_tokens_total",),
    "generation_tokens": ("sglang:generation_tokens_total",),
    "requests_finished": ("sglang:num_requests_total",),
}
SGLANG_HISTOGRAMS: Mapping[str, tuple[str, ...]] = {
    "ttft": ("sglang:time_to_first_token_seconds",),
    "inter_token": ("sglang:inter_token_latency_seconds", "sglang:time_per_output_token_seconds"),
    "e2e": ("sglang:e2e_request_latency_seconds",),
    "queue": ("sglang:queue_time_seconds",),
}
MAX_GAUGES = {"kv_cache_usage", "prefix_cache_hit_rate", "max_total_num_tokens"}

FAMILIES = {
    "vllm": (VLLM_GAUGES, VLLM_COUNTERS, VLLM_HISTOGRAMS),
    "sglang": (SGLANG_GAUGES, SGLANG_COUNTERS, SGLANG_HISTOGRAMS),
}


@dataclass
class Histogram:
    """Cumulative buckets of one histogram: finite upper bounds, counts per bound and the +Inf count."""

    bounds: list[float] = field(default_factory=list)
    counts: list[float] = field(default_factory=list)  # len(bounds) + 1: the last is the +Inf bucket (= count)
    sum: float = 0.0


@dataclass
class EngineMetrics:
    """One engine's figures for one model: gauges as read, counters and histograms cumulative."""

    model_name: str | None
    engine_index: str | None
    gauges: dict[str, float] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    finished_by_reason: dict[str, float] = field(default_factory=dict)
    histograms: dict[str, Histogram] = field(default_factory=dict)
    cache_config: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # lines of the body that were skipped (malformed); the rest was read


GroupKey = tuple[str, str]  # (model_name, engine index)
LabelPairs = tuple[tuple[str, str], ...]  # the other labels of a series, sorted


def _group_key(engine: str, labels: Mapping[str, str]) -> GroupKey:
    if engine == "vllm":
        return labels.get("model_name", ""), labels.get("engine", "")
    return labels.get("model_name", ""), ""


def parse_exposition(text: str, engine: str) -> list[EngineMetrics]:
    """Parse one engine server's /metrics body; one `EngineMetrics` per (model, engine index).

    Raises ExpositionError when the body is not Prometheus text or has no series of `engine`."""
    if engine not in FAMILIES:
        raise ExpositionError(f"unknown serving engine {engine!r}")
    prefix = f"{engine}:"
    # name -> group -> other labels -> value; histogram buckets keyed by their `le`
    raw: dict[str, dict[GroupKey, dict[tuple[tuple[str, str], ...], float]]] = {}
    info: dict[str, dict[str, str]] = {}  # engine index -> CacheConfig labels (vLLM's info gauge has no model_name)
    samples, problems = parse_samples(text)
    for sample in samples:
        name = sample.name
        if not name.startswith(prefix) or name.endswith("_created"):
            continue
        value = float(sample.value)
        if not math.isfinite(value):  # NaN or inf: nothing to sum or compare; the other series are kept
            continue
        labels = dict(sample.labels)
        if name == VLLM_CACHE_INFO:
            info[labels.get("engine", "")] = {k: v for k, v in labels.items() if k not in ("model_name", "engine")}
            continue
        key = _group_key(engine, labels)
        rest = tuple(sorted((k, v) for k, v in labels.items() if k not in ("model_name", "engine")))
        raw.setdefault(name, {}).setdefault(key, {})[rest] = value
    if not raw:
        if problems:
            raise ExpositionError(f"malformed Prometheus exposition: {'; '.join(problems)}")
        raise ExpositionError(f"no {prefix} series in the metrics (is this a {engine} server?)")
    groups = _groups(engine, raw, info)
    for group in groups:
        group.problems = problems
    return groups


def _groups(engine: str, raw: Mapping[str, Mapping[GroupKey, Mapping[LabelPairs, float]]], info: Mapping[str, Mapping[str, str]]) -> list[EngineMetrics]:
    gauges, counters, histograms = FAMILIES[engine]
    keys = sorted({key for by_group in raw.values() for key in by_group})
    groups = []
    for key in keys:
        metrics = EngineMetrics(model_name=key[0] or None, engine_index=key[1] or None)
        # V1 labels the info gauge with the engine index, V0 with nothing; one engine: take what there is
        config = info.get(key[1]) or info.get("") or (next(iter(info.values())) if len(info) == 1 else None)
        metrics.cache_config = dict(config or {})
        for figure, names in gauges.items():
            values = _first_present(raw, names, key)
            if values:
                metrics.gauges[figure] = max(values.values()) if figure in MAX_GAUGES else sum(values.values())
        for figure, names in counters.items():
            values = _first_present(raw, names, key)
            if values:
                metrics.counters[figure] = sum(values.values())
        if engine == "vllm":
            for rest, value in (raw.get(VLLM_SUCCESS, {}).get(key) or {}).items():
                reason = dict(rest).get("finished_reason", "")
                metrics.finished_by_reason[reason] = metrics.finished_by_reason.get(reason, 0.0) + value
        for figure, names in histograms.items():
            histogram = _histogram(raw, names, key)
            if histogram is not None:
                metrics.histograms[figure] = histogram
        if metrics.gauges or metrics.counters or metrics.histograms:
            groups.append(metrics)
    if not groups:
        raise ExpositionError(f"no {engine} serving series in the metrics")
    return groups


def _first_present(raw: Mapping[str, Mapping[GroupKey, Mapping[LabelPairs, float]]], names: tuple[str, ...], key: GroupKey) -> Mapping[LabelPairs, float] | None:
    for name in names:
        values = raw.get(name, {}).get(key)
        if values:
            return values
    return None


def _histogram(raw: Mapping[str, Mapping[GroupKey, Mapping[LabelPairs, float]]], names: tuple[str, ...], key: GroupKey) -> Histogram | None:
    for name in names:
        buckets = raw.get(f"{name}_bucket", {}).get(key)
        if not buckets:
            continue
        by_bound: dict[float, float] = {}
        for rest, value in buckets.items():
            le = dict(rest).get("le")
            if le is None:
                continue
            bound = _bound(le)
            if bound is None:
                by_bound = {}  # a bucket with a bound that is not a number: the histogram is malformed
                break
            by_bound[bound] = by_bound.get(bound, 0.0) + value
        if math.inf not in by_bound:
            continue  # a histogram without its +Inf bucket is malformed: skip it, keep the rest
        finite = sorted(bound for bound in by_bound if math.isfinite(bound))
        total = sum((raw.get(f"{name}_sum", {}).get(key) or {}).values())
        return Histogram(bounds=finite, counts=[by_bound[b] for b in finite] + [by_bound[math.inf]], sum=total)
    return None


def _bound(le: str) -> float | None:
    """A bucket's upper bound (`le`), or None when it is not a number (NaN and -Inf are not bounds)."""
    try:
        bound = float(le)
    except ValueError:
        return None
    return None if math.isnan(bound) or bound == -math.inf else bound
