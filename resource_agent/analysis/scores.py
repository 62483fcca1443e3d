"""Efficiency, saturation and health scores, each 0-100 (formulas in docs/scores.md).

Efficiency says how much of what the node pays for does work: an idle resource scores
low. Saturation says how much work waits for the resource: a saturated one scores high.
An idle and a saturated CPU used to score the same 0; the two numbers now tell them apart.
Health says how fit the node is to take work: hardware faults weigh above efficiency and
capacity warnings, and broken hardware keeps it down until fixed.

Every score is a pure, monotone function of its inputs: less work never scores more
efficient, more stall never scores less saturated, and one more or one worse finding,
faulty GPU, lost GPU or failed collector never raises health.
"""

from __future__ import annotations

from collections.abc import Iterable

from resource_agent.api.findings import Category, Finding, Scores, Severity
from resource_agent.api.summary import GpuSummary, NodeSummary

# Target bands: below LOW the resource is paid for but idle, above HIGH it saturates.
CPU_BAND = (70.0, 90.0)
MEMORY_BAND = (70.0, 90.0)
CPU_STALL_WEIGHT = 1.0  # saturation points per percent of time tasks stall on CPU (PSI some avg10)
MEMORY_STALL_WEIGHT = 2.0  # saturation points per percent of time tasks fully stall on memory (PSI full avg10)
SWAP_PENALTY_PER_MIB_S = 1.0  # saturation points per MiB/s swapped in+out, at most SWAP_PENALTY_MAX
SWAP_PENALTY_MAX = 30.0

# A GPU has work when a process holds it, or it holds memory or computes above these floors;
# the others are free capacity (for the scheduler), not inefficiency.
GPU_IDLE_SM_PERCENT = 5.0
GPU_IDLE_MEMORY_PERCENT = 5.0

# Health. Hardware findings (category hardware) cost per finding; every other finding
# (efficiency, capacity, configuration) costs once per rule at its worst severity, and all
# of them together at most OTHER_PENALTY_MAX, which is less than one faulty GPU costs: no
# number of efficiency warnings outweighs broken hardware.
HARDWARE_SEVERITY_PENALTY = {Severity.CRITICAL: 25.0, Severity.WARNING: 8.0, Severity.INFO: 1.0}
OTHER_SEVERITY_PENALTY = {Severity.CRITICAL: 10.0, Severity.WARNING: 4.0, Severity.INFO: 1.0}
OTHER_PENALTY_MAX = 20.0
FAULTY_GPU_PENALTY = 25.0  # per faulty or lost GPU, > OTHER_PENALTY_MAX
FAILED_COLLECTOR_PENALTY = 5.0


def _clamp(value: float) -> float:
    return round(min(max(value, 0.0), 100.0), 1)


def use_score(percent: float, low: float) -> float:
    """Efficiency of a banded resource: linear from 0 at 0% to 100 at the band's low edge, 100 above."""
    return _clamp(100.0 * max(percent, 0.0) / low)


def over_band(percent: float, high: float) -> float:
    """How far into the top of the range a resource is: 0 at the band's high edge, 100 at 100%."""
    return _clamp(100.0 * (percent - high) / (100.0 - high)) if percent > high else 0.0


def gpu_score(sm_utilization_means: Iterable[float]) -> float | None:
    """Mean SM utilisation of the GPUs that have work; None when none has."""
    values = [min(max(value, 0.0), 100.0) for value in sm_utilization_means]
    return _clamp(sum(values) / len(values)) if values else None


def cpu_score(utilization_percent: float) -> float:
    """CPU efficiency: how much of the paid CPU does work (idle scores low)."""
    return use_score(utilization_percent, CPU_BAND[0])


def cpu_saturation(utilization_percent: float, stall_percent: float = 0.0) -> float:
    """CPU saturation: the larger of utilisation above the band and the time tasks wait for a CPU."""
    return _clamp(max(over_band(utilization_percent, CPU_BAND[1]), CPU_STALL_WEIGHT * max(stall_percent, 0.0)))


def memory_score(used_percent: float) -> float:
    """Memory efficiency: how much of the memory is in use (idle scores low)."""
    return use_score(used_percent, MEMORY_BAND[0])


def memory_saturation(used_percent: float, full_stall_percent: float = 0.0, swap_bytes_per_second: float = 0.0) -> float:
    """Memory saturation: use above the band, plus full stalls and swapping."""
    swap = min(SWAP_PENALTY_PER_MIB_S * max(swap_bytes_per_second, 0.0) / 1048576, SWAP_PENALTY_MAX)
    return _clamp(over_band(used_percent, MEMORY_BAND[1]) + MEMORY_STALL_WEIGHT * max(full_stall_percent, 0.0) + swap)


def cache_score(lookups_and_hits: Iterable[tuple[float, float]]) -> float | None:
    """Lookup hit rate over all instances (lookup hits / lookup tokens, weighted by lookup
    tokens); None when nothing was looked up."""
    pairs = [(tokens, hits) for tokens, hits in lookups_and_hits if tokens > 0]
    tokens = sum(pair[0] for pair in pairs)
    if tokens <= 0:
        return None
    return _clamp(100.0 * sum(min(max(hits, 0.0), looked) for looked, hits in pairs) / tokens)


HealthInput = tuple[str, bool, Severity]  # (rule, hardware, severity) of one finding


def health_score(findings: Iterable[HealthInput], faulty_gpus: int = 0, failed_collectors: int = 0) -> float:
    hardware = 0.0
    worst_other: dict[str, float] = {}
    for rule_id, is_hardware, severity in findings:
        if is_hardware:
            hardware += HARDWARE_SEVERITY_PENALTY[severity]
        else:
            worst_other[rule_id] = max(worst_other.get(rule_id, 0.0), OTHER_SEVERITY_PENALTY[severity])
    penalty = hardware + min(sum(worst_other.values()), OTHER_PENALTY_MAX)
    penalty += FAULTY_GPU_PENALTY * faulty_gpus + FAILED_COLLECTOR_PENALTY * failed_collectors
    return _clamp(100.0 - penalty)


def is_faulty(gpu: GpuSummary) -> bool:
    """Hardware state that makes a GPU unfit for work, whether or not a rule reported it:
    a standing fault (kept by the agent until the GPU is reset or the node reboots) or one
    seen in this window."""
    recovery = (gpu.recovery_action or "").lower()
    return bool(
        gpu.faults
        or gpu.ecc.remapped_rows_failure
        or gpu.ecc.uncorrected_increase > 0
        or (recovery and "none" not in recovery)
        or any(int(code) in (48, 79, 95) and count > 0 for code, count in gpu.xid_counts.items())
    )


def lost_gpus(summary: NodeSummary) -> int:
    """GPUs NVML lost, or the PCI bus lists and NVML does not see."""
    section = summary.gpu
    missing = (section.expected_count or 0) - len(section.devices) - len(section.lost)
    return len(section.lost) + max(missing, 0)


def has_work(gpu: GpuSummary) -> bool:
    """A process holds the GPU, or it holds memory or computes above the idle floors."""
    sm, memory = gpu.sm_utilization_percent, gpu.memory_used_percent
    return bool(
        gpu.processes
        or (sm is not None and sm.mean >= GPU_IDLE_SM_PERCENT)
        or (memory is not None and memory.mean >= GPU_IDLE_MEMORY_PERCENT)
    )


def efficiency(summary: NodeSummary) -> dict[str, float]:
    scores: dict[str, float] = {}
    working = [d.sm_utilization_percent.mean for d in summary.gpu.devices if d.sm_utilization_percent and has_work(d)]
    gpu = gpu_score(working)
    if gpu is not None:
        scores["gpu"] = gpu
    if summary.cpu.utilization_percent is not None:
        scores["cpu"] = cpu_score(summary.cpu.utilization_percent.mean)
    scores["memory"] = memory_score(100.0 - summary.memory.available_percent.mean)
    cache = cache_score((i.lookup_tokens, i.lookup_hits) for i in summary.lmcache.instances if i.reachable)
    if cache is not None:
        scores["cache"] = cache
    return scores


def saturation(summary: NodeSummary) -> dict[str, float]:
    scores: dict[str, float] = {}
    pressure, memory = summary.pressure, summary.memory
    if summary.cpu.utilization_percent is not None:
        stall = pressure.cpu.some.avg10.mean if pressure.cpu else 0.0
        scores["cpu"] = cpu_saturation(summary.cpu.utilization_percent.mean, stall)
    full = pressure.memory.full.avg10.mean if pressure.memory and pressure.memory.full else 0.0
    swap = sum(stat.mean for stat in (memory.swap_in_bytes_per_second, memory.swap_out_bytes_per_second) if stat)
    scores["memory"] = memory_saturation(100.0 - memory.available_percent.mean, full, swap)
    return scores


def health_inputs(findings: Iterable[Finding]) -> list[HealthInput]:
    return [(f.rule, f.category is Category.HARDWARE, f.severity) for f in findings]


def score(summary: NodeSummary, findings: Iterable[Finding]) -> Scores:
    faulty = sum(1 for gpu in summary.gpu.devices if is_faulty(gpu)) + lost_gpus(summary)
    failed = sum(1 for status in summary.collectors if status.state == "failed")
    return Scores(
        efficiency=efficiency(summary),
        saturation=saturation(summary),
        health=health_score(health_inputs(findings), faulty, failed),
    )


def unexplained_health(summary: NodeSummary, findings: Iterable[Finding]) -> float:
    """Health counting only what the node's own findings do not explain: faulty or lost GPUs
    no hardware finding is about (a disabled rule, no rule for it) and failed collectors.
    Everything a finding explains already has its own recommendation."""
    hardware = [f.target for f in findings if f.category is Category.HARDWARE]
    uuids = {t.gpu_uuid for t in hardware if t.gpu_uuid}
    indexes = {t.gpu_index for t in hardware if t.gpu_index is not None}

    def explained(uuid: str | None, index: int | None) -> bool:
        return (uuid is not None and uuid in uuids) or (index is not None and index in indexes)

    present = {gpu.uuid for gpu in summary.gpu.devices}
    faulty = sum(1 for gpu in summary.gpu.devices if is_faulty(gpu) and not explained(gpu.uuid, gpu.index))
    lost = sum(1 for gpu in summary.gpu.lost if not explained(gpu.uuid, gpu.index))
    missing = max((summary.gpu.expected_count or 0) - len(summary.gpu.devices) - len(summary.gpu.lost), 0)
    if any(t.gpu_uuid not in present for t in hardware if t.gpu_uuid) or any(
        t.gpu_index is not None and not t.gpu_uuid and t.gpu_index not in {g.index for g in summary.gpu.devices} for t in hardware
    ):
        missing = 0  # a finding is about a GPU NVML does not see
    failed = sum(1 for status in summary.collectors if status.state == "failed")
    return health_score([], faulty + lost + missing, failed)
