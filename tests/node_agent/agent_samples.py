"""Builders of realistic samples for the node agent's tests."""

from __future__ import annotations

from resource_agent.api.samples import (
    CpuSample,
    DiskSample,
    GpuDeviceSample,
    GpuSample,
    IrqPressure,
    LMCacheInstanceSample,
    LMCacheSample,
    MemorySample,
    NetworkSample,
    PressureLine,
    PressureResource,
    PressureSample,
    Sample,
    SystemSample,
    XidEvent,
)

GIB = 1024**3


def system(step: int, *, disks: tuple[str, ...] = ("nvme0n1",), nics: tuple[str, ...] = ("eth0",)) -> SystemSample:
    return SystemSample(
        hostname="gpu-node-1",
        boot_id="b007",
        uptime_seconds=1000.0 + step * 5,
        cpu=CpuSample(
            utilization_percent=float(step % 100),
            per_core_utilization_percent=[float(step % 100), float((step * 7) % 100)],
            iowait_percent=1.0,
            steal_percent=0.0,
            frequency_mhz=2400.0,
            load1=step % 8 / 2,
            load5=1.0,
            load15=1.0,
            context_switches_per_second=1000.0 + step,
            logical_cores=2,
            model="Test CPU",
        ),
        memory=MemorySample(
            total_bytes=64 * GIB,
            available_bytes=(32 + step % 8) * GIB,
            used_bytes=(32 - step % 8) * GIB,
            cached_bytes=4 * GIB,
            buffers_bytes=GIB,
        ),
        disks=[
            DiskSample(
                device=d, mountpoint="/", total_bytes=100 * GIB, used_bytes=50 * GIB, read_bytes_per_second=1e6, busy_percent=5.0,
                queue_depth=0.5 * (step % 4), await_seconds=0.002 if step % 4 else None,
            )
            for d in disks
        ],
        networks=[NetworkSample(interface=n, rx_bytes_per_second=1e5 * (step % 3), tx_bytes_per_second=2e5) for n in nics],
    )


def gpu_device(index: int, step: int, **overrides: object) -> GpuDeviceSample:
    fields: dict[str, object] = dict(
        index=index,
        uuid=f"GPU-{index:04d}",
        name="NVIDIA H100 80GB HBM3",
        pci_bus_id=f"00000000:{index + 10:02X}:00.0",
        sm_utilization_percent=float((step + index) % 100),
        memory_utilization_percent=30.0,
        memory_used_bytes=40 * GIB,
        memory_total_bytes=80 * GIB,
        temperature_celsius=60.0 + step % 10,
        power_watts=300.0 + step % 50,
        power_limit_watts=700.0,
        sm_clock_mhz=1980.0,
        sm_clock_max_mhz=1980.0,
        memory_clock_mhz=2619.0,
        memory_clock_max_mhz=2619.0,
        clock_event_reasons=["SwPowerCap"] if step % 4 == 0 else [],
        violation_seconds={"power": step * 0.5},
        ecc_uncorrected_volatile=0,
        ecc_uncorrected_aggregate=0,
        pcie_rx_bytes_per_second=1e9,
        pcie_tx_bytes_per_second=1e9,
        performance_state=0,
        recovery_action="none",
    )
    fields.update(overrides)
    return GpuDeviceSample(**fields)  # type: ignore[arg-type]


def lmcache_instance(step: int, **overrides: object) -> LMCacheInstanceSample:
    fields: dict[str, object] = dict(
        instance="serving/vllm-0",
        requested_tokens_total=1000.0 * step,
        hit_tokens_total=400.0 * step,
        lookup_tokens_total=800.0 * step,
        lookup_hits_total=200.0 * step,
        evictions_total=float(step),
        remote_errors_total=0.0,
        local_cpu_usage_bytes=float(GIB),
        max_local_cpu_size_bytes=4.0 * GIB,
        kv_bytes_per_token=131072.0,
    )
    fields.update(overrides)
    return LMCacheInstanceSample(**fields)  # type: ignore[arg-type]


def pressure(step: int) -> PressureSample:
    line = PressureLine(avg10=float(step % 5), avg60=1.0, avg300=1.0, total_microseconds=step * 100_000)
    return PressureSample(
        cpu=PressureResource(some=line),
        memory=PressureResource(some=line, full=line),
        io=PressureResource(some=line, full=line),
        irq=IrqPressure(full=line),
    )


def sample(step: int, *, gpus: int = 1, interval: float = 5.0, xids: dict[int, list[int]] | None = None) -> Sample:
    devices = [gpu_device(i, step, xid_events=[XidEvent(xid=x, timestamp=step * interval) for x in (xids or {}).get(i, [])]) for i in range(gpus)]
    return Sample(
        timestamp=1_700_000_000.0 + step * interval,
        system=system(step),
        pressure=pressure(step),
        gpu=GpuSample(driver_version="570.86.15", cuda_driver_version="12.8", devices=devices),
        lmcache=LMCacheSample(instances=[lmcache_instance(step)]),
    )
