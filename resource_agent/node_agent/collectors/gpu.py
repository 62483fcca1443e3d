"""NVIDIA GPUs through NVML (nvidia-ml-py, `import pynvml`).

NVML is initialised on the first sample (retried at most once a minute while
it cannot load) and shut down on close. A call a device does not support
(NotSupported, or FunctionNotFound on older drivers) is listed in the
device's `unsupported` and skipped from then on; a lost GPU does not stop
the others. XID errors arrive through an NVML event set drained without
waiting on every sample.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pynvml

from resource_agent.api.samples import GpuDeviceSample, GpuProcess, GpuSample, Sample, XidEvent
from resource_agent.node_agent.cgroups import process_name, process_pod
from resource_agent.node_agent.collectors.base import Collector, CollectorContext, CollectorUnavailable, register_collector
from resource_agent.node_agent.nvml_decode import (
    VIOLATION_POLICIES,
    cuda_version,
    decode_clock_event_reasons,
    decode_recovery_action,
    field_value,
    text,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

INIT_RETRY_SECONDS = 60.0
KIB = 1024
MAX_EVENTS_PER_SAMPLE = 1000
_NOT_THERE = (pynvml.NVMLError_NotSupported, pynvml.NVMLError_FunctionNotFound)


class GpuLost(Exception):
    """One or more GPUs fell off the bus; the others were still sampled."""


class _Device:
    """Per-device reader that remembers which calls the device does not support."""

    def __init__(self, handle: Any, unsupported: set[str]) -> None:
        self.handle = handle
        self.unsupported = unsupported

    def call(self, name: str, function: Callable[..., T], *args: Any) -> T | None:
        if name in self.unsupported:
            return None
        try:
            return function(self.handle, *args)
        except _NOT_THERE:
            self.unsupported.add(name)
        except (pynvml.NVMLError_GpuIsLost, pynvml.NVMLError_Uninitialized, pynvml.NVMLError_DriverNotLoaded):
            raise
        except pynvml.NVMLError as exc:  # NoPermission, Unknown, ...: this value is missing this time
            log.debug("%s failed: %s", name, exc)
        return None


class GpuCollector(Collector):
    name = "gpu"

    def __init__(self, context: CollectorContext) -> None:
        self.host_proc = context.host_proc
        self._initialised = False
        self._next_init = 0.0
        self._init_error = ""
        self._event_set: Any = None
        self._unsupported: dict[str, set[str]] = {}
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

    # --- sampling -------------------------------------------------------------

    def update(self, sample: Sample) -> None:
        self._ensure_initialised()
        try:
            count = pynvml.nvmlDeviceGetCount()
            xids = self._drain_xid_events()
        except (pynvml.NVMLError_Uninitialized, pynvml.NVMLError_DriverNotLoaded) as exc:
            self.close()  # the driver went away; initialise again next time
            raise CollectorUnavailable(f"NVML not available: {exc}") from exc
        devices: list[GpuDeviceSample] = []
        lost: list[str] = []
        for index in range(count):
            try:
                devices.append(self._device(index, xids))
            except pynvml.NVMLError_GpuIsLost as exc:
                lost.append(f"GPU {index}: {exc}")
        sample.gpu = GpuSample(driver_version=self.driver_version, cuda_driver_version=self.cuda_driver_version, devices=devices)
        if lost:
            raise GpuLost("; ".join(lost))

    def _drain_xid_events(self) -> dict[str, list[XidEvent]]:
        """XID events queued since the last sample, by device UUID (never blocks)."""
        events: dict[str, list[XidEvent]] = {}
        if self._event_set is None:
            return events
        for _ in range(MAX_EVENTS_PER_SAMPLE):
            try:
                data = pynvml.nvmlEventSetWait(self._event_set, 0)
            except pynvml.NVMLError_Timeout:
                break
            if data.eventType & pynvml.nvmlEventTypeXidCriticalError:
                uuid = text(pynvml.nvmlDeviceGetUUID(data.device))
                events.setdefault(uuid, []).append(XidEvent(xid=int(data.eventData), timestamp=time.time()))
        return events

    def _device(self, index: int, xids: dict[str, list[XidEvent]]) -> GpuDeviceSample:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        uuid = text(pynvml.nvmlDeviceGetUUID(handle))
        device = _Device(handle, self._unsupported.setdefault(uuid, set()))
        fields: dict[str, Any] = {"index": index, "uuid": uuid, "name": text(device.call("nvmlDeviceGetName", pynvml.nvmlDeviceGetName) or "unknown")}
        pci = device.call("nvmlDeviceGetPciInfo", pynvml.nvmlDeviceGetPciInfo)
        fields["pci_bus_id"] = text(pci.busId) if pci is not None else None
        mig = device.call("nvmlDeviceGetMigMode", pynvml.nvmlDeviceGetMigMode)
        fields["mig_mode"] = bool(mig[0] == pynvml.NVML_DEVICE_MIG_ENABLE) if mig is not None else None
        utilization = device.call("nvmlDeviceGetUtilizationRates", pynvml.nvmlDeviceGetUtilizationRates)
        if utilization is not None:
            fields["sm_utilization_percent"] = float(utilization.gpu)
            fields["memory_utilization_percent"] = float(utilization.memory)
        fields.update(self._memory(device))
        fields.update(self._thermal_and_power(device))
        fields.update(self._clocks(device))
        fields.update(self._errors(device))
        fields.update(self._pcie(device))
        fan = device.call("nvmlDeviceGetFanSpeed", pynvml.nvmlDeviceGetFanSpeed)
        fields["fan_speed_percent"] = float(fan) if fan is not None else None
        fields["performance_state"] = device.call("nvmlDeviceGetPerformanceState", pynvml.nvmlDeviceGetPerformanceState)
        fields["processes"] = self._processes(device)
        fields["recovery_action"] = self._recovery_action(device)
        fields["xid_events"] = xids.get(uuid, [])
        fields["unsupported"] = sorted(device.unsupported)
        return GpuDeviceSample(**fields)

    @staticmethod
    def _memory(device: _Device) -> dict[str, Any]:
        memory = device.call("nvmlDeviceGetMemoryInfo_v2", pynvml.nvmlDeviceGetMemoryInfo, pynvml.nvmlMemory_v2)
        if memory is not None:
            return {"memory_used_bytes": memory.used, "memory_total_bytes": memory.total, "memory_reserved_bytes": memory.reserved}
        memory = device.call("nvmlDeviceGetMemoryInfo", pynvml.nvmlDeviceGetMemoryInfo)
        if memory is not None:
            return {"memory_used_bytes": memory.used, "memory_total_bytes": memory.total}
        return {}

    @staticmethod
    def _thermal_and_power(device: _Device) -> dict[str, Any]:
        def threshold(kind: int, name: str) -> float | None:
            value = device.call(name, pynvml.nvmlDeviceGetTemperatureThreshold, kind)
            return float(value) if value is not None else None

        temperature = device.call("nvmlDeviceGetTemperature", pynvml.nvmlDeviceGetTemperature, pynvml.NVML_TEMPERATURE_GPU)
        power = device.call("nvmlDeviceGetPowerUsage", pynvml.nvmlDeviceGetPowerUsage)
        limit = device.call("nvmlDeviceGetEnforcedPowerLimit", pynvml.nvmlDeviceGetEnforcedPowerLimit)
        return {
            "temperature_celsius": float(temperature) if temperature is not None else None,
            "slowdown_temperature_celsius": threshold(pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN, "nvmlDeviceGetTemperatureThreshold(SLOWDOWN)"),
            "shutdown_temperature_celsius": threshold(pynvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN, "nvmlDeviceGetTemperatureThreshold(SHUTDOWN)"),
            "power_watts": power / 1000 if power is not None else None,  # milliwatts
            "power_limit_watts": limit / 1000 if limit is not None else None,
        }

    @staticmethod
    def _clocks(device: _Device) -> dict[str, Any]:
        def clock(function: Callable[..., int], name: str, kind: int) -> float | None:
            value = device.call(name, function, kind)
            return float(value) if value is not None else None

        reasons = device.call("nvmlDeviceGetCurrentClocksEventReasons", pynvml.nvmlDeviceGetCurrentClocksEventReasons)
        if reasons is None:
            reasons = device.call("nvmlDeviceGetCurrentClocksThrottleReasons", pynvml.nvmlDeviceGetCurrentClocksThrottleReasons)
        violations = {}
        for policy, code in VIOLATION_POLICIES.items():
            status = device.call(f"nvmlDeviceGetViolationStatus({policy})", pynvml.nvmlDeviceGetViolationStatus, code)
            if status is not None:
                violations[policy] = status.violationTime / 1e9  # nanoseconds
        return {
            "sm_clock_mhz": clock(pynvml.nvmlDeviceGetClockInfo, "nvmlDeviceGetClockInfo(SM)", pynvml.NVML_CLOCK_SM),
            "sm_clock_max_mhz": clock(pynvml.nvmlDeviceGetMaxClockInfo, "nvmlDeviceGetMaxClockInfo(SM)", pynvml.NVML_CLOCK_SM),
            "memory_clock_mhz": clock(pynvml.nvmlDeviceGetClockInfo, "nvmlDeviceGetClockInfo(MEM)", pynvml.NVML_CLOCK_MEM),
            "memory_clock_max_mhz": clock(pynvml.nvmlDeviceGetMaxClockInfo, "nvmlDeviceGetMaxClockInfo(MEM)", pynvml.NVML_CLOCK_MEM),
            "clock_event_reasons": decode_clock_event_reasons(reasons) if reasons is not None else [],
            "violation_seconds": violations,
        }

    @staticmethod
    def _errors(device: _Device) -> dict[str, Any]:
        def ecc(kind: int, counter: int, name: str) -> int | None:
            return device.call(name, pynvml.nvmlDeviceGetTotalEccErrors, kind, counter)

        corrected, uncorrected = pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
        fields: dict[str, Any] = {
            "ecc_corrected_volatile": ecc(corrected, pynvml.NVML_VOLATILE_ECC, "nvmlDeviceGetTotalEccErrors"),
            "ecc_uncorrected_volatile": ecc(uncorrected, pynvml.NVML_VOLATILE_ECC, "nvmlDeviceGetTotalEccErrors"),
            "ecc_corrected_aggregate": ecc(corrected, pynvml.NVML_AGGREGATE_ECC, "nvmlDeviceGetTotalEccErrors"),
            "ecc_uncorrected_aggregate": ecc(uncorrected, pynvml.NVML_AGGREGATE_ECC, "nvmlDeviceGetTotalEccErrors"),
        }
        single = device.call("nvmlDeviceGetRetiredPages", pynvml.nvmlDeviceGetRetiredPages, pynvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS)
        double = device.call("nvmlDeviceGetRetiredPages", pynvml.nvmlDeviceGetRetiredPages, pynvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR)
        pending = device.call("nvmlDeviceGetRetiredPagesPendingStatus", pynvml.nvmlDeviceGetRetiredPagesPendingStatus)
        fields["retired_pages_single_bit"] = len(single) if single is not None else None
        fields["retired_pages_double_bit"] = len(double) if double is not None else None
        fields["retired_pages_pending"] = bool(pending) if pending is not None else None
        rows = device.call("nvmlDeviceGetRemappedRows", pynvml.nvmlDeviceGetRemappedRows)
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
        def throughput(counter: int, name: str) -> float | None:
            value = device.call(name, pynvml.nvmlDeviceGetPcieThroughput, counter)
            return value * KIB if value is not None else None  # KB/s

        return {
            "pcie_link_generation": device.call("nvmlDeviceGetCurrPcieLinkGeneration", pynvml.nvmlDeviceGetCurrPcieLinkGeneration),
            "pcie_link_generation_max": device.call("nvmlDeviceGetMaxPcieLinkGeneration", pynvml.nvmlDeviceGetMaxPcieLinkGeneration),
            "pcie_link_width": device.call("nvmlDeviceGetCurrPcieLinkWidth", pynvml.nvmlDeviceGetCurrPcieLinkWidth),
            "pcie_link_width_max": device.call("nvmlDeviceGetMaxPcieLinkWidth", pynvml.nvmlDeviceGetMaxPcieLinkWidth),
            "pcie_rx_bytes_per_second": throughput(pynvml.NVML_PCIE_UTIL_RX_BYTES, "nvmlDeviceGetPcieThroughput(RX)"),
            "pcie_tx_bytes_per_second": throughput(pynvml.NVML_PCIE_UTIL_TX_BYTES, "nvmlDeviceGetPcieThroughput(TX)"),
        }

    def _processes(self, device: _Device) -> list[GpuProcess]:
        processes = []
        for process in device.call("nvmlDeviceGetComputeRunningProcesses", pynvml.nvmlDeviceGetComputeRunningProcesses) or []:
            pod_uid, container_id = process_pod(self.host_proc, process.pid)
            processes.append(
                GpuProcess(
                    pid=process.pid,
                    used_memory_bytes=process.usedGpuMemory,
                    name=process_name(self.host_proc, process.pid),
                    pod_uid=pod_uid,
                    container_id=container_id,
                )
            )
        return processes

    @staticmethod
    def _recovery_action(device: _Device) -> str | None:
        name = "nvmlDeviceGetFieldValues(GPU_RECOVERY_ACTION)"
        values = device.call(name, pynvml.nvmlDeviceGetFieldValues, [pynvml.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION])
        if values is None:
            return None
        field = values[0]
        if field.nvmlReturn == pynvml.NVML_ERROR_NOT_SUPPORTED:
            device.unsupported.add(name)  # the field is unknown to this driver or device
        if field.nvmlReturn != pynvml.NVML_SUCCESS:
            return None
        return decode_recovery_action(int(field_value(field)))


@register_collector("gpu")
def _gpu(context: CollectorContext) -> Collector:
    return GpuCollector(context)
