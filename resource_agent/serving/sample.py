"""Turn one endpoint's scrape into `ServingInstanceSample`s, one per model and engine index (pure)."""

from __future__ import annotations

from resource_agent.api.samples import ServingHistogram, ServingInstanceSample
from resource_agent.serving.discovery import Endpoint, redact_url
from resource_agent.serving.metrics import EngineMetrics, Histogram

_HISTOGRAMS = {
    "ttft": "ttft_seconds",
    "inter_token": "inter_token_latency_seconds",
    "e2e": "e2e_latency_seconds",
    "queue": "queue_time_seconds",
}


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:  # "None" before the KV cache is profiled
        return None


def _percent(ratio: float | None) -> float | None:
    return ratio * 100.0 if ratio is not None else None


def _histogram(histogram: Histogram | None) -> ServingHistogram | None:
    if histogram is None:
        return None
    return ServingHistogram(bounds=list(histogram.bounds), counts=list(histogram.counts), sum=histogram.sum)


def identity(endpoint: Endpoint) -> dict[str, str | None]:
    return {
        "instance": endpoint.id,
        "engine": endpoint.engine,
        "pod": endpoint.pod,
        "namespace": endpoint.namespace,
        "pod_uid": endpoint.pod_uid,
        "url": redact_url(endpoint.url),
    }


def unreachable(endpoint: Endpoint, error: str) -> ServingInstanceSample:
    return ServingInstanceSample(**identity(endpoint), reachable=False, error=error)


def instance_samples(endpoint: Endpoint, groups: list[EngineMetrics]) -> list[ServingInstanceSample]:
    """One sample per (model, engine index) the endpoint serves."""
    samples = []
    for group in groups:
        gauges, counters, config = group.gauges, group.counters, group.cache_config
        histograms = {field: _histogram(group.histograms.get(name)) for name, field in _HISTOGRAMS.items()}
        samples.append(
            ServingInstanceSample(
                **identity(endpoint),
                model_name=group.model_name,
                engine_index=group.engine_index,
                requests_running=gauges.get("requests_running"),
                requests_waiting=gauges.get("requests_waiting"),
                kv_cache_usage_percent=_percent(gauges.get("kv_cache_usage")),
                prefix_cache_hit_rate_percent=_percent(gauges.get("prefix_cache_hit_rate")),
                preemptions_total=counters.get("preemptions"),
                prefix_cache_queries_total=counters.get("prefix_cache_queries"),
                prefix_cache_hits_total=counters.get("prefix_cache_hits"),
                prompt_tokens_total=counters.get("prompt_tokens"),
                generation_tokens_total=counters.get("generation_tokens"),
                requests_finished_total=counters.get("requests_finished"),
                requests_finished_by_reason=dict(group.finished_by_reason),
                gpu_memory_utilization=_number(config.get("gpu_memory_utilization")),
                num_gpu_blocks=_number(config.get("num_gpu_blocks")),
                block_size=_number(config.get("block_size")),
                max_total_num_tokens=gauges.get("max_total_num_tokens"),
                **histograms,
            )
        )
    return samples
