"""Build NodeSummary objects for rule tests: a healthy 2-GPU node, changed per test."""

from __future__ import annotations

from typing import Any

from resource_agent.api.samples import GpuProcess
from resource_agent.api.summary import (
    CpuSummary,
    DiskSummary,
    GpuSection,
    GpuSummary,
    LMCacheInstanceSummary,
    LMCacheSection,
    MemorySummary,
    NetworkSummary,
    NodeInventory,
    NodeSummary,
    PcieSummary,
    PressureLineSummary,
    PressureResourceSummary,
    PressureSummary,
    Stat,
    Window,
)

GIB = 1024**3
H100_MEMORY = 85520809984


def st(mean: float, p95: float | None = None, max: float | None = None, min: float | None = None, last: float | None = None) -> Stat:
    """A Stat around `mean`; unspecified statistics equal the mean."""
    return Stat(mean=mean, p95=mean if p95 is None else p95, max=mean if max is None else max, min=mean if min is None else min, last=mean if last is None else last)


def psi(some: float, full: float | None = None) -> PressureResourceSummary:
    return PressureResourceSummary(
        some=PressureLineSummary(avg10=st(some), avg60=st(some), stalled_seconds=some * 3),
        full=PressureLineSummary(avg10=st(full), avg60=st(full), stalled_seconds=full * 3) if full is not None else None,
    )


def gpu(index: int, **changes: Any) -> GpuSummary:
    """A busy, healthy H100."""
    values: dict[str, Any] = dict(
        index=index,
        uuid=f"GPU-0000000{index}-aaaa-bbbb-cccc-dddddddddddd",
        name="NVIDIA H100 80GB HBM3",
        sm_utilization_percent=st(88, 94, 97, 80),
        memory_utilization_percent=st(55),
        memory_used_bytes=st(0.9 * H100_MEMORY),
        memory_used_percent=st(90, 90.3, 90.5, 89.7),
        memory_total_bytes=H100_MEMORY,
        temperature_celsius=st(63, 66, 67, 60),
        slowdown_temperature_celsius=87,
        shutdown_temperature_celsius=92,
        power_watts=st(560, 600, 610, 520),
        power_limit_watts=700,
        power_default_limit_watts=700,
        power_limit_max_watts=700,
        sm_clock_mhz=st(1935, 1970, 1980, 1900),
        sm_clock_busy_mhz=st(1935, 1970, 1980, 1900),
        sm_clock_max_mhz=1980,
        memory_clock_mhz=st(2619),
        memory_clock_max_mhz=2619,
        pcie=PcieSummary(link_generation=5, link_generation_max=5, link_width=16, link_width_max=16),
        processes=[GpuProcess(pid=4000 + index, used_memory_bytes=int(0.9 * H100_MEMORY), name="vllm", pod_uid=f"pod-uid-{index}")],
    )
    values.update(changes)
    return GpuSummary(**values)


def lmcache(instance: str = "llm/vllm-0", **changes: Any) -> LMCacheInstanceSummary:
    """A healthy LMCache instance: 60% lookup hits, all loaded, some room left, 20 GB CPU tier."""
    namespace, pod = instance.split("/")
    values: dict[str, Any] = dict(
        instance=instance,
        pod=pod,
        namespace=namespace,
        urls=["http://10.0.0.5:6999"],
        lookup_tokens=1_000_000.0,
        lookup_hits=600_000.0,
        lookup_hit_rate=0.6,
        requested_tokens=600_000.0,  # retrieve asks only for what the lookup found
        hit_tokens=600_000.0,
        token_hit_rate=1.0,
        evictions=0.0,
        local_cpu_usage_bytes=st(14 * GIB),
        local_cpu_usage_percent=st(70, 72, 73, 68),
        max_local_cpu_size_bytes=20.0 * GIB,
        retrieve_latency_seconds=st(0.004, 0.006, 0.008, 0.002),
    )
    values.update(changes)
    return LMCacheInstanceSummary(**values)


def node(
    *,
    gpus: list[GpuSummary] | None = None,
    caches: list[LMCacheInstanceSummary] | None = None,
    samples: int = 60,
    **changes: Any,
) -> NodeSummary:
    """A healthy node: two busy H100s, calm CPU and memory, one disk and NIC."""
    total = 2048 * GIB
    values: dict[str, Any] = dict(
        node_name="gpu-node-1",
        agent_version="test",
        window=Window(start=1000.0, end=1000.0 + 5.0 * (samples - 1), samples=samples, interval_seconds=5.0),
        inventory=NodeInventory(hostname="gpu-node-1", cpu_cores=224, memory_total_bytes=total),
        cpu=CpuSummary(
            utilization_percent=st(35, 40, 42, 30),
            busiest_core_utilization_percent=st(92),
            iowait_percent=st(0.5),
            steal_percent=st(0.0),
            load1=st(80),
        ),
        memory=MemorySummary(
            total_bytes=total,
            available_bytes=st(0.62 * total, min=0.6 * total),
            used_bytes=st(0.3 * total),
            cached_bytes=st(0.05 * total),
            buffers_bytes=st(0.01 * total),
            available_percent=st(62, 63, 64, 60),
        ),
        pressure=PressureSummary(available=True, cpu=psi(2), memory=psi(0.1, 0.0), io=psi(0.5, 0.2)),
        disks=[DiskSummary(device="nvme0n1", mountpoint="/", total_bytes=1788 * GIB, used_percent=st(41), busy_percent=st(6, 10, 12, 2))],
        networks=[
            NetworkSummary(
                interface="bond0",
                rx_bytes_per_second=st(5e8),
                rx_errors_per_second=st(0.0),
                tx_errors_per_second=st(0.0),
                rx_drops_per_second=st(0.0),
                tx_drops_per_second=st(0.0),
            )
        ],
        gpu=GpuSection(available=True, devices=gpus if gpus is not None else [gpu(0), gpu(1)]),
        lmcache=LMCacheSection(instances=caches or []),
    )
    values.update(changes)
    return NodeSummary(**values)


def fired(findings: list, rule_id: str | None = None) -> list[tuple[str, str]]:
    """(rule, target name) of the findings, optionally of one rule."""
    return [(f.rule, f.target.name) for f in findings if rule_id is None or f.rule == rule_id]
