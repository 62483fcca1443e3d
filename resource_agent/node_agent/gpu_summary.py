"""Reduce the GPU sections of a run of samples to per-device summaries (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import chain
from operator import itemgetter

from resource_agent.api.samples import GpuDeviceSample, Sample
from resource_agent.api.summary import EccSummary, GpuSummary, PcieSummary
from resource_agent.node_agent.stats import increase, last, ratio_percent, stat

NO_RECOVERY_ACTION = "none"

# The per-sample columns, read with one C-level getter over the device's field dict
# (`vars(device)`): a day of an 8-GPU node is 138,240 device samples spread over a
# gigabyte of objects, so a replay costs what visiting each of them once costs.
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
_OTHERS = (
    "ecc_uncorrected_volatile",
    "ecc_uncorrected_aggregate",
    "recovery_action",
    "clock_event_reasons",
    "violation_seconds",
    "xid_events",
)
_ROW = itemgetter("uuid", *_MEMORY, *_GAUGES, *_OTHERS)


def gpu_devices(samples: Sequence[Sample]) -> list[GpuSummary]:
    """One summary per GPU (by UUID) seen in the window, ordered by its last index."""
    rows: dict[str, list[tuple]] = {}
    for sample in samples:
        gpu = sample.gpu
        if gpu is None:
            continue
        for row in map(_ROW, map(vars, gpu.devices)):  # C-level over the sample's devices
            device_rows = rows.get(row[0])
            if device_rows is None:
                device_rows = rows[row[0]] = []
            device_rows.append(row)
    latest = _latest_devices(samples, len(rows))
    summaries = [_summarize_device(latest[uuid], device_rows) for uuid, device_rows in rows.items()]
    return sorted(summaries, key=lambda summary: summary.index)


def _latest_devices(samples: Sequence[Sample], count: int) -> dict[str, GpuDeviceSample]:
    """The last sample of each of the `count` GPUs in the window, by UUID."""
    latest: dict[str, GpuDeviceSample] = {}
    for sample in reversed(samples):
        for device in sample.gpu.devices if sample.gpu else ():
            latest.setdefault(device.uuid, device)
        if len(latest) == count:
            break
    return latest


def _summarize_device(device: GpuDeviceSample, rows: list[tuple]) -> GpuSummary:
    # Columns are made one at a time and reduced at once, while their values are still in cache.
    columns = zip(*rows, strict=True)
    next(columns)  # the UUIDs
    used, total = next(columns), next(columns)
    gauges = {name: stat(column) for name, column in zip(_GAUGES, columns)}  # stops after the gauges
    others = dict(zip(_OTHERS, columns))
    count = len(rows)
    reasons = Counter(chain.from_iterable(others["clock_event_reasons"]))
    violations = others["violation_seconds"]
    policies = sorted(set(chain.from_iterable(violations)))
    xids = Counter(str(event.xid) for events in others["xid_events"] if events for event in events)
    uncorrected = others["ecc_uncorrected_aggregate"]
    if last(uncorrected) is None:
        uncorrected = others["ecc_uncorrected_volatile"]
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
        sm_clock_mhz=gauges["sm_clock_mhz"],
        sm_clock_max_mhz=device.sm_clock_max_mhz,
        memory_clock_mhz=gauges["memory_clock_mhz"],
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
            rx_bytes_per_second=gauges["pcie_rx_bytes_per_second"],
            tx_bytes_per_second=gauges["pcie_tx_bytes_per_second"],
        ),
        fan_speed_percent=gauges["fan_speed_percent"],
        performance_state=device.performance_state,
        processes=list(device.processes),
        xid_counts=dict(sorted(xids.items(), key=lambda item: int(item[0]))),
        recovery_action=_recovery_action(others["recovery_action"]),
        unsupported=list(device.unsupported),
    )


def _recovery_action(actions: Sequence[str | None]) -> str | None:
    """The last action other than "none" in the window, else the last one reported."""
    for action in reversed(actions):
        if action is not None and action != NO_RECOVERY_ACTION:
            return action
    return last(actions)  # type: ignore[return-value]
