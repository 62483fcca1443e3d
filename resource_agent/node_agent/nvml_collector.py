"""NVIDIA GPUs through NVML (nvidia-ml-py, `import pynvml`): the `gpu` collector once NVML's library loads.

NVML is initialised on the first sample (retried at most once a minute while
it cannot load) and shut down on close. Each query has its own memory: a
query the device does not support (NotSupported) is listed in the device's
`unsupported`, a function the driver lacks (FunctionNotFound) in
`missing_functions`, and neither is asked again. Deprecated functions are
called through their replacements first (`nvmlDeviceGetTemperatureV`,
`nvmlDeviceGetCurrentClocksEventReasons`, field values for the perf-policy
violation counters, `nvmlDeviceGetComputeRunningProcesses_v3`) and fall back
to the older call when the driver lacks the new one.

One bad GPU never hides the others: a device whose handle, UUID or any query
fails with a device error (lost, unknown, reset required) goes into
`GpuSample.lost` and the rest are sampled. NVIDIA display/3D functions on the
PCI bus that NVML does not list are lost GPUs too. XID errors arrive through
an NVML event set drained without waiting on every sample; an event whose
device cannot be named is kept in `xid_events_unattributed`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pynvml

from resource_agent.api.samples import GpuDeviceSample, GpuProcess, GpuSample, LostGpu, Sample, XidEvent
from resource_agent.node_agent.bus_ids import PCI_ONLY_ERROR, normalise_bus_id
from resource_agent.node_agent.cgroups import process_name, process_pod
from resource_agent.node_agent.collectors.base import Collector, CollectorContext, CollectorUnavailable
from resource_agent.node_agent.nvml_decode import (
    VIOLATION_FIELDS,
    VIOLATION_POLICIES,
    cuda_version,
    decode_clock_event_reasons,
    decode_recovery_action,
    field_value,
    is_nvidia_gpu,
    process_started_at,
    text,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

INIT_RETRY_SECONDS = 60.0
KIB = 1024
MAX_EVENTS_PER_SAMPLE = 1000
MAX_EVENT_ERRORS_PER_SAMPLE = 4  # nvmlEventSetWait keeps failing while a GPU is lost: stop after a few
RECOVERY_FIELD = "GPU_RECOVERY_ACTION"
# A device that answers with one of these is broken: it goes into `lost`, the others are still sampled.
DEVICE_ERRORS = (pynvml.NVMLError_GpuIsLost, pynvml.NVMLError_Unknown, pynvml.NVMLError_ResetRequired)
DRIVER_ERRORS = (pynvml.NVMLError_Uninitialized, pynvml.NVMLError_DriverNotLoaded)


class GpuLost(Exception):
    """One or more GPUs are lost or failed; the others were still sampled."""


def _name(function: Callable[..., Any]) -> str:
    return getattr(function, "__name__", repr(function))


class _Device:
    """Per-device reader with a memory per query (unsupported) and per function (missing from the driver)."""

    def __init__(self, handle: Any, unsupported: set[str], missing: set[str]) -> None:
        self.handle = handle
        self.unsupported = unsupported
        self.missing = missing

    def call(self, function: Callable[..., T], *args: Any, query: str | None = None) -> T | None:
        """`function(handle, *args)`, or None when not supported, missing, or failing this time."""
        name = _name(function)
        query = query or name
        if query in self.unsupported or name in self.missing:
            return None
        try:
            return function(self.handle, *args)
        except pynvml.NVMLError_NotSupported:
            self.unsupported.add(query)
        except pynvml.NVMLError_FunctionNotFound:
            self.missing.add(name)
        except (*DEVICE_ERRORS, *DRIVER_ERRORS):
            raise
        except pynvml.NVMLError as exc:  # NoPermission, Timeout, ...: this value is missing this time
            log.debug("%s failed: %s", query, exc)
        return None

    def lacks(self, function: Callable[..., Any], query: str | None = None) -> bool:
        """True when `function` (this query of it) will not answer: the driver lacks it or the device does not support it."""
        name = _name(function)
        return name in self.missing or (query or name) in self.unsupported

    def fields(self, wanted: dict[str, int]) -> dict[str, pynvml.c_nvmlFieldValue_t]:
        """One nvmlDeviceGetFieldValues call for the wanted fields (label -> field id) still thought supported."""
        labels = [label for label in wanted if f"nvmlDeviceGetFieldValues({label})" not in self.unsupported]
        values = self.call(pynvml.nvmlDeviceGetFieldValues, [wanted[label] for label in labels]) if labels else None
        found = {}
        for label, value in zip(labels, values if values is not None else [], strict=False):
            if value.nvmlReturn == pynvml.NVML_SUCCESS:
                found[label] = value
            elif value.nvmlReturn == pynvml.NVML_ERROR_NOT_SUPPORTED:
                self.unsupported.add(f"nvmlDeviceGetFieldValues({label})")
        return found


def _handle_key(handle: Any) -> int | None:
    """A device handle's address, to name the device of an XID event whose UUID lookup fails."""
    try:
        return ctypes.cast(handle, ctypes.c_void_p).value
    except (TypeError, ctypes.ArgumentError):
        return None


class GpuCollector(Collector):
    name = "gpu"

    def __init__(self, context: CollectorContext) -> None:
        self.host_proc = context.host_proc
        self.host_sys = context.host_sys
        self._initialised = False
        self._next_init = 0.0
        self._init_error = ""
        self._event_set: Any = None
        self._unsupported: dict[str, set[str]] = {}  # uuid -> queries the device does not support
        self._missing: set[str] = set()  # functions the driver lacks (a property of the library, not the device)
        self._bus_ids: dict[str | int, str] = {}  # uuid and index -> normalised PCI bus id, from healthy samples
        self._handles: dict[int, str] = {}  # handle address -> uuid
        self._reason: str | None = None
        self.driver_version: str | None = None
        self.cuda_driver_version: str | None = None

    # --- lifecycle ------------------------------------------------------------

    def _ensure_initialised(self) -> None:
        if self._initialised:
            return
        if time.monotonic() < self._next_init:
            raise CollectorUnavailable(f"NVML not available: {self._init_error}")
        try:
            pynvml.nvmlInit()
        except (pynvml.NVMLError, OSError) as exc:
            self._init_error = str(exc) or type(exc).__name__
            self._next_init = time.monotonic() + INIT_RETRY_SECONDS
            raise CollectorUnavailable(f"NVML not available: {self._init_error}") from exc
        self._initialised = True
        self.driver_version = self._system(pynvml.nvmlSystemGetDriverVersion, text)
        self.cuda_driver_version = self._system(pynvml.nvmlSystemGetCudaDriverVersion, cuda_version)
        self._create_event_set()

    @staticmethod
    def _system(function: Callable[[], Any], convert: Callable[[Any], str]) -> str | None:
        try:
            return convert(function())
        except pynvml.NVMLError:
            return None

    def _create_event_set(self) -> None:
        try:
            self._event_set = pynvml.nvmlEventSetCreate()
        except pynvml.NVMLError as exc:
            log.info("NVML events not available, XID errors will not be seen: %s", exc)
            self._event_set = None
            return
        for index in range(pynvml.nvmlDeviceGetCount()):
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                if pynvml.nvmlDeviceGetSupportedEventTypes(handle) & pynvml.nvmlEventTypeXidCriticalError:
                    pynvml.nvmlDeviceRegisterEvents(handle, pynvml.nvmlEventTypeXidCriticalError, self._event_set)
            except pynvml.NVMLError as exc:
                log.info("GPU %d: cannot register for XID events: %s", index, exc)

    def close(self) -> None:
        if not self._initialised:
            return
        self._initialised = False
        try:
            if self._event_set is not None:
                pynvml.nvmlEventSetFree(self._event_set)
            pynvml.nvmlShutdown()
        except pynvml.NVMLError as exc:
            log.warning("NVML shutdown failed: %s", exc)
        self._event_set = None

    def status_reason(self) -> str | None:
        return self._reason

    # --- sampling -------------------------------------------------------------

    def update(self, sample: Sample) -> None:
        self._reason = None
        self._ensure_initialised()
        try:
            count = pynvml.nvmlDeviceGetCount()
            xids, unattributed, notes = self._drain_xid_events()
            devices, lost, failures = self._devices(count, xids)
        except DRIVER_ERRORS as exc:
            self.close()  # the driver went away; initialise again next time
            raise CollectorUnavailable(f"NVML not available: {exc}") from exc
        for gpu in lost:
            if gpu.uuid is not None:
                gpu.xid_events = xids.get(gpu.uuid, [])
        named = {device.uuid for device in devices} | {gpu.uuid for gpu in lost}
        unattributed += [event for uuid, events in xids.items() if uuid not in named for event in events]
        pci_bus_ids = self._pci_gpus()
        if pci_bus_ids is not None:
            lost += self._pci_only(pci_bus_ids, devices, lost)
        sample.gpu = GpuSample(
            driver_version=self.driver_version,
            cuda_driver_version=self.cuda_driver_version,
            devices=devices,
            lost=lost,
            pci_gpu_count=len(pci_bus_ids) if pci_bus_ids is not None else None,
            pci_bus_ids=pci_bus_ids or [],
            xid_events_unattributed=unattributed,
        )
        if self._missing:
            notes.append("driver lacks " + ", ".join(sorted(self._missing)))
        problems = [_describe_lost(gpu) for gpu in lost] + failures
        if problems:
            raise GpuLost("; ".join(problems + notes))
        self._reason = "; ".join(notes) or None

    def _devices(self, count: int, xids: dict[str, list[XidEvent]]) -> tuple[list[GpuDeviceSample], list[LostGpu], list[str]]:
        """Every GPU NVML enumerates: the healthy ones, the lost ones, and collector failures (bugs) by GPU."""
        devices: list[GpuDeviceSample] = []
        lost: list[LostGpu] = []
        failures: list[str] = []
        for index in range(count):
            uuid: str | None = None
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                uuid = self._handles.get(_handle_key(handle) or -1)  # what this handle was, should the UUID lookup fail
                uuid = text(pynvml.nvmlDeviceGetUUID(handle))
                devices.append(self._device(index, handle, uuid, xids))
            except DRIVER_ERRORS:
                raise
            except pynvml.NVMLError as exc:
                bus_id = self._bus_ids.get(uuid) if uuid is not None else self._bus_ids.get(index)
                lost.append(LostGpu(index=index, uuid=uuid, pci_bus_id=bus_id, error=str(exc) or type(exc).__name__))
            except Exception as exc:  # a collector bug on one GPU must not hide the others
                log.exception("GPU %d: sampling failed", index)
                failures.append(f"GPU {index}: {type(exc).__name__}: {exc}")
        return devices, lost, failures

    def _drain_xid_events(self) -> tuple[dict[str, list[XidEvent]], list[XidEvent], list[str]]:
        """XID events queued since the last sample (never blocks): by device UUID, those whose device is unknown, and wait errors."""
        events: dict[str, list[XidEvent]] = {}
        unattributed: list[XidEvent] = []
        errors: list[str] = []
        if self._event_set is None:
            return events, unattributed, errors
        for _ in range(MAX_EVENTS_PER_SAMPLE):
            try:
                data = pynvml.nvmlEventSetWait(self._event_set, 0)
            except pynvml.NVMLError_Timeout:
                break
            except DRIVER_ERRORS:
                raise
            except pynvml.NVMLError as exc:  # GPU_IS_LOST, UNKNOWN: the events of the other GPUs may still be queued
                errors.append(f"XID event wait: {exc}")
                if len(errors) >= MAX_EVENT_ERRORS_PER_SAMPLE:
                    break
                continue
            if not data.eventType & pynvml.nvmlEventTypeXidCriticalError:
                continue
            event = XidEvent(xid=int(data.eventData), timestamp=time.time())
            try:
                uuid: str | None = text(pynvml.nvmlDeviceGetUUID(data.device))
            except pynvml.NVMLError:
                uuid = self._handles.get(_handle_key(data.device) or -1)
            if uuid is None:
                unattributed.append(event)
            else:
                events.setdefault(uuid, []).append(event)
        return events, unattributed, errors

    def _device(self, index: int, handle: Any, uuid: str, xids: dict[str, list[XidEvent]]) -> GpuDeviceSample:
        key = _handle_key(handle)
        if key is not None:
            self._handles[key] = uuid
        device = _Device(handle, self._unsupported.setdefault(uuid, set()), self._missing)
        fields: dict[str, Any] = {"index": index, "uuid": uuid, "name": text(device.call(pynvml.nvmlDeviceGetName) or "unknown")}
        pci = device.call(pynvml.nvmlDeviceGetPciInfo)
        fields["pci_bus_id"] = text(pci.busId) if pci is not None else None
        if fields["pci_bus_id"]:
            self._bus_ids[uuid] = self._bus_ids[index] = normalise_bus_id(fields["pci_bus_id"])
        mig = device.call(pynvml.nvmlDeviceGetMigMode)
        fields["mig_mode"] = bool(mig[0] == pynvml.NVML_DEVICE_MIG_ENABLE) if mig is not None else None
        utilization = device.call(pynvml.nvmlDeviceGetUtilizationRates)
        if utilization is not None:
            fields["sm_utilization_percent"] = float(utilization.gpu)
            fields["memory_utilization_percent"] = float(utilization.memory)
        field_values = device.fields(VIOLATION_FIELDS | {RECOVERY_FIELD: pynvml.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION})
        fields.update(self._memory(device))
        fields.update(self._thermal(device))
        fields.update(self._power(device))
        fields.update(self._clocks(device, field_values))
        fields.update(self._errors(device))
        fields.update(self._pcie(device))
        fan = device.call(pynvml.nvmlDeviceGetFanSpeed)
        fields["fan_speed_percent"] = float(fan) if fan is not None else None
        fields["performance_state"] = device.call(pynvml.nvmlDeviceGetPerformanceState)
        fields["processes"] = self._processes(device)
        recovery = field_values.get(RECOVERY_FIELD)
        fields["recovery_action"] = decode_recovery_action(int(field_value(recovery))) if recovery is not None else None
        fields["xid_events"] = xids.get(uuid, [])
        fields["unsupported"] = sorted(device.unsupported)
        fields["missing_functions"] = sorted(device.missing)
        return GpuDeviceSample(**fields)

    @staticmethod
    def _memory(device: _Device) -> dict[str, Any]:
        memory = device.call(pynvml.nvmlDeviceGetMemoryInfo, pynvml.nvmlMemory_v2, query="nvmlDeviceGetMemoryInfo_v2")
        if memory is not None:
            return {"memory_used_bytes": memory.used, "memory_total_bytes": memory.total, "memory_reserved_bytes": memory.reserved}
        memory = device.call(pynvml.nvmlDeviceGetMemoryInfo)
        if memory is not None:
            return {"memory_used_bytes": memory.used, "memory_total_bytes": memory.total}
        return {}

    @staticmethod
    def _thermal(device: _Device) -> dict[str, Any]:
        def threshold(kind: int, label: str) -> float | None:
            value = device.call(pynvml.nvmlDeviceGetTemperatureThreshold, kind, query=f"nvmlDeviceGetTemperatureThreshold({label})")
            return float(value) if value is not None else None

        temperature = device.call(pynvml.nvmlDeviceGetTemperatureV, pynvml.NVML_TEMPERATURE_GPU)
        if temperature is None and device.lacks(pynvml.nvmlDeviceGetTemperatureV):
            temperature = device.call(pynvml.nvmlDeviceGetTemperature, pynvml.NVML_TEMPERATURE_GPU)  # deprecated
        return {
            "temperature_celsius": float(temperature) if temperature is not None else None,
            "slowdown_temperature_celsius": threshold(pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN, "SLOWDOWN"),
            "shutdown_temperature_celsius": threshold(pynvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN, "SHUTDOWN"),
        }

    @staticmethod
    def _power(device: _Device) -> dict[str, Any]:
        def watts(milliwatts: int | None) -> float | None:
            return milliwatts / 1000 if milliwatts is not None else None

        limits = device.call(pynvml.nvmlDeviceGetPowerManagementLimitConstraints)
        return {
            "power_watts": watts(device.call(pynvml.nvmlDeviceGetPowerUsage)),
            "power_limit_watts": watts(device.call(pynvml.nvmlDeviceGetEnforcedPowerLimit)),
            "power_default_limit_watts": watts(device.call(pynvml.nvmlDeviceGetPowerManagementDefaultLimit)),
            "power_limit_min_watts": watts(limits[0]) if limits is not None else None,
            "power_limit_max_watts": watts(limits[1]) if limits is not None else None,
        }

    @staticmethod
    def _clocks(device: _Device, field_values: dict[str, Any]) -> dict[str, Any]:
        def clock(function: Callable[..., int], kind: int, label: str) -> float | None:
            value = device.call(function, kind, query=f"{_name(function)}({label})")
            return float(value) if value is not None else None

        reasons = device.call(pynvml.nvmlDeviceGetCurrentClocksEventReasons)
        if reasons is None and device.lacks(pynvml.nvmlDeviceGetCurrentClocksEventReasons):
            reasons = device.call(pynvml.nvmlDeviceGetCurrentClocksThrottleReasons)  # deprecated
        violations = {}
        for policy, code in VIOLATION_POLICIES.items():
            value = field_values.get(policy)
            if value is not None:
                violations[policy] = field_value(value) / 1e9  # nanoseconds, as nvmlViolationTime_t.violationTime
                continue
            if not device.lacks(pynvml.nvmlDeviceGetFieldValues) and f"nvmlDeviceGetFieldValues({policy})" not in device.unsupported:
                continue  # the field failed this time; the deprecated call is only a fallback
            status = device.call(pynvml.nvmlDeviceGetViolationStatus, code, query=f"nvmlDeviceGetViolationStatus({policy})")  # deprecated
            if status is not None:
                violations[policy] = status.violationTime / 1e9
        return {
            "sm_clock_mhz": clock(pynvml.nvmlDeviceGetClockInfo, pynvml.NVML_CLOCK_SM, "SM"),
            "sm_clock_max_mhz": clock(pynvml.nvmlDeviceGetMaxClockInfo, pynvml.NVML_CLOCK_SM, "SM"),
            "memory_clock_mhz": clock(pynvml.nvmlDeviceGetClockInfo, pynvml.NVML_CLOCK_MEM, "MEM"),
            "memory_clock_max_mhz": clock(pynvml.nvmlDeviceGetMaxClockInfo, pynvml.NVML_CLOCK_MEM, "MEM"),
            "clock_event_reasons": decode_clock_event_reasons(reasons) if reasons is not None else [],
            "violation_seconds": violations,
        }

    @staticmethod
    def _errors(device: _Device) -> dict[str, Any]:
        def ecc(kind: int, counter: int, label: str) -> int | None:
            return device.call(pynvml.nvmlDeviceGetTotalEccErrors, kind, counter, query=f"nvmlDeviceGetTotalEccErrors({label})")

        def retired(cause: int, label: str) -> int | None:
            pages = device.call(pynvml.nvmlDeviceGetRetiredPages, cause, query=f"nvmlDeviceGetRetiredPages({label})")
            return len(pages) if pages is not None else None

        corrected, uncorrected = pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
        pending = device.call(pynvml.nvmlDeviceGetRetiredPagesPendingStatus)
        fields: dict[str, Any] = {
            "ecc_corrected_volatile": ecc(corrected, pynvml.NVML_VOLATILE_ECC, "corrected,volatile"),
            "ecc_uncorrected_volatile": ecc(uncorrected, pynvml.NVML_VOLATILE_ECC, "uncorrected,volatile"),
            "ecc_corrected_aggregate": ecc(corrected, pynvml.NVML_AGGREGATE_ECC, "corrected,aggregate"),
            "ecc_uncorrected_aggregate": ecc(uncorrected, pynvml.NVML_AGGREGATE_ECC, "uncorrected,aggregate"),
            "retired_pages_single_bit": retired(pynvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS, "single_bit"),
            "retired_pages_double_bit": retired(pynvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR, "double_bit"),
            "retired_pages_pending": bool(pending) if pending is not None else None,
        }
        rows = device.call(pynvml.nvmlDeviceGetRemappedRows)
        if rows is not None:
            correctable, uncorrectable, rows_pending, failure = rows
            fields.update(
                remapped_rows_correctable=correctable,
                remapped_rows_uncorrectable=uncorrectable,
                remapped_rows_pending=bool(rows_pending),
                remapped_rows_failure=bool(failure),
            )
        return fields

    @staticmethod
    def _pcie(device: _Device) -> dict[str, Any]:
        def throughput(counter: int, label: str) -> float | None:
            value = device.call(pynvml.nvmlDeviceGetPcieThroughput, counter, query=f"nvmlDeviceGetPcieThroughput({label})")
            return value * KIB if value is not None else None  # KB/s

        return {
            "pcie_link_generation": device.call(pynvml.nvmlDeviceGetCurrPcieLinkGeneration),
            "pcie_link_generation_max": device.call(pynvml.nvmlDeviceGetMaxPcieLinkGeneration),
            "pcie_link_width": device.call(pynvml.nvmlDeviceGetCurrPcieLinkWidth),
            "pcie_link_width_max": device.call(pynvml.nvmlDeviceGetMaxPcieLinkWidth),
            "pcie_rx_bytes_per_second": throughput(pynvml.NVML_PCIE_UTIL_RX_BYTES, "RX"),
            "pcie_tx_bytes_per_second": throughput(pynvml.NVML_PCIE_UTIL_TX_BYTES, "TX"),
        }

    def _processes(self, device: _Device) -> list[GpuProcess]:
        # the unversioned wrapper raises NVMLLibraryMismatchError (not an NVMLError) on drivers without _v3
        running = device.call(pynvml.nvmlDeviceGetComputeRunningProcesses_v3)
        if running is None and device.lacks(pynvml.nvmlDeviceGetComputeRunningProcesses_v3):
            running = device.call(pynvml.nvmlDeviceGetComputeRunningProcesses_v2)
        boot_time = _boot_time(self.host_proc) if running else None
        processes = []
        for process in running or []:
            pod_uid, container_id = process_pod(self.host_proc, process.pid)
            processes.append(
                GpuProcess(
                    pid=process.pid,
                    used_memory_bytes=process.usedGpuMemory,
                    name=process_name(self.host_proc, process.pid),
                    started_at=_started_at(self.host_proc, process.pid, boot_time),
                    pod_uid=pod_uid,
                    container_id=container_id,
                )
            )
        return processes

    # --- PCI ------------------------------------------------------------------

    def _pci_gpus(self) -> list[str] | None:
        """Normalised bus ids of the NVIDIA GPUs on the PCI bus, or None when sysfs cannot be read."""
        root = self.host_sys / "bus" / "pci" / "devices"
        try:
            entries = sorted(root.iterdir())
        except OSError:
            return None
        gpus = []
        for entry in entries:
            try:
                vendor, pci_class = (entry / "vendor").read_text(), (entry / "class").read_text()
            except OSError:
                continue
            driver = os.path.basename(os.readlink(entry / "driver")) if (entry / "driver").is_symlink() else None
            if is_nvidia_gpu(vendor, pci_class, driver):
                gpus.append(normalise_bus_id(entry.name))
        return gpus

    def _pci_only(self, pci_bus_ids: list[str], devices: list[GpuDeviceSample], lost: list[LostGpu]) -> list[LostGpu]:
        """PCI GPUs NVML does not list. When a lost GPU's bus id is unknown it cannot be matched, so none are added."""
        if any(gpu.pci_bus_id is None for gpu in lost):
            return []
        seen = {normalise_bus_id(device.pci_bus_id) for device in devices if device.pci_bus_id}
        seen |= {normalise_bus_id(gpu.pci_bus_id) for gpu in lost if gpu.pci_bus_id}
        known = {bus_id: uuid for uuid, bus_id in self._bus_ids.items() if isinstance(uuid, str)}
        return [LostGpu(uuid=known.get(bus_id), pci_bus_id=bus_id, error=PCI_ONLY_ERROR) for bus_id in pci_bus_ids if bus_id not in seen]


def _describe_lost(gpu: LostGpu) -> str:
    where = f"GPU {gpu.index}" if gpu.index is not None else f"GPU {gpu.pci_bus_id}"
    return f"{where}: {gpu.error}"


def _boot_time(host_proc: Path) -> float | None:
    """The host's boot time (unix seconds) from `btime` in <host-proc>/stat."""
    try:
        for line in (host_proc / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _started_at(host_proc: Path, pid: int, boot_time: float | None) -> float | None:
    if boot_time is None:
        return None
    try:
        return process_started_at((host_proc / str(pid) / "stat").read_text(), boot_time, os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError):
        return None
