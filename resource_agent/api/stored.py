"""What a ResourceReport stores of a window summary: the reviewed table, and the stored form it gives.

The stored report keeps what the analysis and people use; the high-resolution series stay in
Prometheus (the agent's /metrics) and the full summary in `resource-agent scan` and recordings.
`KEPT_STATS` names, per window statistic, the members something reads from a stored report: the
analysis engine (rules and scores), the operator (fleet record, standing faults, LMCache apply),
workload usage (right-sizing) and the LLM prompt. It was measured with `python -m
devtools.report_fields` (attribute access traced over every evaluation case and scenario) and
completed by reading the readers' code for branches the data does not reach (marked "code");
tests/api/test_stored.py fails when a traced read is missing here, and the evaluation test
compares the findings on the stored form with those on the full summary for every case.

A statistic not in the table is not stored at all; a member not listed is left out (absent members
read as NaN, see `Stat`). Kept members are rounded to 3 significant digits (the rules compare them
with thresholds); every other number (times, sizes, counters, limits) is exact. Fields at their
default (empty lists and maps, zero counters, false flags, reachable instances) and None are left
out: validation restores them.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from pydantic import BaseModel

from resource_agent.api.samples import CollectorStatus
from resource_agent.api.summary import (
    CpuSummary,
    DiskSummary,
    EccSummary,
    GpuSection,
    GpuSharedFields,
    GpuSummary,
    LatencySummary,
    LMCacheInstanceSummary,
    MemorySummary,
    NetworkSummary,
    NodeInventory,
    NodeSummary,
    PressureLineSummary,
    ServingInstanceSummary,
    Stat,
)

SHARED_KEYS = tuple(info.alias or name for name, info in GpuSharedFields.model_fields.items())
STAT_DIGITS = 3  # significant digits of the stored window statistics

MEAN = ("mean",)
PROMPT_VIEW = ("mean", "p95", "max")  # what the LLM prompt quotes of a statistic, of the members stored

# (model, field) -> the members stored; a Stat field not listed is not stored.
KEPT_STATS: dict[tuple[type[BaseModel], str], tuple[str, ...]] = {
    # host
    (CpuSummary, "utilization_percent"): ("mean", "max"),  # cpu-starved rules, scores (mean); prompt (mean, max)
    (CpuSummary, "load1"): ("mean", "max"),  # prompt
    (CpuSummary, "steal_percent"): MEAN,  # cpu-steal
    (MemorySummary, "available_bytes"): ("min",),  # cache sizing (rules, LMCache apply)
    (MemorySummary, "available_percent"): ("mean", "max", "min"),  # memory-pressure (mean, min); prompt (mean, max)
    (MemorySummary, "swap_in_bytes_per_second"): MEAN,  # swapping
    (MemorySummary, "swap_out_bytes_per_second"): MEAN,
    (PressureLineSummary, "avg10"): MEAN,  # PSI rules and scores
    (DiskSummary, "used_percent"): ("last",),  # disk-full
    (DiskSummary, "busy_percent"): MEAN,  # disk-saturated
    (DiskSummary, "queue_depth"): MEAN,
    (DiskSummary, "await_seconds"): MEAN,  # code: disk-saturated, when the disk is busy
    (NetworkSummary, "rx_errors_per_second"): MEAN,  # nic-errors
    (NetworkSummary, "tx_errors_per_second"): MEAN,
    (NetworkSummary, "rx_drops_per_second"): MEAN,
    (NetworkSummary, "tx_drops_per_second"): MEAN,
    # GPUs
    (GpuSummary, "sm_utilization_percent"): ("mean", "p95", "max", "last"),  # idle/underused rules (mean, p95), a
    # hardware rule under load (last), scores, fleet and usage (mean, max); prompt
    (GpuSummary, "memory_used_percent"): ("mean", "max", "min", "last"),  # idle rules (mean), memory growth (min, last,
    # max), fleet and usage (max); prompt (mean, max)
    # not memory_used_bytes: its mean is memory_used_percent's mean of memoryTotalBytes (analysis.rules.gpu.held_memory_bytes)
    (GpuSummary, "temperature_celsius"): PROMPT_VIEW,  # thermal rules (p95, max); prompt
    (GpuSummary, "power_watts"): ("mean", "max"),  # power-capped (mean); prompt (mean, max)
    (GpuSummary, "sm_clock_busy_mhz"): MEAN,  # clocks-low
    # LMCache
    (LMCacheInstanceSummary, "local_cpu_usage_percent"): ("p95",),  # cache-full
    (LMCacheInstanceSummary, "local_cpu_usage_bytes"): ("last",),  # code: cache sizing without max_local_cpu_size
    (LMCacheInstanceSummary, "retrieve_latency_seconds"): ("p95",),  # slow retrieve
    (LMCacheInstanceSummary, "remote_ping_seconds"): ("p95",),  # code: remote backend slow, blocking timeout
    (LMCacheInstanceSummary, "remote_get_seconds"): ("p95",),  # code: blocking timeout
    # serving engines
    (ServingInstanceSummary, "kv_cache_usage_percent"): ("p95",),  # kv-bound, usage
    (ServingInstanceSummary, "requests_running"): ("max",),  # idle replica, usage
    (ServingInstanceSummary, "requests_waiting"): ("mean", "p95", "max"),  # queueing (mean, max), usage (p95)
}

# (model, field) -> left out of the stored report although set: nothing reads it from a report (measured, and
# grep-reviewed), and it is in the agent's /metrics, `scan` and recordings; or it changes every window.
DROPPED_FIELDS: frozenset[tuple[type[BaseModel], str]] = frozenset({
    (NodeInventory, "gpus"),  # the same GPUs (index, uuid, name, bus id, MIG, memory) are in gpu.devices
    (NodeInventory, "boot_id"),  # the agent keys its fault state by it; /metrics has it (resource_agent_node_info)
    (NodeSummary, "uptime_seconds"),  # changes every window; /metrics has it (resource_agent_uptime_seconds)
    (CollectorStatus, "duration_seconds"),  # changes every window; /metrics has the collectors' durations
    (PressureLineSummary, "stalled_seconds"),
    (DiskSummary, "total_bytes"),  # disk-full reads the used percent; /metrics has it (resource_agent_disk_size_bytes)
    # GPU: limits and states no rule compares with (NVML's, in /metrics and scan)
    (GpuSummary, "memory_reserved_bytes"),
    (GpuSummary, "power_limit_max_watts"),
    (GpuSummary, "memory_clock_max_mhz"),
    (GpuSummary, "performance_state"),
    # ECC: the counters and flags the hardware rules read stay (uncorrected volatile and increase, pending and
    # failed remaps and retirements); the lifetime and corrected counts are NVML's, in /metrics and scan
    (EccSummary, "corrected_volatile"),
    (EccSummary, "corrected_aggregate"),
    (EccSummary, "uncorrected_aggregate"),
    (EccSummary, "retired_pages_single_bit"),
    (EccSummary, "retired_pages_double_bit"),
    (EccSummary, "remapped_rows_correctable"),
    (EccSummary, "remapped_rows_uncorrectable"),
    # LMCache: counters behind the rates the rules read, and configuration no rule reads
    (LMCacheInstanceSummary, "requested_tokens"),
    (LMCacheInstanceSummary, "hit_tokens"),
    (LMCacheInstanceSummary, "remote_gets"),
    (LMCacheInstanceSummary, "saved_prefill_tokens"),
    (LMCacheInstanceSummary, "saved_kv_bytes"),
    (LMCacheInstanceSummary, "local_cpu_enabled"),
    (LMCacheInstanceSummary, "max_local_disk_size_bytes"),
    (LMCacheInstanceSummary, "model_name"),  # no reader; a serving engine linked to the instance (lmcacheInstance) names it
    # serving engines: throughput and configuration no rule reads (the engine's own /metrics has them)
    (ServingInstanceSummary, "prefix_cache_hits"),
    (ServingInstanceSummary, "prompt_tokens_per_second"),
    (ServingInstanceSummary, "generation_tokens_per_second"),
    (ServingInstanceSummary, "requests_finished_by_reason"),
    (ServingInstanceSummary, "e2e_latency_seconds"),
    (ServingInstanceSummary, "num_gpu_blocks"),
    (ServingInstanceSummary, "block_size"),
    (ServingInstanceSummary, "max_total_num_tokens"),
    (LatencySummary, "mean"),  # the rules read count and p95
    (LatencySummary, "p50"),
})

# (model, field) -> rounded to STAT_DIGITS significant digits like the statistics: derived rates and quantiles
ROUNDED_FIELDS: frozenset[tuple[type[BaseModel], str]] = frozenset({
    (LatencySummary, "p95"),
    (LMCacheInstanceSummary, "token_hit_rate"),
    (LMCacheInstanceSummary, "lookup_hit_rate"),
    (ServingInstanceSummary, "prefix_cache_hit_rate"),
    (ServingInstanceSummary, "requests_per_second"),
})

for (_model, _field), _members in KEPT_STATS.items():
    assert _field in _model.model_fields and set(_members) <= set(Stat.model_fields), (_model, _field, _members)
for _model, _field in DROPPED_FIELDS | ROUNDED_FIELDS:
    assert _field in _model.model_fields, (_model, _field)


def stored_form(model: BaseModel) -> dict[str, Any]:
    """The JSON-ready stored form of a summary (or any model in it): aliases, the kept statistics only."""
    wire: dict[str, Any] = {}
    kind = type(model)
    for name, info in kind.model_fields.items():
        value = getattr(model, name)
        if value is None or (kind, name) in DROPPED_FIELDS:
            continue
        if isinstance(value, Stat):
            members = KEPT_STATS.get((kind, name))
            if members is None:
                continue
            encoded: Any = {member: _significant(getattr(value, member)) for member in members
                            if math.isfinite(getattr(value, member))}
            if not encoded:
                continue
        elif (kind, name) in ROUNDED_FIELDS:
            encoded = _significant(value)
        elif isinstance(value, BaseModel):
            encoded = stored_form(value)
            if not encoded and not info.is_required():
                continue
        elif isinstance(value, list):
            encoded = [_json(item) for item in value]
        else:
            encoded = _json(value)
        if not info.is_required() and encoded == _stored_default(kind, name):
            continue
        wire[info.alias or name] = encoded
    return _share(wire) if isinstance(model, GpuSection) else wire


@cache
def _stored_default(kind: type[BaseModel], name: str) -> Any:
    """A field's default as stored, computed once per model field (a default factory's signature is inspected per call)."""
    return _json(kind.model_fields[name].get_default(call_default_factory=True))


def _share(section: dict[str, Any]) -> dict[str, Any]:
    """Move the `GpuSharedFields` every device has the same value of (two devices or more) into `shared`."""
    devices = section.get("devices") or []
    if len(devices) < 2:
        return section
    shared = {}
    for key in SHARED_KEYS:
        values = [device.get(key) for device in devices]
        if values[0] is not None and all(value == values[0] for value in values):
            shared[key] = values[0]
    if not shared:
        return section
    return {**section, "devices": [{key: value for key, value in device.items() if key not in shared} for device in devices],
            "shared": shared}


def _json(value: Any) -> Any:
    """A plain value as JSON (enums by value); models through `stored_form`."""
    if isinstance(value, BaseModel):
        return stored_form(value)
    if isinstance(value, dict):
        return {str(key): _json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json(item) for item in value]
    if isinstance(value, str):
        return str(value)  # a StrEnum's value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)  # 700 for 700.0: the same number, two bytes less
    return value


def _significant(number: float) -> Any:
    if not number or not math.isfinite(number):
        return _json(number)
    return _json(round(number, STAT_DIGITS - 1 - math.floor(math.log10(abs(number)))))
