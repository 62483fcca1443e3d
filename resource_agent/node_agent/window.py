"""The sample window: a bounded ring buffer of samples and its summary.

`SampleWindow` keeps the last `capacity` samples (default 60: five minutes at
five seconds); appending is O(1) and never copies the window. `summarize` is
the pure reduction of a run of samples to a `NodeSummary`; it is called once
per report interval, and by replays of long recordings (a day of an 8-GPU node
is ~1 million objects), where its cost is visiting them: so each section reads
each object once, one C-level getter call per object, into rows that become
columns only to be reduced (see `stats` for the columns' side).
"""

from __future__ import annotations

import gc
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter

from resource_agent import __version__
from resource_agent.api.samples import CollectorState, CollectorStatus, DiskSample, Sample, SystemSample
from resource_agent.api.summary import (
    CpuSummary,
    DiskSummary,
    GpuInventory,
    GpuSection,
    LMCacheSection,
    MemorySummary,
    NetworkSummary,
    NodeInventory,
    NodeSummary,
    PressureLineSummary,
    PressureResourceSummary,
    PressureSummary,
    Window,
)
from resource_agent.node_agent.gpu_summary import gpu_devices
from resource_agent.node_agent.lmcache_summary import lmcache_instances
from resource_agent.node_agent.stats import increase, ratio_percent, stat

DEFAULT_CAPACITY = 60


class SummaryError(ValueError):
    """The samples cannot be summarised (none, or none with a system section)."""


class SampleWindow:
    """A thread-safe ring buffer of the most recent samples."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"window capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._samples: deque[Sample] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def append(self, sample: Sample) -> None:
        with self._lock:
            self._samples.append(sample)

    def __len__(self) -> int:
        return len(self._samples)

    def samples(self) -> list[Sample]:
        """A snapshot of the window, oldest first."""
        with self._lock:
            return list(self._samples)

    def latest(self) -> Sample | None:
        with self._lock:
            return self._samples[-1] if self._samples else None

    def summary(self, node_name: str, agent_version: str | None = None) -> NodeSummary:
        return summarize(self.samples(), node_name, agent_version)


@contextmanager
def collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (nests; restores the previous state).

    Reading or reducing a long recording makes millions of acyclic objects, and the
    collections they trigger would traverse every sample already in memory, again and
    again: reading a day of an 8-GPU node took 8.5 s with the collector running, 1.8 s
    without."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def summarize(samples: Sequence[Sample], node_name: str, agent_version: str | None = None) -> NodeSummary:
    """Reduce a run of samples (oldest first) to the node's window summary."""
    with collection_paused():
        return _summarize(samples, node_name, agent_version)


def _summarize(samples: Sequence[Sample], node_name: str, agent_version: str | None) -> NodeSummary:
    if not samples:
        raise SummaryError("no samples to summarise")
    systems = [sample.system for sample in samples if sample.system is not None]
    if not systems:
        raise SummaryError("no sample in the window has a system section (is the system collector disabled or failing?)")
    statuses = _latest_statuses(samples)
    host = _host_rows(systems)
    return NodeSummary(
        node_name=node_name,
        agent_version=agent_version or __version__,
        window=_window(samples),
        inventory=_inventory(samples, systems[-1]),
        cpu=_cpu(host.cpu),
        memory=_memory(host.memory),
        pressure=_pressure(samples, statuses.get("pressure")),
        disks=_disks(host.disks, host.latest_disks),
        networks=_networks(host.networks),
        gpu=GpuSection(
            available=any(sample.gpu is not None for sample in samples),
            reason=_unavailable_reason(statuses.get("gpu"), "gpu"),
            devices=gpu_devices(samples),
        ),
        lmcache=LMCacheSection(instances=lmcache_instances(samples)),
        collectors=list(samples[-1].collectors),
        uptime_seconds=systems[-1].uptime_seconds,
    )


def _window(samples: Sequence[Sample]) -> Window:
    start, end = samples[0].timestamp, samples[-1].timestamp
    interval = (end - start) / (len(samples) - 1) if len(samples) > 1 else 0.0
    return Window(start=start, end=end, samples=len(samples), interval_seconds=interval)


def _latest_statuses(samples: Sequence[Sample]) -> dict[str, CollectorStatus]:
    return {status.name: status for status in samples[-1].collectors}


def _unavailable_reason(status: CollectorStatus | None, name: str) -> str | None:
    if status is None:
        return f"{name} collector not enabled"
    if status.state is CollectorState.OK:
        return None
    return status.reason or status.state.value


def _inventory(samples: Sequence[Sample], system: SystemSample) -> NodeInventory:
    gpu = next((sample.gpu for sample in reversed(samples) if sample.gpu is not None), None)
    return NodeInventory(
        hostname=system.hostname,
        boot_id=system.boot_id,
        cpu_model=system.cpu.model,
        cpu_cores=system.cpu.logical_cores,
        memory_total_bytes=system.memory.total_bytes,
        swap_total_bytes=system.memory.swap_total_bytes,
        gpus=[
            GpuInventory(
                index=device.index,
                uuid=device.uuid,
                name=device.name,
                pci_bus_id=device.pci_bus_id,
                mig_mode=device.mig_mode,
                memory_total_bytes=device.memory_total_bytes,
            )
            for device in (gpu.devices if gpu else [])
        ],
        driver_version=gpu.driver_version if gpu else None,
        cuda_driver_version=gpu.cuda_driver_version if gpu else None,
    )


# Each section reads its per-sample values with one C-level getter over the model's field
# dict (`vars(model)`): replays of long recordings are bound by visiting every sample's
# objects (a day is a gigabyte of them), so each object is visited once.
_CPU = itemgetter(
    "utilization_percent",
    "iowait_percent",
    "steal_percent",
    "frequency_mhz",
    "load1",
    "context_switches_per_second",
    "per_core_utilization_percent",
)
_MEMORY = itemgetter(
    "total_bytes",
    "available_bytes",
    "used_bytes",
    "cached_bytes",
    "buffers_bytes",
    "swap_total_bytes",
    "swap_used_bytes",
    "swap_in_bytes_per_second",
    "swap_out_bytes_per_second",
)
_DISK = itemgetter(
    "used_bytes", "total_bytes", "read_bytes_per_second", "write_bytes_per_second", "read_iops", "write_iops", "busy_percent"
)
_NETWORK = itemgetter(
    "rx_bytes_per_second",
    "tx_bytes_per_second",
    "rx_errors_per_second",
    "tx_errors_per_second",
    "rx_drops_per_second",
    "tx_drops_per_second",
)


@dataclass
class _HostRows:
    """The system sections' per-sample values, one row per sample (per disk, per NIC)."""

    cpu: list[tuple] = field(default_factory=list)
    memory: list[tuple] = field(default_factory=list)
    disks: dict[str, list[tuple]] = field(default_factory=dict)
    latest_disks: dict[str, DiskSample] = field(default_factory=dict)
    networks: dict[str, list[tuple]] = field(default_factory=dict)


def _host_rows(systems: Sequence[SystemSample]) -> _HostRows:
    """Gather every system section in one visit of each system sample."""
    rows = _HostRows()
    for system in systems:
        rows.cpu.append(_CPU(vars(system.cpu)))
        rows.memory.append(_MEMORY(vars(system.memory)))
        for disk in system.disks:
            rows.disks.setdefault(disk.device, []).append(_DISK(vars(disk)))
            rows.latest_disks[disk.device] = disk
        for network in system.networks:
            rows.networks.setdefault(network.interface, []).append(_NETWORK(vars(network)))
    return rows


def _cpu(rows: Sequence[tuple]) -> CpuSummary:
    utilization, iowait, steal, frequency, load1, switches, per_core = zip(*rows, strict=True)
    load = stat(load1)
    assert load is not None  # load1 is required on every system sample
    return CpuSummary(
        utilization_percent=stat(utilization),
        busiest_core_utilization_percent=stat([max(cores) if cores else None for cores in per_core]),
        iowait_percent=stat(iowait),
        steal_percent=stat(steal),
        frequency_mhz=stat(frequency),
        load1=load,
        context_switches_per_second=stat(switches),
    )


def _memory(rows: Sequence[tuple]) -> MemorySummary:
    total, available, used, cached, buffers, swap_total, swap_used, swap_in, swap_out = zip(*rows, strict=True)
    has_swap = swap_total[-1] > 0
    return MemorySummary(
        total_bytes=total[-1],
        available_bytes=stat(available),  # type: ignore[arg-type]
        used_bytes=stat(used),  # type: ignore[arg-type]
        cached_bytes=stat(cached),  # type: ignore[arg-type]
        buffers_bytes=stat(buffers),  # type: ignore[arg-type]
        available_percent=stat(ratio_percent(available, total)),  # type: ignore[arg-type]
        swap_total_bytes=swap_total[-1],
        swap_used_bytes=stat(swap_used) if has_swap else None,
        swap_in_bytes_per_second=stat(swap_in),
        swap_out_bytes_per_second=stat(swap_out),
    )


def _disks(rows: dict[str, list[tuple]], latest: dict[str, DiskSample]) -> list[DiskSummary]:
    summaries = []
    for device, disk_rows in rows.items():
        used, total, read_bytes, write_bytes, read_iops, write_iops, busy = zip(*disk_rows, strict=True)
        summaries.append(
            DiskSummary(
                device=device,
                mountpoint=latest[device].mountpoint,
                total_bytes=latest[device].total_bytes,
                used_percent=stat(ratio_percent(used, total)),
                read_bytes_per_second=stat(read_bytes),
                write_bytes_per_second=stat(write_bytes),
                read_iops=stat(read_iops),
                write_iops=stat(write_iops),
                busy_percent=stat(busy),
            )
        )
    return summaries


def _networks(rows: dict[str, list[tuple]]) -> list[NetworkSummary]:
    summaries = []
    for interface, interface_rows in rows.items():
        rx, tx, rx_errors, tx_errors, rx_drops, tx_drops = zip(*interface_rows, strict=True)
        summaries.append(
            NetworkSummary(
                interface=interface,
                rx_bytes_per_second=stat(rx),
                tx_bytes_per_second=stat(tx),
                rx_errors_per_second=stat(rx_errors),
                tx_errors_per_second=stat(tx_errors),
                rx_drops_per_second=stat(rx_drops),
                tx_drops_per_second=stat(tx_drops),
            )
        )
    return summaries


_PSI_RESOURCES = ("cpu", "memory", "io")
_PSI_SECTIONS = itemgetter(*_PSI_RESOURCES)
_PSI_LINE = itemgetter("avg10", "avg60", "total_microseconds")


def _pressure(samples: Sequence[Sample], status: CollectorStatus | None) -> PressureSummary:
    pressures = [sample.pressure for sample in samples if sample.pressure is not None]
    if not pressures:
        return PressureSummary(available=False, reason=_unavailable_reason(status, "pressure") or "no PSI in the window")
    # (resource, "some" | "full") -> one (avg10, avg60, total) row per sample that had the line
    rows: dict[tuple[str, str], list[tuple]] = {}
    for pressure in pressures:
        for resource, section in zip(_PSI_RESOURCES, _PSI_SECTIONS(vars(pressure)), strict=True):
            if section is None:
                continue
            rows.setdefault((resource, "some"), []).append(_PSI_LINE(vars(section.some)))
            if section.full is not None:
                rows.setdefault((resource, "full"), []).append(_PSI_LINE(vars(section.full)))
    resources = {}
    for resource in _PSI_RESOURCES:
        some = rows.get((resource, "some"))
        if some is None:
            continue
        full = rows.get((resource, "full"))
        resources[resource] = PressureResourceSummary(
            some=_pressure_line(some), full=_pressure_line(full) if full else None
        )
    return PressureSummary(available=True, **resources)


def _pressure_line(rows: Sequence[tuple]) -> PressureLineSummary:
    avg10, avg60, total = zip(*rows, strict=True)
    return PressureLineSummary(
        avg10=stat(avg10),  # type: ignore[arg-type]
        avg60=stat(avg60),  # type: ignore[arg-type]
        stalled_seconds=increase(total) / 1e6,
    )
