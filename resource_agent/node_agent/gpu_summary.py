"""Reduce the GPU sections of a run of samples to per-device summaries (pure).

`GpuReducer.add` takes one sample's GPU section at a time and keeps, per device,
only what the summary needs: one row of numbers per device sample, counts of
throttle reasons and XIDs, the counters' values per violation policy, the last
recovery action and the device's latest sample (for its static fields). So a
replay that reduces samples as they are parsed holds no sample. Standing faults
come from a `FaultTracker` (they outlive the window).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from operator import itemgetter

from resource_agent.api.samples import GpuDeviceSample, GpuSample
from resource_agent.api.summary import EccSummary, GpuFault, GpuSummary, PcieSummary
from resource_agent.node_agent.stats import Row, increase, last, ratio_percent, stat

NO_RECOVERY_ACTION = "none"
BUSY_SM_UTILIZATION_PERCENT = 50.0  # a sample at or above this SM utilisation counts as busy (sm_clock_busy_mhz)

# The per-sample numbers, read with one C-level getter over the device's field dict
# (`vars(device)`) while the device is still in cache.
_MEMORY = ("memory_used_bytes", "memory_total_bytes")
_GAUGES = (  # summarised as a Stat each
    "sm_utilization_percent",
    "memory_utilization_percent",
    "temperature_celsius",
    "power_watts",
    "sm_clock_mhz",
    "memory_clock_mhz",
    "pcie_rx_bytes_per_second",
    "pcie_tx_bytes_per_second",
    "fan_speed_percent",
)
_COUNTERS = ("ecc_uncorrected_volatile", "ecc_uncorrected_aggregate")
_ROW = itemgetter(*_MEMORY, *_GAUGES, *_COUNTERS)
_NON_NUMERIC = itemgetter("uuid", "clock_event_reasons", "violation_seconds", "xid_events", "recovery_action")


class _Device:
    """What one GPU's summary needs from the samples seen so far."""

    __slots__ = ("action", "latest", "real_action", "reasons", "rows", "violations", "xids")

    def __init__(self, latest: GpuDeviceSample) -> None:
        self.rows: list[Row] = []
        self.latest = latest
        self.reasons: Counter[str] = Counter()  # reason -> samples that reported it
        self.violations: dict[str, list[float]] = {}  # policy -> cumulative seconds, per sample that had it
        self.xids: Counter[int] = Counter()
        self.action: str | None = None  # the last recovery action reported
        self.real_action: str | None = None  # the last one other than "none"


class GpuReducer:
    """Per-device columns of GPU sections, fed one sample at a time."""

    def __init__(self) -> None:
        self._devices: dict[str, _Device] = {}  # by UUID, in order of first appearance
        self._unattributed: Counter[int] = Counter()  # XID code -> events from a GPU NVML could not name

    def add(self, gpu: GpuSample) -> None:
        devices = self._devices
        for device in gpu.devices:
            fields = vars(device)
            uuid, reasons, violations, events, action = _NON_NUMERIC(fields)
            state = devices.get(uuid)
            if state is None:
                state = devices[uuid] = _Device(device)
            else:
                state.latest = device
            state.rows.append(_ROW(fields))
            if reasons:
                state.reasons.update(reasons)
            if violations:
                columns = state.violations
                for policy, seconds in violations.items():
                    column = columns.get(policy)
                    if column is None:
                        columns[policy] = [seconds]
                    else:
                        column.append(seconds)
            if events:
                state.xids.update(event.xid for event in events)
            if action is not None:
                state.action = action
                if action != NO_RECOVERY_ACTION:
                    state.real_action = action
        for lost in gpu.lost:  # XID 79 arrives as the GPU is lost: count it on the GPU if the window has it
            state = devices.get(lost.uuid) if lost.uuid is not None else None
            if state is not None and lost.xid_events:
                state.xids.update(event.xid for event in lost.xid_events)
        if gpu.xid_events_unattributed:
            self._unattributed.update(event.xid for event in gpu.xid_events_unattributed)

    def unattributed_xid_counts(self) -> dict[str, int] | None:
        """XID code -> events seen so far from a GPU NVML could not name; None when there were none."""
        return {str(xid): seen for xid, seen in sorted(self._unattributed.items())} or None

    def summaries(self, faults: Callable[[str], list[GpuFault]] | None = None) -> list[GpuSummary]:
        """One summary per GPU (by UUID) seen so far, ordered by its last index; `faults(uuid)` gives its standing faults."""
        summaries = [_summarize_device(state, faults(state.latest.uuid) if faults else []) for state in self._devices.values()]
        return sorted(summaries, key=lambda summary: summary.index)


def _busy_clocks(sm_utilization: Sequence[float | None], sm_clock: Sequence[float | None]) -> list[float]:
    """SM clock of the samples where the GPU was busy (SM utilisation at or above the busy floor)."""
    return [
        clock
        for utilization, clock in zip(sm_utilization, sm_clock, strict=True)
        if utilization is not None and clock is not None and utilization >= BUSY_SM_UTILIZATION_PERCENT
    ]


def _summarize_device(state: _Device, faults: list[GpuFault]) -> GpuSummary:
    device, rows = state.latest, state.rows
    # Columns are made one at a time and reduced at once, while their values are still in cache.
    columns = zip(*rows, strict=True)
    used, total = next(columns), next(columns)
    gauge_columns = dict(zip(_GAUGES, columns, strict=False))  # stops after the gauges
    gauges = {name: stat(column) for name, column in gauge_columns.items()}
    busy = _busy_clocks(gauge_columns["sm_utilization_percent"], gauge_columns["sm_clock_mhz"])
    volatile, aggregate = next(columns), next(columns)
    uncorrected = aggregate if last(aggregate) is not None else volatile
    count = len(rows)
    return GpuSummary(
        index=device.index,
        uuid=device.uuid,
        name=device.name,
        pci_bus_id=device.pci_bus_id,
        mig_mode=device.mig_mode,
        sm_utilization_percent=gauges["sm_utilization_percent"],
        memory_utilization_percent=gauges["memory_utilization_percent"],
        memory_used_bytes=stat(used),
        memory_used_percent=stat(ratio_percent(used, total)),
        memory_total_bytes=device.memory_total_bytes,
        memory_reserved_bytes=device.memory_reserved_bytes,
        temperature_celsius=gauges["temperature_celsius"],
        slowdown_temperature_celsius=device.slowdown_temperature_celsius,
        shutdown_temperature_celsius=device.shutdown_temperature_celsius,
        power_watts=gauges["power_watts"],
        power_limit_watts=device.power_limit_watts,
        power_default_limit_watts=device.power_default_limit_watts,
        power_limit_max_watts=device.power_limit_max_watts,
        sm_clock_mhz=gauges["sm_clock_mhz"],
        sm_clock_busy_mhz=stat(busy) if busy else None,
        sm_clock_max_mhz=device.sm_clock_max_mhz,
        memory_clock_mhz=gauges["memory_clock_mhz"],
        memory_clock_max_mhz=device.memory_clock_max_mhz,
        clock_event_reasons={reason: min(1.0, seen / count) for reason, seen in sorted(state.reasons.items())},
        # a policy's column holds the samples that reported it: increase skips the others anyway
        violation_seconds={policy: increase(state.violations[policy]) for policy in sorted(state.violations)},
        ecc=EccSummary(
            corrected_volatile=device.ecc_corrected_volatile,
            uncorrected_volatile=device.ecc_uncorrected_volatile,
            corrected_aggregate=device.ecc_corrected_aggregate,
            uncorrected_aggregate=device.ecc_uncorrected_aggregate,
            uncorrected_increase=int(increase(uncorrected)),
            retired_pages_single_bit=device.retired_pages_single_bit,
            retired_pages_double_bit=device.retired_pages_double_bit,
            retired_pages_pending=device.retired_pages_pending,
            remapped_rows_correctable=device.remapped_rows_correctable,
            remapped_rows_uncorrectable=device.remapped_rows_uncorrectable,
            remapped_rows_pending=device.remapped_rows_pending,
            remapped_rows_failure=device.remapped_rows_failure,
        ),
        pcie=PcieSummary(
            link_generation=device.pcie_link_generation,
            link_generation_max=device.pcie_link_generation_max,
            link_width=device.pcie_link_width,
            link_width_max=device.pcie_link_width_max,
            rx_bytes_per_second=gauges["pcie_rx_bytes_per_second"],
            tx_bytes_per_second=gauges["pcie_tx_bytes_per_second"],
        ),
        fan_speed_percent=gauges["fan_speed_percent"],
        performance_state=device.performance_state,
        processes=list(device.processes),
        allocated_to=list(device.allocated_to),
        xid_counts={str(xid): seen for xid, seen in sorted(state.xids.items())},
        # the last action other than "none" in the window, else the last one reported
        recovery_action=state.real_action if state.real_action is not None else state.action,
        unsupported=list(device.unsupported),
        faults=faults,
    )
