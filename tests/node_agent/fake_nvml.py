"""A fake NVML at the `pynvml` module boundary: real structs, real error classes."""

from __future__ import annotations

import ctypes
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

PERF_POLICY_FIELDS = range(pynvml.NVML_FI_DEV_PERF_POLICY_POWER, pynvml.NVML_FI_DEV_PERF_POLICY_TOTAL_BASE_CLOCKS + 1)


@dataclass
class FakeGpu:
    index: int
    uuid: str
    memory_used: int = 40 * 2**30
    memory_total: int = 80 * 2**30
    reasons: int = pynvml.nvmlClocksEventReasonSwPowerCap
    power_violation_ns: int = 2_500_000_000
    processes: list[tuple[int, int | None]] = field(default_factory=list)
    recovery_action: int = pynvml.NVML_GPU_RECOVERY_ACTION_NONE
    unsupported: set[str] = field(default_factory=set)  # pynvml function names (or "uncorrected_aggregate", "retired_double_bit") raising NotSupported
    missing: set[str] = field(default_factory=set)  # raising FunctionNotFound (old driver)
    lost: bool = False
    errors: dict[str, type[pynvml.NVMLError]] = field(default_factory=dict)  # pynvml function name -> error it raises
    ecc_uncorrected_volatile: int = 0
    remapped_pending: int = 1
    remapped_failure: int = 0
    sm_utilization: int = 87
    sm_clock: int = 1755


class FakeNvml:
    """Installs itself over the pynvml functions the GPU collector calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, gpus: list[FakeGpu], init_error: type[pynvml.NVMLError] | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.initialised = False
        self.init_calls = 0
        self.shutdowns = 0
        self.events: list[tuple[int, int] | type[pynvml.NVMLError]] = []  # (gpu index, xid) or an error, waiting in the event set
        self.registered: list[int] = []
        self.calls: Counter[str] = Counter()  # pynvml function name -> calls that reached a device
        for name in dir(self):
            if name.startswith("nvml"):
                monkeypatch.setattr(pynvml, name, getattr(self, name))

    @staticmethod
    def error(kind: type[pynvml.NVMLError]) -> pynvml.NVMLError:
        code = next(value for value, cls in pynvml.NVMLError._valClassMapping.items() if cls is kind)
        return pynvml.NVMLError(code)  # NVMLError maps the code onto its subclass, as the real binding does

    def _gpu(self, handle: Any, function: str) -> FakeGpu:
        self.calls[function] += 1
        if not self.initialised:
            raise self.error(pynvml.NVMLError_Uninitialized)
        gpu = self.gpus[handle]
        if gpu.lost:
            raise self.error(pynvml.NVMLError_GpuIsLost)
        if function in gpu.unsupported:
            raise self.error(pynvml.NVMLError_NotSupported)
        if function in gpu.missing:
            raise self.error(pynvml.NVMLError_FunctionNotFound)
        if function in gpu.errors:
            raise self.error(gpu.errors[function])
        return gpu

    # --- system --------------------------------------------------------------------
    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise self.error(self.init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1
        self.initialised = False

    def nvmlSystemGetDriverVersion(self) -> str:
        return "570.86.15"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12080

    def nvmlDeviceGetCount(self) -> int:
        if not self.initialised:
            raise self.error(pynvml.NVMLError_Uninitialized)
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        error = self.gpus[index].errors.get("nvmlDeviceGetHandleByIndex")
        if error is not None:
            raise self.error(error)
        return index

    # --- events --------------------------------------------------------------------
    def nvmlEventSetCreate(self) -> str:
        return "event-set"

    def nvmlEventSetFree(self, event_set: str) -> None:
        return None

    def nvmlDeviceGetSupportedEventTypes(self, handle: int) -> int:
        return pynvml.nvmlEventTypeXidCriticalError | pynvml.nvmlEventTypeSingleBitEccError

    def nvmlDeviceRegisterEvents(self, handle: int, types: int, event_set: str) -> None:
        self.registered.append(handle)

    def nvmlEventSetWait(self, event_set: str, timeout_ms: int) -> Any:
        assert timeout_ms == 0, "the collector must never block on events"
        if not self.events:
            raise self.error(pynvml.NVMLError_Timeout)
        event = self.events.pop(0)
        if not isinstance(event, tuple):
            raise self.error(event)
        index, xid = event
        return SimpleNamespace(device=index, eventType=pynvml.nvmlEventTypeXidCriticalError, eventData=xid)

    # --- device --------------------------------------------------------------------
    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self._gpu(handle, "nvmlDeviceGetUUID").uuid

    def nvmlDeviceGetName(self, handle: int) -> str:
        self._gpu(handle, "nvmlDeviceGetName")
        return "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetPciInfo(self, handle: int) -> Any:
        info = pynvml.nvmlPciInfo_t()
        info.busId = f"00000000:{handle + 0x18:02X}:00.0".encode()
        self._gpu(handle, "nvmlDeviceGetPciInfo")
        return info

    def nvmlDeviceGetMigMode(self, handle: int) -> list[int]:
        self._gpu(handle, "nvmlDeviceGetMigMode")
        return [pynvml.NVML_DEVICE_MIG_DISABLE, pynvml.NVML_DEVICE_MIG_DISABLE]

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=gpu.sm_utilization, memory=41)

    def nvmlDeviceGetMemoryInfo(self, handle: int, version: int | None = None) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo_v2" if version else "nvmlDeviceGetMemoryInfo")
        memory = pynvml.c_nvmlMemory_v2_t() if version else pynvml.c_nvmlMemory_t()
        memory.total, memory.used = gpu.memory_total, gpu.memory_used
        if version:
            memory.reserved = 512 * 2**20
        return memory

    def nvmlDeviceGetTemperatureV(self, handle: int, sensor: int, version: int = pynvml.nvmlTemperature_v1) -> int:
        self._gpu(handle, "nvmlDeviceGetTemperatureV")
        return 71

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        self._gpu(handle, "nvmlDeviceGetTemperature")
        return 71

    def nvmlDeviceGetTemperatureThreshold(self, handle: int, kind: int) -> int:
        self._gpu(handle, "nvmlDeviceGetTemperatureThreshold")
        return {pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN: 87, pynvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN: 92}[kind]

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        self._gpu(handle, "nvmlDeviceGetPowerUsage")
        return 612_345

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        self._gpu(handle, "nvmlDeviceGetEnforcedPowerLimit")
        return 700_000

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: int) -> int:
        self._gpu(handle, "nvmlDeviceGetPowerManagementDefaultLimit")
        return 700_000

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: int) -> list[int]:
        self._gpu(handle, "nvmlDeviceGetPowerManagementLimitConstraints")
        return [200_000, 700_000]

    def nvmlDeviceGetClockInfo(self, handle: int, kind: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetClockInfo")
        return {pynvml.NVML_CLOCK_SM: gpu.sm_clock, pynvml.NVML_CLOCK_MEM: 2619}[kind]

    def nvmlDeviceGetMaxClockInfo(self, handle: int, kind: int) -> int:
        self._gpu(handle, "nvmlDeviceGetMaxClockInfo")
        return {pynvml.NVML_CLOCK_SM: 1980, pynvml.NVML_CLOCK_MEM: 2619}[kind]

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        return self._gpu(handle, "nvmlDeviceGetCurrentClocksEventReasons").reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: int) -> int:
        return self._gpu(handle, "nvmlDeviceGetCurrentClocksThrottleReasons").reasons

    def nvmlDeviceGetViolationStatus(self, handle: int, policy: int) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetViolationStatus")
        if policy == pynvml.NVML_PERF_POLICY_RELIABILITY:
            raise self.error(pynvml.NVMLError_NotSupported)
        status = pynvml.c_nvmlViolationTime_t()
        status.referenceTime = 1
        status.violationTime = gpu.power_violation_ns if policy == pynvml.NVML_PERF_POLICY_POWER else 0
        return status

    def nvmlDeviceGetTotalEccErrors(self, handle: int, kind: int, counter: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetTotalEccErrors")
        name = ("corrected" if kind == pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED else "uncorrected") + (
            "_volatile" if counter == pynvml.NVML_VOLATILE_ECC else "_aggregate"
        )
        if name in gpu.unsupported:  # one counter unsupported, e.g. "uncorrected_aggregate"
            raise self.error(pynvml.NVMLError_NotSupported)
        return {"corrected_volatile": 3, "uncorrected_volatile": gpu.ecc_uncorrected_volatile}.get(name, 0)

    def nvmlDeviceGetRetiredPages(self, handle: int, cause: int) -> list[int]:
        gpu = self._gpu(handle, "nvmlDeviceGetRetiredPages")
        if cause == pynvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR and "retired_double_bit" in gpu.unsupported:
            raise self.error(pynvml.NVMLError_NotSupported)
        return [0x1000, 0x2000] if cause == pynvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS else []

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle: int) -> int:
        self._gpu(handle, "nvmlDeviceGetRetiredPagesPendingStatus")
        return 0

    def nvmlDeviceGetRemappedRows(self, handle: int) -> tuple[int, int, int, int]:
        gpu = self._gpu(handle, "nvmlDeviceGetRemappedRows")
        return (2, 0, gpu.remapped_pending, gpu.remapped_failure)

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: int) -> int:
        self._gpu(handle, "nvmlDeviceGetCurrPcieLinkGeneration")
        return 4

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle: int) -> int:
        self._gpu(handle, "nvmlDeviceGetMaxPcieLinkGeneration")
        return 5

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: int) -> int:
        self._gpu(handle, "nvmlDeviceGetCurrPcieLinkWidth")
        return 16

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle: int) -> int:
        self._gpu(handle, "nvmlDeviceGetMaxPcieLinkWidth")
        return 16

    def nvmlDeviceGetPcieThroughput(self, handle: int, counter: int) -> int:
        self._gpu(handle, "nvmlDeviceGetPcieThroughput")
        return 1000 if counter == pynvml.NVML_PCIE_UTIL_RX_BYTES else 250

    def nvmlDeviceGetFanSpeed(self, handle: int) -> int:
        self._gpu(handle, "nvmlDeviceGetFanSpeed")
        return 55

    def nvmlDeviceGetPerformanceState(self, handle: int) -> int:
        self._gpu(handle, "nvmlDeviceGetPerformanceState")
        return 0

    def nvmlDeviceGetComputeRunningProcesses_v3(self, handle: int) -> list[Any]:
        gpu = self._gpu(handle, "nvmlDeviceGetComputeRunningProcesses_v3")
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in gpu.processes]

    def nvmlDeviceGetComputeRunningProcesses_v2(self, handle: int) -> list[Any]:
        gpu = self._gpu(handle, "nvmlDeviceGetComputeRunningProcesses_v2")
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in gpu.processes]

    def nvmlDeviceGetFieldValues(self, handle: int, field_ids: list[int]) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetFieldValues")
        values = (pynvml.c_nvmlFieldValue_t * len(field_ids))()
        for slot, field_id in zip(values, field_ids, strict=True):
            slot.fieldId = field_id
            slot.nvmlReturn = pynvml.NVML_SUCCESS
            if field_id == pynvml.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION:
                slot.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
                slot.value.uiVal = ctypes.c_uint(gpu.recovery_action).value
            elif field_id == pynvml.NVML_FI_DEV_PERF_POLICY_RELIABILITY:
                slot.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
            elif field_id in PERF_POLICY_FIELDS:
                slot.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
                slot.value.ullVal = gpu.power_violation_ns if field_id == pynvml.NVML_FI_DEV_PERF_POLICY_POWER else 0
            else:
                slot.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
        return values
