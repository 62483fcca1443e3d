"""Host rules: CPU, memory, disk and network."""

from __future__ import annotations

from collections.abc import Mapping

from resource_agent.analysis.rule import RuleContext, rule
from resource_agent.analysis.support import action, evidence, make_finding, node_target
from resource_agent.api.findings import ActionType, Category, Evidence, Finding, Severity, Target, TargetKind
from resource_agent.api.summary import GpuSummary, NodeSummary, PressureResourceSummary

CPU_SATURATED = "host-cpu-saturated"
CPU_STARVING_GPUS = "host-cpu-starving-gpus"
MEMORY_PRESSURE = "host-memory-pressure"
DISK_FULL = "host-disk-full"
DISK_IO_SATURATED = "host-disk-io-saturated"
NETWORK_ERRORS = "host-network-errors"
CPU_STEAL = "host-cpu-steal"


def _some_avg10(resource: PressureResourceSummary | None) -> float | None:
    return resource.some.avg10.mean if resource else None


def _full_avg10(resource: PressureResourceSummary | None) -> float | None:
    return resource.full.avg10.mean if resource and resource.full else None


@rule(
    CPU_SATURATED,
    actions=(ActionType.ADD_CPU_CAPACITY,),
    family="host",
    category=Category.CPU,
    weight=50,
    defaults={"utilization_mean_min": 90.0, "psi_some_avg10_mean_min": 40.0, "busy_psi_some_avg10_mean_min": 10.0},
)
def cpu_saturated(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """Tasks stalled waiting for a CPU (PSI cpu some) for a large share of the time, or all
    cores busy while tasks do wait for them: tokenisation, scheduling and data loading slow
    down for everything on the node. PSI catches saturation that a utilisation average hides
    (e.g. CPU limits). Busy CPUs alone are no saturation: when PSI shows that tasks rarely
    wait (below busy_psi_some_avg10_mean_min), the spare CPU time is merely in use (batch
    work next to serving); without PSI, high utilisation alone decides."""
    limits = ctx.limits
    utilization = summary.cpu.utilization_percent
    stall = _some_avg10(summary.pressure.cpu)
    busy = (
        utilization is not None
        and utilization.mean >= limits["utilization_mean_min"]
        and (stall is None or stall >= limits["busy_psi_some_avg10_mean_min"])
    )
    stalled = stall is not None and stall >= limits["psi_some_avg10_mean_min"]
    if not (busy or stalled):
        return []
    proof = []
    if utilization is not None:
        proof.append(evidence(summary, "cpu.utilization_percent", "mean", utilization.mean, limits["utilization_mean_min"], unit="%"))
    if stall is not None:
        threshold = limits["psi_some_avg10_mean_min"] if stalled else limits["busy_psi_some_avg10_mean_min"]
        proof.append(evidence(summary, "pressure.cpu.some.avg10", "mean", stall, threshold, unit="%"))
    what = f"{utilization.mean:.0f}% busy" if busy and utilization else f"tasks stalled on CPU {stall:.0f}% of the time"
    return [
        make_finding(
            summary,
            ctx,
            severity=Severity.WARNING,
            target=node_target(summary),
            text=f"The node's CPUs are saturated: {what}",
            evidence=proof,
            action=action(ActionType.ADD_CPU_CAPACITY, reason="CPU saturated"),
            impact="Lower request latency for everything on the node.",
        )
    ]


def _has_work(gpu: GpuSummary, limits: Mapping[str, float]) -> bool:
    """A GPU that holds a model for a process and is given work, yet runs below the busy level."""
    if gpu.memory_used_percent is None or gpu.sm_utilization_percent is None:
        return False
    # a listed process must hold memory; without a process list (not visible), memory used stands for it
    held = not gpu.processes or any(p.used_memory_bytes is None or p.used_memory_bytes > 0 for p in gpu.processes)
    return (
        held
        and gpu.memory_used_percent.mean >= limits["gpu_memory_used_percent_min"]
        and limits["gpu_sm_utilization_mean_min"] <= gpu.sm_utilization_percent.mean <= limits["gpu_sm_utilization_mean_max"]
    )


@rule(
    CPU_STARVING_GPUS,
    actions=(ActionType.ADD_CPU_CAPACITY,),
    family="host",
    category=Category.CPU,
    weight=75,
    defaults={
        "gpu_memory_used_percent_min": 50.0,
        "gpu_sm_utilization_mean_min": 5.0,
        "gpu_sm_utilization_mean_max": 50.0,
        "cpu_utilization_mean_min": 85.0,
        "psi_cpu_some_avg10_mean_min": 25.0,
    },
)
def cpu_starving_gpus(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """GPUs that hold a model and are given work (memory held by their processes, SM
    utilisation above the idle floor) but run at low SM utilisation while the host's CPUs
    are busy (utilisation, which excludes iowait) or tasks stall waiting for a CPU (PSI cpu
    some) are starved by the host: the GPU waits for tokenisation, batching or scheduling.
    Adding GPUs will not help; more CPU will. I/O wait is no CPU demand: an idle replica
    (SM near 0%) next to another pod's model download (high iowait, CPUs not busy) is not
    starving, and neither is an idle replica next to a CPU-heavy neighbour (no GPU demand)."""
    limits = ctx.limits
    starved = [gpu for gpu in summary.gpu.devices if _has_work(gpu, limits)]
    if not starved:
        return []
    checks: list[tuple[str, float | None, str]] = [
        ("cpu.utilization_percent", summary.cpu.utilization_percent.mean if summary.cpu.utilization_percent else None, "cpu_utilization_mean_min"),
        ("pressure.cpu.some.avg10", _some_avg10(summary.pressure.cpu), "psi_cpu_some_avg10_mean_min"),
    ]
    fired: list[Evidence] = [
        evidence(summary, metric, "mean", observed, limits[key], unit="%")
        for metric, observed, key in checks
        if observed is not None and observed >= limits[key]
    ]
    if not fired:
        return []
    indexes = ", ".join(str(gpu.index) for gpu in starved)
    means = [gpu.sm_utilization_percent.mean for gpu in starved if gpu.sm_utilization_percent]
    lowest, highest = min(means), max(means)
    causes = " and ".join(f"{item.metric} {item.observed:.0f}%" for item in fired)
    return [
        make_finding(
            summary,
            ctx,
            severity=Severity.WARNING,
            target=node_target(summary),
            text=f"GPUs {indexes} hold models and get work but average {lowest:.0f}-{highest:.0f}% SM utilisation while {causes}",
            evidence=[
                *fired,
                evidence(summary, "gpu.sm_utilization_percent", "max_of_means", highest, limits["gpu_sm_utilization_mean_max"], "<=", "%"),
            ],
            action=action(ActionType.ADD_CPU_CAPACITY, reason=f"host CPU starves GPUs {indexes}"),
            impact=f"Feeding {len(starved)} GPU(s) faster raises their throughput without new GPUs.",
        )
    ]


@rule(
    MEMORY_PRESSURE,
    actions=(ActionType.ADD_MEMORY_CAPACITY,),
    family="host",
    category=Category.MEMORY,
    weight=80,
    defaults={
        "available_percent_mean_max": 10.0,
        "psi_full_avg10_mean_min": 5.0,
        "swap_bytes_per_second_mean_min": 1048576.0,
        "critical_psi_full_avg10_mean_min": 20.0,
        "critical_available_percent_min": 2.0,
    },
)
def memory_pressure(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """Little available memory, tasks fully stalled on memory (PSI memory full: reclaim or
    swap-in stalls everything runnable) or steady swapping slow the node down and precede
    the OOM killer. Full stalls above the critical level or nearly no memory left are
    critical."""
    limits = ctx.limits
    memory = summary.memory
    full = _full_avg10(summary.pressure.memory)
    swap = sum(stat.mean for stat in (memory.swap_in_bytes_per_second, memory.swap_out_bytes_per_second) if stat)
    signals: list[Evidence] = []
    if memory.available_percent.mean <= limits["available_percent_mean_max"]:
        signals.append(evidence(summary, "memory.available_percent", "mean", memory.available_percent.mean, limits["available_percent_mean_max"], "<=", "%"))
    if full is not None and full >= limits["psi_full_avg10_mean_min"]:
        signals.append(evidence(summary, "pressure.memory.full.avg10", "mean", full, limits["psi_full_avg10_mean_min"], unit="%"))
    if swap >= limits["swap_bytes_per_second_mean_min"]:
        signals.append(evidence(summary, "memory.swap_bytes_per_second", "mean", swap, limits["swap_bytes_per_second_mean_min"], unit="B/s"))
    if not signals:
        return []
    critical = (full is not None and full >= limits["critical_psi_full_avg10_mean_min"]) or (
        memory.available_percent.min <= limits["critical_available_percent_min"]
    )
    return [
        make_finding(
            summary,
            ctx,
            severity=Severity.CRITICAL if critical else Severity.WARNING,
            target=node_target(summary),
            text=f"Host memory pressure: {memory.available_percent.mean:.0f}% available"
            + (f", tasks fully stalled {full:.0f}% of the time" if full is not None else "")
            + (f", swapping {swap / 1048576:.0f} MiB/s" if swap else ""),
            evidence=signals,
            action=action(ActionType.ADD_MEMORY_CAPACITY, reason="host memory pressure"),
            impact="Avoids OOM kills and reclaim stalls of the serving processes.",
        )
    ]


@rule(
    DISK_FULL,
    actions=(ActionType.FREE_DISK_SPACE,),
    family="host",
    category=Category.DISK,
    weight=60,
    defaults={"used_percent_min": 90.0, "critical_used_percent_min": 97.0},
    sustained=False,
)
def disk_full(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """A nearly full filesystem breaks model downloads, logs, container images and LMCache's
    disk tier; at 100% writes fail. Critical above the critical level."""
    limits = ctx.limits
    findings = []
    for disk in summary.disks:
        used = disk.used_percent
        if used is None or used.last < limits["used_percent_min"]:
            continue
        critical = used.last >= limits["critical_used_percent_min"]
        where = disk.mountpoint or disk.device
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.CRITICAL if critical else Severity.WARNING,
                target=Target(kind=TargetKind.DISK, name=disk.device),
                text=f"Filesystem {where} on {disk.device} is {used.last:.1f}% full",
                evidence=[evidence(summary, "disk.used_percent", "last", used.last, limits["used_percent_min"], unit="%")],
                action=action(ActionType.FREE_DISK_SPACE, device=disk.device, mountpoint=disk.mountpoint),
                impact="Keeps writes (images, logs, cache) from failing.",
                sensitive=[("mountpoint", disk.mountpoint)] if disk.mountpoint else [],
            )
        )
    return findings


@rule(
    DISK_IO_SATURATED,
    actions=(ActionType.REDUCE_DISK_IO,),
    family="host",
    category=Category.DISK,
    weight=35,
    defaults={
        "busy_percent_mean_min": 90.0,
        "queue_depth_mean_min": 8.0,
        "await_seconds_mean_min": 0.05,
        "busy_percent_mean_min_without_queue": 99.0,
        "psi_io_some_avg10_mean_min": 25.0,
    },
)
def disk_io_saturated(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """A device whose requests queue up makes every read and write wait: model loads and
    LMCache's disk tier slow down. Busy % (time with at least one request in flight) alone
    is no saturation signal for SSDs and NVMe, which serve many requests in parallel: a
    device can be 100% busy at queue depth 1 with sub-millisecond latency. So the device
    must also hold a deep queue (queue depth = rate of weighted I/O time, as node_exporter's
    node_disk_io_time_weighted_seconds_total) and, when await is known, requests must wait
    long (await). When the queue depth is unknown, only a device busy nearly all the time
    while tasks stall on I/O (PSI io some) counts."""
    limits = ctx.limits
    io_stall = _some_avg10(summary.pressure.io)
    findings = []
    for disk in summary.disks:
        busy, queue, wait = disk.busy_percent, disk.queue_depth, disk.await_seconds
        if busy is None or busy.mean < limits["busy_percent_mean_min"]:
            continue
        proof = [evidence(summary, "disk.busy_percent", "mean", busy.mean, limits["busy_percent_mean_min"], unit="%")]
        if queue is not None:
            if queue.mean < limits["queue_depth_mean_min"]:
                continue
            if wait is not None and wait.mean < limits["await_seconds_mean_min"]:
                continue
            proof.append(evidence(summary, "disk.queue_depth", "mean", queue.mean, limits["queue_depth_mean_min"]))
            if wait is not None:
                proof.append(evidence(summary, "disk.await_seconds", "mean", wait.mean, limits["await_seconds_mean_min"], unit="s"))
            detail = f"queue depth {queue.mean:.1f}" + (f", await {wait.mean * 1000:.0f} ms" if wait is not None else "")
        else:
            if busy.mean < limits["busy_percent_mean_min_without_queue"] or io_stall is None or io_stall < limits["psi_io_some_avg10_mean_min"]:
                continue
            proof = [
                evidence(summary, "disk.busy_percent", "mean", busy.mean, limits["busy_percent_mean_min_without_queue"], unit="%"),
                evidence(summary, "pressure.io.some.avg10", "mean", io_stall, limits["psi_io_some_avg10_mean_min"], unit="%"),
            ]
            detail = f"tasks stalled on I/O {io_stall:.0f}% of the time"
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.WARNING,
                target=Target(kind=TargetKind.DISK, name=disk.device),
                text=f"Disk {disk.device} is saturated: busy {busy.mean:.0f}% of the time, {detail}",
                evidence=proof,
                action=action(ActionType.REDUCE_DISK_IO, device=disk.device),
                impact="Faster model loads and disk-cache reads.",
            )
        )
    return findings


@rule(
    NETWORK_ERRORS,
    actions=(ActionType.CHECK_NETWORK,),
    family="host",
    category=Category.NETWORK,
    weight=45,
    defaults={"errors_per_second_mean_min": 0.1, "drops_per_second_mean_min": 10.0},
)
def network_errors(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """Sustained receive or transmit errors point at cabling, optics, NIC firmware or switch
    ports; heavy drops at overflowing ring buffers. Both slow remote KV-cache traffic and
    multi-node inference. The loopback interface is ignored."""
    limits = ctx.limits
    findings = []
    for nic in summary.networks:
        if nic.interface == "lo":
            continue
        errors = sum(stat.mean for stat in (nic.rx_errors_per_second, nic.tx_errors_per_second) if stat)
        drops = sum(stat.mean for stat in (nic.rx_drops_per_second, nic.tx_drops_per_second) if stat)
        if errors < limits["errors_per_second_mean_min"] and drops < limits["drops_per_second_mean_min"]:
            continue
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.WARNING,
                target=Target(kind=TargetKind.NETWORK_INTERFACE, name=nic.interface),
                text=f"Interface {nic.interface} sees {errors:.2f} errors/s and {drops:.1f} drops/s",
                evidence=[
                    evidence(summary, "network.errors_per_second", "mean", errors, limits["errors_per_second_mean_min"], unit="1/s"),
                    evidence(summary, "network.drops_per_second", "mean", drops, limits["drops_per_second_mean_min"], unit="1/s"),
                ],
                action=action(ActionType.CHECK_NETWORK, interface=nic.interface),
                impact="Clean links avoid retransmits and stalls of remote cache and multi-node traffic.",
            )
        )
    return findings


@rule(
    CPU_STEAL,
    actions=(ActionType.MIGRATE_WORKLOAD,),
    family="host",
    category=Category.CPU,
    weight=30,
    defaults={"steal_percent_mean_min": 10.0},
)
def cpu_steal(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """High steal time means the hypervisor gives this virtual machine's CPU time to others:
    the node gets less CPU than it was sold, and latency jitters."""
    limits = ctx.limits
    steal = summary.cpu.steal_percent
    if steal is None or steal.mean < limits["steal_percent_mean_min"]:
        return []
    return [
        make_finding(
            summary,
            ctx,
            severity=Severity.WARNING,
            target=node_target(summary),
            text=f"The hypervisor steals {steal.mean:.0f}% of the node's CPU time",
            evidence=[evidence(summary, "cpu.steal_percent", "mean", steal.mean, limits["steal_percent_mean_min"], unit="%")],
            action=action(ActionType.MIGRATE_WORKLOAD, reason=f"CPU steal {steal.mean:.0f}%"),
            impact="A host without noisy neighbours gives back the stolen CPU time.",
        )
    ]


RULES = (cpu_saturated, cpu_starving_gpus, memory_pressure, disk_full, disk_io_saturated, network_errors, cpu_steal)
