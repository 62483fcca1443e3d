"""Efficiency and health scores, each 0-100 (formulas in docs/scores.md).

Every score is a pure, monotone function of its inputs: a worse input (less GPU work,
more stall, further from the target band, one more or one worse finding) never scores
better.
"""

from __future__ import annotations

from collections.abc import Iterable

from resource_agent.api.findings import Finding, Scores, Severity
from resource_agent.api.summary import GpuSummary, NodeSummary

# Target bands: below LOW the resource is paid for but idle, above HIGH it saturates.
CPU_BAND = (70.0, 90.0)
MEMORY_BAND = (70.0, 90.0)
OVER_BAND_SLOPE = 5.0  # points lost per percent above the band
CPU_STALL_WEIGHT = 1.0  # points per percent of time tasks stall on CPU (PSI some avg10)
MEMORY_STALL_WEIGHT = 2.0  # points per percent of time tasks fully stall on memory (PSI full avg10)
SWAP_PENALTY_PER_MIB_S = 1.0  # points per MiB/s swapped in+out, at most SWAP_PENALTY_MAX
SWAP_PENALTY_MAX = 30.0

SEVERITY_PENALTY = {Severity.CRITICAL: 25.0, Severity.WARNING: 8.0, Severity.INFO: 1.0}
FAULTY_GPU_PENALTY = 20.0
FAILED_COLLECTOR_PENALTY = 5.0


def _clamp(value: float) -> float:
    return round(min(max(value, 0.0), 100.0), 1)


def band_score(percent: float, low: float, high: float, over_slope: float = OVER_BAND_SLOPE) -> float:
    """100 inside [low, high]; linear to 0 below low; `over_slope` points per percent above high."""
    if percent < low:
        return _clamp(100.0 * max(percent, 0.0) / low)
    if percent <= high:
        return 100.0
    return _clamp(100.0 - (percent - high) * over_slope)


def gpu_score(sm_utilization_means: Iterable[float]) -> float | None:
    """Mean SM utilisation of the node's GPUs; None without GPUs."""
    values = [min(max(value, 0.0), 100.0) for value in sm_utilization_means]
    return _clamp(sum(values) / len(values)) if values else None


def cpu_score(utilization_percent: float, stall_percent: float = 0.0) -> float:
    return _clamp(band_score(utilization_percent, *CPU_BAND) - CPU_STALL_WEIGHT * max(stall_percent, 0.0))


def memory_score(used_percent: float, full_stall_percent: float = 0.0, swap_bytes_per_second: float = 0.0) -> float:
    swap_penalty = min(SWAP_PENALTY_PER_MIB_S * max(swap_bytes_per_second, 0.0) / 1048576, SWAP_PENALTY_MAX)
    return _clamp(band_score(used_percent, *MEMORY_BAND) - MEMORY_STALL_WEIGHT * max(full_stall_percent, 0.0) - swap_penalty)


def cache_score(requested_and_hit: Iterable[tuple[float, float]]) -> float | None:
    """Token hit rate over all instances, weighted by requested tokens; None when nothing was requested."""
    pairs = [(requested, hit) for requested, hit in requested_and_hit if requested > 0]
    requested = sum(pair[0] for pair in pairs)
    if requested <= 0:
        return None
    return _clamp(100.0 * sum(min(hit, req) for req, hit in pairs) / requested)


def health_score(severities: Iterable[Severity], faulty_gpus: int = 0, failed_collectors: int = 0) -> float:
    penalty = sum(SEVERITY_PENALTY[severity] for severity in severities)
    penalty += FAULTY_GPU_PENALTY * faulty_gpus + FAILED_COLLECTOR_PENALTY * failed_collectors
    return _clamp(100.0 - penalty)


def is_faulty(gpu: GpuSummary) -> bool:
    """Hardware state that makes a GPU unfit for work, whether or not a rule reported it."""
    recovery = (gpu.recovery_action or "").lower()
    return bool(
        gpu.ecc.remapped_rows_failure
        or gpu.ecc.uncorrected_increase > 0
        or (recovery and "none" not in recovery)
        or any(int(code) in (48, 79, 95) and count > 0 for code, count in gpu.xid_counts.items())
    )


def efficiency(summary: NodeSummary) -> dict[str, float]:
    scores: dict[str, float] = {}
    gpu = gpu_score(d.sm_utilization_percent.mean for d in summary.gpu.devices if d.sm_utilization_percent)
    if gpu is not None:
        scores["gpu"] = gpu
    pressure = summary.pressure
    if summary.cpu.utilization_percent is not None:
        stall = pressure.cpu.some.avg10.mean if pressure.cpu else 0.0
        scores["cpu"] = cpu_score(summary.cpu.utilization_percent.mean, stall)
    memory = summary.memory
    full = pressure.memory.full.avg10.mean if pressure.memory and pressure.memory.full else 0.0
    swap = sum(stat.mean for stat in (memory.swap_in_bytes_per_second, memory.swap_out_bytes_per_second) if stat)
    scores["memory"] = memory_score(100.0 - memory.available_percent.mean, full, swap)
    cache = cache_score((i.requested_tokens, i.hit_tokens) for i in summary.lmcache.instances if i.reachable)
    if cache is not None:
        scores["cache"] = cache
    return scores


def score(summary: NodeSummary, findings: Iterable[Finding]) -> Scores:
    faulty = sum(1 for gpu in summary.gpu.devices if is_faulty(gpu))
    failed = sum(1 for status in summary.collectors if status.state == "failed")
    return Scores(
        efficiency=efficiency(summary),
        health=health_score((finding.severity for finding in findings), faulty, failed),
    )
