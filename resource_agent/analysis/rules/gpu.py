"""GPU utilisation, memory, clocks, power, temperature and balance rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from resource_agent.analysis.rule import RuleContext, rule
from resource_agent.analysis.rules.serving import engines_on_gpu, idle_replica, is_idle_replica
from resource_agent.analysis.support import (
    action,
    evidence,
    gib,
    gpu_sensitive,
    gpu_target,
    make_finding,
    node_target,
    window_seconds,
)
from resource_agent.api.findings import ActionType, Category, Finding, Severity
from resource_agent.api.summary import GpuSummary, NodeSummary

THERMAL_REASONS = ("SwThermalSlowdown", "HwThermalSlowdown")
POWER_REASONS = ("SwPowerCap", "HwPowerBrakeSlowdown")
SLOWDOWN_REASONS = (*THERMAL_REASONS, *POWER_REASONS, "HwSlowdown")
# Reasons that explain a low clock reading: slowdowns, sync boost (clocks matched across a group) and GpuIdle.
EXPLAINING_REASONS = (*SLOWDOWN_REASONS, "SyncBoost", "GpuIdle")

IDLE_HOLDING_MEMORY = "gpu-idle-holding-memory"
THERMAL_THROTTLING = "gpu-thermal-throttling"


def reason_share(gpu: GpuSummary, reasons: Iterable[str]) -> float:
    """Share of samples with any of `reasons` (at least the largest single share)."""
    return max((gpu.clock_event_reasons.get(reason, 0.0) for reason in reasons), default=0.0)


def violation_share(gpu: GpuSummary, policy_name: str, seconds: float) -> float:
    """Share of the window the driver reports as a `policy_name` violation (thermal, power)."""
    if seconds <= 0:
        return 0.0
    spent = sum(value for key, value in gpu.violation_seconds.items() if policy_name in key.lower())
    return min(spent / seconds, 1.0)


def is_idle_holding_memory(gpu: GpuSummary, limits: Mapping[str, float]) -> bool:
    sm, used = gpu.sm_utilization_percent, gpu.memory_used_percent
    if sm is None or used is None:
        return False
    return (
        sm.mean <= limits["sm_utilization_mean_max"]
        and sm.p95 <= limits["sm_utilization_p95_max"]
        and used.mean >= limits["memory_used_percent_min"]
    )


def held_memory_bytes(gpu: GpuSummary) -> float:
    """GPU memory in use, on average over the window: the mean used percent of the GPU's memory (the stored report
    keeps the percent and the total, not the bytes as well); 0 when either is unknown."""
    used = gpu.memory_used_percent
    return used.mean / 100 * gpu.memory_total_bytes if used is not None and gpu.memory_total_bytes else 0.0


def youngest_process_age(gpu: GpuSummary, summary: NodeSummary) -> float | None:
    """Seconds since the GPU's youngest process started, as of the window's end (None: unknown)."""
    starts = [process.started_at for process in gpu.processes if process.started_at is not None]
    return max(summary.window.end - max(starts), 0.0) if starts else None


def loading_reason(gpu: GpuSummary, summary: NodeSummary, limits: Mapping[str, float]) -> str | None:
    """Why the GPU looks like a model is still loading onto it, or None.

    A serving engine loads weights and reserves its KV cache before it serves: memory rises
    while the SMs idle, which is not idle capacity. Signs: memory rose over the window (its
    minimum well below its last value), or the youngest process on the GPU is young."""
    used = gpu.memory_used_percent
    if used is not None and used.last - used.min >= limits["loading_growth_percent_min"]:
        return f"memory rose from {used.min:.0f}% to {used.last:.0f}% in the window"
    age = youngest_process_age(gpu, summary)
    if age is not None and age < limits["young_process_seconds"]:
        return f"its youngest process started {age:.0f} s ago"
    return None


def is_thermally_throttled(gpu: GpuSummary, limits: Mapping[str, float], seconds: float) -> bool:
    return (
        reason_share(gpu, THERMAL_REASONS) >= limits["reason_share_min"]
        or violation_share(gpu, "thermal", seconds) >= limits["violation_share_min"]
    )


@rule(
    IDLE_HOLDING_MEMORY,
    actions=(ActionType.RECLAIM_GPU_MEMORY,),
    family="gpu",
    category=Category.GPU,
    weight=60,
    defaults={
        "sm_utilization_mean_max": 5.0,
        "sm_utilization_p95_max": 10.0,
        "memory_used_percent_min": 20.0,
        "loading_growth_percent_min": 10.0,
        "young_process_seconds": 600.0,
        "warning_window_seconds": 1800.0,
    },
)
def idle_gpu_holding_memory(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """A GPU that holds much memory while its SMs stay idle for the whole window is allocated
    but unused: nobody else can schedule on it. Mean and p95 of SM utilisation must both be
    low, so a short burst of work does not hide an idle window and a short pause does not
    trigger it. A model still loading is not idle: while memory rises over the window (its
    minimum `loading_growth_percent_min` points below its last value) or the GPU's youngest
    process is younger than `young_process_seconds` (weights load, KV cache is reserved,
    CUDA graphs are captured), the rule waits. A serving replica idles through every traffic
    lull, so a short window makes this info (a candidate for consolidation); it becomes a
    warning once the GPU has been idle for `warning_window_seconds`. A GPU whose serving
    engines are all idle replicas is left to serving-idle-replica: the memory is the engine's
    reservation and the fix (scale the replica) is on the engine, so it is one recommendation."""
    limits = ctx.limits
    replica_limits = ctx.thresholds_of(idle_replica)
    severity = Severity.WARNING if window_seconds(summary) >= limits["warning_window_seconds"] else Severity.INFO
    findings = []
    for gpu in summary.gpu.devices:
        sm, used_percent = gpu.sm_utilization_percent, gpu.memory_used_percent
        if sm is None or used_percent is None or not is_idle_holding_memory(gpu, limits):
            continue
        if loading_reason(gpu, summary, limits) is not None:
            continue
        held_by = engines_on_gpu(summary, gpu)
        if replica_limits is not None and held_by and all(is_idle_replica(engine, replica_limits) for engine in held_by):
            continue
        held = held_memory_bytes(gpu)
        owners = f" by {len(gpu.processes)} process(es)" if gpu.processes else ""
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=severity,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index} holds {gib(held)} ({used_percent.mean:.0f}%){owners} "
                f"while its SM utilisation averages {sm.mean:.1f}%",
                evidence=[
                    evidence(summary, "gpu.sm_utilization_percent", "mean", sm.mean, limits["sm_utilization_mean_max"], "<=", "%"),
                    evidence(summary, "gpu.sm_utilization_percent", "p95", sm.p95, limits["sm_utilization_p95_max"], "<=", "%"),
                    evidence(summary, "gpu.memory_used_percent", "mean", used_percent.mean, limits["memory_used_percent_min"], ">=", "%"),
                ],
                action=action(ActionType.RECLAIM_GPU_MEMORY, gpuIndex=gpu.index, memoryBytes=int(held)),
                impact=f"Frees {gib(held)} of GPU memory (or the whole GPU) for work that uses it.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


UNDERUTILIZED = "gpu-underutilized"


@rule(
    UNDERUTILIZED,
    actions=(ActionType.CONSOLIDATE_GPU_WORKLOADS,),
    family="gpu",
    category=Category.GPU,
    weight=20,
    defaults={
        "sm_utilization_mean_max": 30.0,
        "sm_utilization_p95_max": 60.0,
        "memory_used_percent_min": 5.0,
        "loading_growth_percent_min": 10.0,
        "young_process_seconds": 600.0,
        "serving_waiting_mean_min": 1.0,
    },
)
def underutilized_gpu(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """A GPU that has work on it (memory allocated) but keeps its SMs mostly idle could be
    shared (MIG, time-slicing) or its work packed onto fewer GPUs. GPUs already reported as
    idle-but-holding-memory are left to that rule, GPUs with nothing on them are free
    capacity, not waste, and a GPU a model is still loading onto (memory rising, or a young
    process: see gpu-idle-holding-memory) is not judged yet. A GPU whose serving engine keeps
    requests waiting (`serving_waiting_mean_min` on average) is starved, not underused: more
    work would not fit, and serving-scheduler-bound says why."""
    limits = ctx.limits
    idle_limits = ctx.thresholds_of(idle_gpu_holding_memory)
    findings = []
    for gpu in summary.gpu.devices:
        sm, used = gpu.sm_utilization_percent, gpu.memory_used_percent
        if sm is None or used is None or used.mean < limits["memory_used_percent_min"]:
            continue
        if idle_limits is not None and is_idle_holding_memory(gpu, idle_limits):
            continue
        if loading_reason(gpu, summary, limits) is not None:
            continue
        if sm.mean > limits["sm_utilization_mean_max"] or sm.p95 > limits["sm_utilization_p95_max"]:
            continue
        if any(e.requests_waiting and e.requests_waiting.mean >= limits["serving_waiting_mean_min"] for e in engines_on_gpu(summary, gpu)):
            continue
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.INFO,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index} averages {sm.mean:.0f}% SM utilisation (p95 {sm.p95:.0f}%)",
                evidence=[
                    evidence(summary, "gpu.sm_utilization_percent", "mean", sm.mean, limits["sm_utilization_mean_max"], "<=", "%"),
                    evidence(summary, "gpu.sm_utilization_percent", "p95", sm.p95, limits["sm_utilization_p95_max"], "<=", "%"),
                ],
                action=action(ActionType.CONSOLIDATE_GPU_WORKLOADS, gpuIndex=gpu.index),
                impact="Sharing or consolidating the GPU's work can free a GPU.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


MEMORY_PRESSURE = "gpu-memory-pressure"


@rule(
    MEMORY_PRESSURE,
    actions=(ActionType.REDUCE_GPU_MEMORY_USAGE,),
    family="gpu",
    category=Category.GPU,
    weight=70,
    defaults={
        "peak_used_percent_min": 97.0,
        "growth_percent_min": 10.0,
        "critical_used_percent_min": 99.0,
        "young_process_seconds": 300.0,
        "target_percent": 90.0,
    },
)
def gpu_memory_pressure(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """GPU memory that grows to the limit risks CUDA out-of-memory errors. High use alone is
    no signal: vLLM reserves `gpu_memory_utilization` of the GPU's memory at start (0.9 by
    default, 0.92 in newer releases, 0.95 is common) and holds it steadily for its KV cache,
    as PyTorch's caching allocator holds what it took. So the rule needs memory that grew
    within the window to near the total: its last value at least `growth_percent_min` points
    above its minimum, with a peak of at least `peak_used_percent_min`. A model still loading
    (youngest process younger than `young_process_seconds`) grows the same way and is left
    alone. On a GPU held by a serving engine that reports its KV-cache use (vLLM, SGLang) the
    engine's pool is what can run out, and NVML's figure is its pre-allocation: such GPUs are
    judged by serving-kv-cache-bound (KV use and preemptions), not here."""
    limits = ctx.limits
    findings = []
    for gpu in summary.gpu.devices:
        used = gpu.memory_used_percent
        if used is None or used.max < limits["peak_used_percent_min"]:
            continue
        growth = used.last - used.min
        if growth < limits["growth_percent_min"]:
            continue
        if any(engine.kv_cache_usage_percent is not None for engine in engines_on_gpu(summary, gpu)):
            continue
        age = youngest_process_age(gpu, summary)
        if age is not None and age < limits["young_process_seconds"]:
            continue
        critical = used.max >= limits["critical_used_percent_min"]
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.CRITICAL if critical else Severity.WARNING,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index} memory grew from {used.min:.1f}% to {used.last:.1f}% used in the window, peak {used.max:.1f}%",
                evidence=[
                    evidence(summary, "gpu.memory_used_percent", "growth", growth, limits["growth_percent_min"], ">=", "%"),
                    evidence(summary, "gpu.memory_used_percent", "max", used.max, limits["peak_used_percent_min"], ">=", "%"),
                ],
                action=action(ActionType.REDUCE_GPU_MEMORY_USAGE, gpuIndex=gpu.index, targetPercent=limits["target_percent"]),
                impact="Headroom avoids out-of-memory crashes.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


@rule(
    THERMAL_THROTTLING,
    actions=(ActionType.CHECK_COOLING,),
    family="gpu",
    category=Category.GPU,
    weight=80,
    defaults={"reason_share_min": 0.1, "violation_share_min": 0.1},
)
def thermal_throttling(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """The driver lowers clocks when the GPU is too hot and says so in its clock event
    reasons (SwThermalSlowdown, HwThermalSlowdown) and thermal violation time. The rule reads
    those, never guesses from temperature. Hardware thermal slowdown cuts clocks hard and is
    critical."""
    limits = ctx.limits
    seconds = window_seconds(summary)
    findings = []
    for gpu in summary.gpu.devices:
        if not is_thermally_throttled(gpu, limits, seconds):
            continue
        share = reason_share(gpu, THERMAL_REASONS)
        hardware = gpu.clock_event_reasons.get("HwThermalSlowdown", 0.0) >= limits["reason_share_min"]
        temperature = f" at {gpu.temperature_celsius.p95:.0f}°C (p95)" if gpu.temperature_celsius else ""
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.CRITICAL if hardware else Severity.WARNING,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index} was thermally throttled in {share:.0%} of samples{temperature}",
                evidence=[
                    evidence(summary, "gpu.clock_event_reasons.thermal", "share", share, limits["reason_share_min"]),
                    evidence(summary, "gpu.violation_seconds.thermal", "share", violation_share(gpu, "thermal", seconds), limits["violation_share_min"]),
                ],
                action=action(ActionType.CHECK_COOLING, gpuIndex=gpu.index),
                impact="Restores full clocks: throttled GPUs serve fewer tokens per second.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


POWER_CAPPED = "gpu-power-capped"


@rule(
    POWER_CAPPED,
    actions=(ActionType.REVIEW_POWER_LIMIT,),
    family="gpu",
    category=Category.GPU,
    weight=50,
    defaults={
        "power_cap_share_min": 0.3,
        "power_brake_share_min": 0.05,
        "violation_share_min": 0.3,
        "limit_below_default_percent_min": 5.0,
        "busy_clock_ratio_min": 0.6,
    },
)
def power_capped(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """A busy GPU held at its default power limit is GPU Boost at work, not a misconfiguration:
    under full load an H100 SXM sits at its 700 W limit with SwPowerCap in most samples. The
    rule warns only when the power cap (SwPowerCap in at least `power_cap_share_min` of the
    samples, or power violation time) holds clocks and either the enforced limit is at least
    `limit_below_default_percent_min` % below the board's default limit (someone lowered it:
    nvidia-smi -pl, a power-capping policy), or the clocks on busy samples fall below
    `busy_clock_ratio_min` of the maximum. Where the default limit is unknown the finding is
    information only. Hardware power brake (HwPowerBrakeSlowdown) is an external signal,
    usually the PSU or the chassis, and is critical."""
    limits = ctx.limits
    seconds = window_seconds(summary)
    findings = []
    for gpu in summary.gpu.devices:
        cap_share = gpu.clock_event_reasons.get("SwPowerCap", 0.0)
        brake_share = gpu.clock_event_reasons.get("HwPowerBrakeSlowdown", 0.0)
        violation = violation_share(gpu, "power", seconds)
        brake = brake_share >= limits["power_brake_share_min"]
        held = cap_share >= limits["power_cap_share_min"] or violation >= limits["violation_share_min"]
        if not (brake or held):
            continue
        limit, default = gpu.power_limit_watts, gpu.power_default_limit_watts
        lowered = bool(limit and default and limit < default * (1 - limits["limit_below_default_percent_min"] / 100))
        busy_clock, clock_max = gpu.sm_clock_busy_mhz, gpu.sm_clock_max_mhz
        clock_ratio = busy_clock.mean / clock_max if busy_clock is not None and clock_max else None
        starved = clock_ratio is not None and clock_ratio < limits["busy_clock_ratio_min"]
        if brake:
            severity = Severity.CRITICAL
        elif lowered or starved:
            severity = Severity.WARNING
        elif default is None:
            severity = Severity.INFO  # cannot tell a lowered limit from GPU Boost at the default
        else:
            continue  # at the default limit: GPU Boost using the power it is allowed
        drawn = f", drawing {gpu.power_watts.mean:.0f} W" if gpu.power_watts else ""
        capped_at = f" of a {limit:.0f} W limit" if limit else ""
        below = f" ({default:.0f} W default)" if lowered and default else ""
        clocks = f", busy clocks {busy_clock.mean:.0f} of {clock_max:.0f} MHz" if starved and busy_clock and clock_max else ""
        what = "power brake (external)" if brake else "power cap"
        proof = [
            evidence(summary, "gpu.clock_event_reasons.SwPowerCap", "share", cap_share, limits["power_cap_share_min"]),
            evidence(summary, "gpu.clock_event_reasons.HwPowerBrakeSlowdown", "share", brake_share, limits["power_brake_share_min"]),
            evidence(summary, "gpu.violation_seconds.power", "share", violation, limits["violation_share_min"]),
        ]
        if limit and default:
            floor = default * (1 - limits["limit_below_default_percent_min"] / 100)
            proof.append(evidence(summary, "gpu.power_limit_watts", "last", limit, floor, "<", "W"))
        if clock_ratio is not None:
            proof.append(evidence(summary, "gpu.sm_clock_busy_mhz", "mean_of_max", clock_ratio, limits["busy_clock_ratio_min"], "<"))
        impact = (
            f"Restoring the default power limit ({default:.0f} W) restores full clocks."
            if lowered and default
            else "A power limit matched to the board restores full clocks."
        )
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=severity,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index} clocks held by the {what} in {max(cap_share, brake_share):.0%} of samples"
                f"{drawn}{capped_at}{below}{clocks}",
                evidence=proof,
                action=action(ActionType.REVIEW_POWER_LIMIT, gpuIndex=gpu.index, currentLimitWatts=limit),
                impact=impact,
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


CLOCKS_LOW = "gpu-clocks-low-unexplained"


@rule(
    CLOCKS_LOW,
    actions=(ActionType.RESET_APPLICATION_CLOCKS,),
    family="gpu",
    category=Category.GPU,
    weight=40,
    defaults={"busy_sm_utilization_mean_min": 50.0, "clock_ratio_max": 0.8, "explained_share_min": 0.1},
)
def clocks_low_unexplained(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """A busy GPU should run near its maximum SM clock. Low clocks on busy samples with no
    thermal, power, hardware slowdown, sync-boost or idle reason point at application clocks or a
    clock lock left behind (nvidia-smi -lgc/-ac). The clock is judged on busy samples only
    (`sm_clock_busy_mhz`): idle GPUs lower clocks on purpose, so a window mixing idle and busy
    samples says nothing, and without the busy-sample clock the rule stays silent. GpuIdle
    (the GPU idled within the sample) explains a low clock reading too."""
    limits = ctx.limits
    findings = []
    for gpu in summary.gpu.devices:
        sm, clock, clock_max = gpu.sm_utilization_percent, gpu.sm_clock_busy_mhz, gpu.sm_clock_max_mhz
        if sm is None or clock is None or not clock_max or sm.mean < limits["busy_sm_utilization_mean_min"]:
            continue
        floor = clock_max * limits["clock_ratio_max"]
        if clock.mean >= floor or reason_share(gpu, EXPLAINING_REASONS) >= limits["explained_share_min"]:
            continue
        app_clocks = gpu.clock_event_reasons.get("ApplicationsClocksSetting", 0.0)
        hint = " (application clocks setting reported)" if app_clocks > 0 else " with no slowdown reason"
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.WARNING,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index} runs at {clock.mean:.0f} MHz of {clock_max:.0f} MHz on busy samples while {sm.mean:.0f}% busy{hint}",
                evidence=[
                    evidence(summary, "gpu.sm_clock_busy_mhz", "mean", clock.mean, floor, "<", "MHz"),
                    evidence(summary, "gpu.sm_utilization_percent", "mean", sm.mean, limits["busy_sm_utilization_mean_min"], ">=", "%"),
                ],
                action=action(ActionType.RESET_APPLICATION_CLOCKS, gpuIndex=gpu.index),
                impact=f"Up to {clock_max / clock.mean - 1:.0%} more throughput at full clocks.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


NEAR_SLOWDOWN = "gpu-temperature-near-slowdown"


@rule(
    NEAR_SLOWDOWN,
    actions=(ActionType.CHECK_COOLING,),
    family="gpu",
    category=Category.GPU,
    weight=30,
    defaults={"slowdown_margin_celsius": 5.0, "shutdown_margin_celsius": 3.0},
)
def temperature_near_slowdown(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """A GPU running within a few degrees of its slowdown temperature will throttle on the
    next warm spell; near the shutdown temperature it may power off. This is the early
    warning: GPUs already thermally throttled are reported by gpu-thermal-throttling."""
    limits = ctx.limits
    throttle_limits = ctx.thresholds_of(thermal_throttling)
    seconds = window_seconds(summary)
    findings = []
    for gpu in summary.gpu.devices:
        temperature, slowdown = gpu.temperature_celsius, gpu.slowdown_temperature_celsius
        if temperature is None or slowdown is None:
            continue
        threshold = slowdown - limits["slowdown_margin_celsius"]
        if temperature.p95 < threshold:
            continue
        if throttle_limits is not None and is_thermally_throttled(gpu, throttle_limits, seconds):
            continue
        shutdown = gpu.shutdown_temperature_celsius
        critical = shutdown is not None and temperature.max >= shutdown - limits["shutdown_margin_celsius"]
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.CRITICAL if critical else Severity.WARNING,
                target=gpu_target(gpu),
                text=f"GPU {gpu.index} reaches {temperature.p95:.0f}°C (p95), {slowdown - temperature.p95:.0f}°C below its slowdown temperature",
                evidence=[evidence(summary, "gpu.temperature_celsius", "p95", temperature.p95, threshold, ">=", "celsius")],
                action=action(ActionType.CHECK_COOLING, gpuIndex=gpu.index),
                impact="Keeps the GPU out of thermal slowdown.",
                sensitive=gpu_sensitive(gpu),
            )
        )
    return findings


IMBALANCE = "gpu-imbalance"


@rule(
    IMBALANCE,
    actions=(ActionType.REBALANCE_GPU_WORKLOADS,),
    family="gpu",
    category=Category.GPU,
    weight=10,
    defaults={"active_sm_utilization_mean_min": 5.0, "spread_min": 40.0, "busiest_sm_utilization_mean_min": 60.0},
)
def gpu_imbalance(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """When some of a node's working GPUs are saturated and others lightly used, requests
    queue on the busy ones while capacity sits unused. Idle GPUs (below the active
    threshold) are left to the idle and underutilisation rules."""
    limits = ctx.limits
    active = [
        (gpu.sm_utilization_percent.mean, gpu.index)
        for gpu in summary.gpu.devices
        if gpu.sm_utilization_percent is not None
        and gpu.sm_utilization_percent.mean >= limits["active_sm_utilization_mean_min"]
    ]
    if len(active) < 2:
        return []
    (low, low_index), (high, high_index) = min(active), max(active)
    if high - low < limits["spread_min"] or high < limits["busiest_sm_utilization_mean_min"]:
        return []
    return [
        make_finding(
            summary,
            ctx,
            severity=Severity.INFO,
            target=node_target(summary),
            text=f"GPU {high_index} averages {high:.0f}% SM utilisation while GPU {low_index} averages {low:.0f}%",
            evidence=[
                evidence(summary, "gpu.sm_utilization_percent", "spread_of_means", high - low, limits["spread_min"], ">=", "%"),
                evidence(summary, "gpu.sm_utilization_percent", "max_of_means", high, limits["busiest_sm_utilization_mean_min"], ">=", "%"),
            ],
            action=action(ActionType.REBALANCE_GPU_WORKLOADS, fromGpuIndex=high_index, toGpuIndex=low_index),
            impact="Spreading work evenly lowers queueing on the busiest GPU.",
        )
    ]


RULES = (idle_gpu_holding_memory, underutilized_gpu, gpu_memory_pressure, thermal_throttling, power_capped, clocks_low_unexplained, temperature_near_slowdown, gpu_imbalance)
