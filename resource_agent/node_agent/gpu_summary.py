"""Reduce the GPU sections of a run of samples to per-device summaries (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import chain
from operator import attrgetter

from resource_agent.api.samples import GpuDeviceSample, Sample
from resource_agent.api.summary import EccSummary, GpuSummary, PcieSummary
from resource_agent.node_agent.stats import increase, last, ratio_percent, stat

NO_RECOVERY_ACTION = "none"

# Per-sample columns gathered once per device with one C-level getter call.
_COLUMNS = (
    "sm_utilization_percent",
    "memory_utilization_percent",
    "memory_used_bytes",
    "memory_total_bytes",
    "temperature_celsius",
    "power_watts",
    "sm_clock_mhz",
    "memory_clock_mhz",
    "pcie_rx_bytes_per_second",
    "pcie_tx_bytes_per_second",
    "fan_speed_percent",
    "ecc_uncorrected_volatile",
    "ecc_uncorrected_aggregate",
    "recovery_action",
    "clock_event_reasons",
    "violation_seconds",
    "xid_events",
)
_GET_COLUMNS = attrgetter(*_COLUMNS)
_INDEX = {name: position for position, name in enumerate(_COLUMNS)}


def gpu_devices(samples: Sequence[Sample]) -> list[GpuSummary]:
    """One summary per GPU (by UUID) seen in the window, ordered by its last index."""
    rows: dict[str, list[tuple]] = {}
    latest: dict[str, GpuDeviceSample] = {}
    for sample in samples:
        if sample.gpu is None:
            continue
        for device in sample.gpu.devices:
            device_rows = rows.get(device.uuid)
            if device_rows is None:
                device_rows = rows[device.uuid] = []
            device_rows.append(_GET_COLUMNS(device))
            latest[device.uuid] = device
    summaries = [_summarize_device(latest[uuid], device_rows) for uuid, device_rows in rows.items()]
    return sorted(summaries, key=lambda summary: summary.index)


def _summarize_device(device: GpuDeviceSample, rows: list[tuple]) -> GpuSummary:
    columns = list(zip(*rows, strict=True))

    def column(name: str) -> Sequence:
        return columns[_INDEX[name]]

    count = len(rows)
    reasons = Counter(chain.from_iterable(column("clock_event_reasons")))
    violations = column("violation_seconds")
    policies = sorted(set(chain.from_iterable(violations)))
    xids = Counter(str(event.xid) for events in column("xid_events") if events for event in events)
    uncorrected = column("ecc_uncorrected_aggregate")
    if last(uncorrected) is None:
        uncorrected = column("ecc_uncorrected_volatile")
    return GpuSummary(
        index=device.index,
        uuid=device.uuid,
        name=device.name,
        pci_bus_id=device.pci_bus_id,
        mig_mode=device.mig_mode,
        sm_utilization_percent=stat(column("sm_utilization_percent")),
        memory_utilization_percent=stat(column("memory_utilization_percent")),
        memory_used_bytes=stat(column("memory_used_bytes")),
        memory_used_percent=stat(ratio_percent(column("memory_used_bytes"), column("memory_total_bytes"))),
        memory_total_bytes=device.memory_total_bytes,
        memory_reserved_bytes=device.memory_reserved_bytes,
        temperature_celsius=stat(column("temperature_celsius")),
        slowdown_temperature_celsius=device.slowdown_temperature_celsius,
        shutdown_temperature_celsius=device.shutdown_temperature_celsius,
        power_watts=stat(column("power_watts")),
        power_limit_watts=device.power_limit_watts,
        sm_clock_mhz=stat(column("sm_clock_mhz")),
        sm_clock_max_mhz=device.sm_clock_max_mhz,
        memory_clock_mhz=stat(column("memory_clock_mhz")),
        memory_clock_max_mhz=device.memory_clock_max_mhz,
        clock_event_reasons={reason: min(1.0, seen / count) for reason, seen in sorted(reasons.items())},
        violation_seconds={policy: increase([seen.get(policy) for seen in violations]) for policy in policies},
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
            rx_bytes_per_second=stat(column("pcie_rx_bytes_per_second")),
            tx_bytes_per_second=stat(column("pcie_tx_bytes_per_second")),
        ),
        fan_speed_percent=stat(column("fan_speed_percent")),
        performance_state=device.performance_state,
        processes=list(device.processes),
        xid_counts=dict(sorted(xids.items(), key=lambda item: int(item[0]))),
        recovery_action=_recovery_action(column("recovery_action")),
        unsupported=list(device.unsupported),
    )


def _recovery_action(actions: Sequence[str | None]) -> str | None:
    """The last action other than "none" in the window, else the last one reported."""
    for action in reversed(actions):
        if action is not None and action != NO_RECOVERY_ACTION:
            return action
    return last(actions)  # type: ignore[return-value]
