"""The sample window: a bounded ring buffer of samples and its summary.

`SampleWindow` keeps the last `capacity` samples (default 60: five minutes at
five seconds), all but the newest pickled; appending is O(1) and never copies
the window. `WindowReducer`
reduces samples to a `NodeSummary` one at a time: `add` reads each object of a
sample once (one C-level getter call per object) into per-metric rows, while
the sample is still in cache, and `summary` reduces the columns (see `stats`).
`summarize` feeds a reducer a whole run: the agent calls it once per report
interval on its window, and replays of long recordings feed a reducer as they
parse (a day of an 8-GPU node is ~1 million objects, which it never holds).
"""

from __future__ import annotations

import gc
import itertools
import pickle
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter

from pydantic import BaseModel

from resource_agent import __version__
from resource_agent.api.samples import (
    CollectorState,
    CollectorStatus,
    DiskSample,
    GpuSample,
    PressureSample,
    Sample,
    SystemSample,
)
from resource_agent.api.summary import (
    CpuSummary,
    DiskSummary,
    GpuInventory,
    GpuSection,
    IrqPressureSummary,
    LMCacheSection,
    MemorySummary,
    NetworkSummary,
    NodeInventory,
    NodeSummary,
    PressureLineSummary,
    PressureResourceSummary,
    PressureSummary,
    ServingSection,
    Window,
)
from resource_agent.node_agent.faults import FaultTracker
from resource_agent.node_agent.gpu_summary import GpuReducer
from resource_agent.node_agent.lmcache_summary import LMCacheReducer
from resource_agent.node_agent.serving_summary import ServingReducer, link
from resource_agent.node_agent.stats import Row, increase, ratio_percent, stat

DEFAULT_CAPACITY = 60


class SummaryError(ValueError):
    """The samples cannot be summarised (none, or none with a system section)."""


class SampleWindow:
    """A thread-safe ring buffer of the most recent samples, and the standing faults of every sample appended.

    The newest sample is kept as it is (the exporter and the significance check read it), the older ones
    as their pickle, read back when the window is summarised (once per report interval). A sample's models
    take ~4.5x the memory of its pickle: 43.5 KiB against 9.3 for an 8-GPU node's sample, so five minutes
    of samples 2.6 MiB against 0.6 (~0.85 against 0.2 without GPUs). Pickle rather than JSON: exact (NaN
    and every type come back as they were; no validator runs again), and smaller and faster to read for
    these models (~110 us a sample). The pickles never leave the process.

    The fault tracker outlives the window: a fault stays in the summary until it is fixed."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, faults: FaultTracker | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"window capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._older: deque[bytes] = deque(maxlen=capacity - 1)  # pickled samples, oldest first
        self._newest: Sample | None = None
        self._faults = faults if faults is not None else FaultTracker()
        self._lock = threading.Lock()

    def append(self, sample: Sample) -> None:
        _forget_given_fields(sample)
        with self._lock:
            if self._newest is not None:
                self._older.append(pickle.dumps(self._newest, protocol=pickle.HIGHEST_PROTOCOL))
            self._newest = sample
            self._faults.add(sample)

    def faults(self) -> FaultTracker:
        """A snapshot of the fault tracker."""
        with self._lock:
            return self._faults.snapshot()

    def __len__(self) -> int:
        with self._lock:
            return len(self._older) + (self._newest is not None)

    def samples(self) -> list[Sample]:
        """A snapshot of the window, oldest first."""
        older, newest, _ = self._snapshot()
        return [*older, *newest]

    def _snapshot(self) -> tuple[Iterator[Sample], list[Sample], FaultTracker]:
        """The older samples (unpickled one at a time as they are iterated), the newest, the faults."""
        with self._lock:
            older, newest, faults = list(self._older), self._newest, self._faults.snapshot()
        return (pickle.loads(frozen) for frozen in older), [newest] if newest is not None else [], faults

    def latest(self) -> Sample | None:
        with self._lock:
            return self._newest

    def summary(self, node_name: str, agent_version: str | None = None) -> NodeSummary:
        """The window's summary; the samples are read back and reduced one at a time, never all at once."""
        older, newest, faults = self._snapshot()
        return summarize(itertools.chain(older, newest), node_name, agent_version, faults=faults)


def _forget_given_fields(value: object) -> None:
    """Give every model in a sample an empty set of explicitly given fields (`model_fields_set`).

    Nothing reads it of a sample, and it is the largest part of one: a set per model, ~45% of the
    window's memory on an 8-GPU node (1.8 of 4.2 MiB for five minutes of samples)."""
    if isinstance(value, BaseModel):
        object.__setattr__(value, "__pydantic_fields_set__", set())
        for item in value.__dict__.values():
            if isinstance(item, (BaseModel, list)):
                _forget_given_fields(item)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (BaseModel, list)):
                _forget_given_fields(item)


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


def summarize(samples: Iterable[Sample], node_name: str, agent_version: str | None = None, *, faults: FaultTracker | None = None) -> NodeSummary:
    """Reduce a run of samples (oldest first) to the node's window summary: a `WindowReducer` fed them all.

    `faults`: a tracker already fed these samples (and those before them); by default one fed the run."""
    with collection_paused():
        reducer = WindowReducer(faults)
        for sample in samples:
            reducer.add(sample)
        return reducer.summary(node_name, agent_version)


class WindowReducer:
    """The window summary, reduced one sample at a time (oldest first).

    `add` appends the sample's numbers to per-metric columns (rows of them, per
    section, disk, NIC, GPU and LMCache instance) while the sample is still in
    cache, and keeps the few other things the summary needs: the window's ends,
    the last system, GPU and collector sections, the latest disk, GPU and LMCache
    samples, counts of throttle reasons and XIDs. It keeps no sample, so a
    recording can be summarised as it is parsed in the memory of its columns.
    `summary` reduces the columns (it can be called again after more `add`s);
    `summarize` is this reducer fed a whole run, so there is one code path.
    Standing faults come from a `FaultTracker`: its own, fed by `add`, or one
    the caller feeds (the agent's, which outlives the window).
    """

    def __init__(self, faults: FaultTracker | None = None) -> None:
        self.samples = 0
        self._start = self._end = 0.0
        self._system: SystemSample | None = None  # the last one
        self._gpu: GpuSample | None = None  # the last one (inventory)
        self._collectors: list[CollectorStatus] = []  # the last sample's
        self._host = _HostRows()
        self._pressure: dict[tuple[str, str], list[Row]] | None = None  # None until a sample has PSI
        self._gpus = GpuReducer()
        self._lmcache = LMCacheReducer()
        self._serving = ServingReducer()
        self._feed_faults = faults is None
        self.faults = faults if faults is not None else FaultTracker()

    @property
    def hostname(self) -> str | None:
        """The hostname of the last sample with a system section."""
        return self._system.hostname if self._system is not None else None

    def add(self, sample: Sample) -> None:
        if not self.samples:
            self._start = sample.timestamp
        self.samples += 1
        self._end = sample.timestamp
        self._collectors = sample.collectors
        system = sample.system
        if system is not None:
            self._system = system
            _add_host(self._host, system)
        if sample.pressure is not None:
            if self._pressure is None:
                self._pressure = {}
            _add_pressure(self._pressure, sample.pressure)
        if sample.gpu is not None:
            self._gpu = sample.gpu
            self._gpus.add(sample.gpu)
        if sample.lmcache is not None:
            self._lmcache.add(sample.lmcache)
        if sample.serving is not None:
            self._serving.add(sample.timestamp, sample.serving)
        if self._feed_faults:
            self.faults.add(sample)

    def summary(self, node_name: str, agent_version: str | None = None) -> NodeSummary:
        """The summary of the samples added so far."""
        if not self.samples:
            raise SummaryError("no samples to summarise")
        system = self._system
        if system is None:
            raise SummaryError("no sample in the window has a system section (is the system collector disabled or failing?)")
        statuses = {status.name: status for status in self._collectors}
        host = self._host
        with collection_paused():
            gpus = self._gpus.summaries(self.faults.faults)
            caches = self._lmcache.instances()
            return NodeSummary(
                node_name=node_name,
                agent_version=agent_version or __version__,
                window=self._window(),
                inventory=_inventory(self._gpu, system),
                cpu=_cpu(host.cpu),
                memory=_memory(host.memory),
                pressure=_pressure(self._pressure, statuses.get("pressure")),
                disks=_disks(host.disks, host.latest_disks),
                networks=_networks(host.networks),
                gpu=GpuSection(
                    available=self._gpu is not None,
                    reason=None if self._gpu is not None else _unavailable_reason(statuses.get("gpu"), "gpu"),
                    devices=gpus,
                    lost=self.faults.lost(),
                    expected_count=self.faults.expected_count,
                    unattributed_xid_counts=self._gpus.unattributed_xid_counts(),
                ),
                lmcache=LMCacheSection(instances=caches),
                serving=ServingSection(instances=link(self._serving.instances(), caches, gpus)),
                collectors=list(self._collectors),
                uptime_seconds=system.uptime_seconds,
            )

    def _window(self) -> Window:
        count, start, end = self.samples, self._start, self._end
        interval = (end - start) / (count - 1) if count > 1 else 0.0
        return Window(start=start, end=end, samples=count, interval_seconds=interval)


def _unavailable_reason(status: CollectorStatus | None, name: str) -> str | None:
    if status is None:
        return f"{name} collector not enabled"
    if status.state is CollectorState.OK:
        return None
    return status.reason or status.state.value


def _inventory(gpu: GpuSample | None, system: SystemSample) -> NodeInventory:
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
    "used_bytes",
    "total_bytes",
    "read_bytes_per_second",
    "write_bytes_per_second",
    "read_iops",
    "write_iops",
    "busy_percent",
    "queue_depth",
    "await_seconds",
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

    cpu: list[Row] = field(default_factory=list)
    memory: list[Row] = field(default_factory=list)
    disks: dict[str, list[Row]] = field(default_factory=dict)
    latest_disks: dict[str, DiskSample] = field(default_factory=dict)
    networks: dict[str, list[Row]] = field(default_factory=dict)


def _add_host(rows: _HostRows, system: SystemSample) -> None:
    """Append one system section's values: one visit of each of its objects."""
    cpu = vars(system.cpu)
    # cores are indexed by id, None where a core's share is unknown: the busiest is the busiest known one
    busiest = max((share for share in cpu["per_core_utilization_percent"] if share is not None), default=None)
    rows.cpu.append((*_CPU(cpu), busiest))
    rows.memory.append(_MEMORY(vars(system.memory)))
    for disk in system.disks:
        rows.disks.setdefault(disk.device, []).append(_DISK(vars(disk)))
        rows.latest_disks[disk.device] = disk
    for network in system.networks:
        rows.networks.setdefault(network.interface, []).append(_NETWORK(vars(network)))


def _cpu(rows: Sequence[Row]) -> CpuSummary:
    utilization, iowait, steal, frequency, load1, switches, busiest = zip(*rows, strict=True)
    load = stat(load1)
    assert load is not None  # load1 is required on every system sample
    return CpuSummary(
        utilization_percent=stat(utilization),
        busiest_core_utilization_percent=stat(busiest),
        iowait_percent=stat(iowait),
        steal_percent=stat(steal),
        frequency_mhz=stat(frequency),
        load1=load,
        context_switches_per_second=stat(switches),
    )


def _memory(rows: Sequence[Row]) -> MemorySummary:
    total, available, used, cached, buffers, swap_total, swap_used, swap_in, swap_out = zip(*rows, strict=True)
    has_swap = swap_total[-1] > 0
    return MemorySummary(
        total_bytes=total[-1],
        available_bytes=stat(available),
        used_bytes=stat(used),
        cached_bytes=stat(cached),
        buffers_bytes=stat(buffers),
        available_percent=stat(ratio_percent(available, total)),
        swap_total_bytes=swap_total[-1],
        swap_used_bytes=stat(swap_used) if has_swap else None,
        swap_in_bytes_per_second=stat(swap_in),
        swap_out_bytes_per_second=stat(swap_out),
    )


def _disks(rows: dict[str, list[Row]], latest: dict[str, DiskSample]) -> list[DiskSummary]:
    summaries = []
    for device, disk_rows in rows.items():
        used, total, read_bytes, write_bytes, read_iops, write_iops, busy, queue_depth, await_seconds = zip(*disk_rows, strict=True)
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
                queue_depth=stat(queue_depth),
                await_seconds=stat(await_seconds),
            )
        )
    return summaries


def _networks(rows: dict[str, list[Row]]) -> list[NetworkSummary]:
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
_PSI_SECTIONS = itemgetter(*_PSI_RESOURCES, "irq")
_PSI_LINE = itemgetter("avg10", "avg60", "total_microseconds")


def _add_pressure(rows: dict[tuple[str, str], list[Row]], pressure: PressureSample) -> None:
    """Append one PSI section's lines: (resource, "some" | "full") -> one (avg10, avg60, total) row per sample that had it."""
    *sections, irq = _PSI_SECTIONS(vars(pressure))
    for resource, section in zip(_PSI_RESOURCES, sections, strict=True):
        if section is None:
            continue
        rows.setdefault((resource, "some"), []).append(_PSI_LINE(vars(section.some)))
        if section.full is not None:
            rows.setdefault((resource, "full"), []).append(_PSI_LINE(vars(section.full)))
    if irq is not None:  # "full" only (kernel/sched/psi.c)
        rows.setdefault(("irq", "full"), []).append(_PSI_LINE(vars(irq.full)))


def _pressure(rows: dict[tuple[str, str], list[Row]] | None, status: CollectorStatus | None) -> PressureSummary:
    if rows is None:
        return PressureSummary(available=False, reason=_unavailable_reason(status, "pressure") or "no PSI in the window")
    resources = {}
    for resource in _PSI_RESOURCES:
        some = rows.get((resource, "some"))
        if some is None:
            continue
        full = rows.get((resource, "full"))
        resources[resource] = PressureResourceSummary(
            some=_pressure_line(some), full=_pressure_line(full) if full else None
        )
    irq = rows.get(("irq", "full"))
    return PressureSummary(available=True, irq=IrqPressureSummary(full=_pressure_line(irq)) if irq else None, **resources)


def _pressure_line(rows: Sequence[Row]) -> PressureLineSummary:
    avg10, avg60, total = zip(*rows, strict=True)
    return PressureLineSummary(
        avg10=stat(avg10),
        avg60=stat(avg60),
        stalled_seconds=increase(total) / 1e6,
    )
