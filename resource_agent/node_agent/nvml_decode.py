"""Pure decoding of NVML and host values: clock event reasons, violation policies, recovery actions,
field values, PCI classes, process start times. PCI bus ids are in `bus_ids` (pure, no pynvml)."""

from __future__ import annotations

import pynvml

from resource_agent.node_agent.nvml_names import CLOCK_EVENT_REASON_NAMES


def _reason_bits() -> dict[int, str]:
    """Bit -> name, from nvmlClocksEventReason* (newer) and nvmlClocksThrottleReason* (older, adds two bits)."""
    bits: dict[int, str] = {}
    for name in CLOCK_EVENT_REASON_NAMES:
        for prefix in ("nvmlClocksEventReason", "nvmlClocksThrottleReason"):
            value = getattr(pynvml, prefix + name, None)
            if value is not None:
                bits.setdefault(int(value), name)
                break
    return dict(sorted(bits.items()))


CLOCK_EVENT_REASONS = _reason_bits()


def decode_clock_event_reasons(mask: int) -> list[str]:
    """Names of the active reasons in a clock event (throttle) bitmask; unknown bits as "Unknown0x..."."""
    names = [name for bit, name in CLOCK_EVENT_REASONS.items() if mask & bit]
    unknown = mask & ~sum(CLOCK_EVENT_REASONS)
    if unknown:
        names.append(f"Unknown{unknown:#x}")
    return names


# nvmlDeviceGetViolationStatus policies -> the key used in violation_seconds.
VIOLATION_POLICIES = {
    "power": pynvml.NVML_PERF_POLICY_POWER,
    "thermal": pynvml.NVML_PERF_POLICY_THERMAL,
    "sync_boost": pynvml.NVML_PERF_POLICY_SYNC_BOOST,
    "board_limit": pynvml.NVML_PERF_POLICY_BOARD_LIMIT,
    "low_utilization": pynvml.NVML_PERF_POLICY_LOW_UTILIZATION,
    "reliability": pynvml.NVML_PERF_POLICY_RELIABILITY,
    "total_app_clocks": pynvml.NVML_PERF_POLICY_TOTAL_APP_CLOCKS,
    "total_base_clocks": pynvml.NVML_PERF_POLICY_TOTAL_BASE_CLOCKS,
}

# The same counters as nvmlDeviceGetFieldValues fields, which pynvml 13.615 names as the replacement of the
# deprecated nvmlDeviceGetViolationStatus ("Use nvmlDEviceGetFieldValues instead to query this data").
VIOLATION_FIELDS = {
    "power": pynvml.NVML_FI_DEV_PERF_POLICY_POWER,
    "thermal": pynvml.NVML_FI_DEV_PERF_POLICY_THERMAL,
    "sync_boost": pynvml.NVML_FI_DEV_PERF_POLICY_SYNC_BOOST,
    "board_limit": pynvml.NVML_FI_DEV_PERF_POLICY_BOARD_LIMIT,
    "low_utilization": pynvml.NVML_FI_DEV_PERF_POLICY_LOW_UTILIZATION,
    "reliability": pynvml.NVML_FI_DEV_PERF_POLICY_RELIABILITY,
    "total_app_clocks": pynvml.NVML_FI_DEV_PERF_POLICY_TOTAL_APP_CLOCKS,
    "total_base_clocks": pynvml.NVML_FI_DEV_PERF_POLICY_TOTAL_BASE_CLOCKS,
}
assert VIOLATION_FIELDS.keys() == VIOLATION_POLICIES.keys()

RECOVERY_ACTIONS = {
    pynvml.NVML_GPU_RECOVERY_ACTION_NONE: "none",
    pynvml.NVML_GPU_RECOVERY_ACTION_GPU_RESET: "gpu_reset",
    pynvml.NVML_GPU_RECOVERY_ACTION_NODE_REBOOT: "node_reboot",
    pynvml.NVML_GPU_RECOVERY_ACTION_DRAIN_P2P: "drain_p2p",
    pynvml.NVML_GPU_RECOVERY_ACTION_DRAIN_AND_RESET: "drain_and_reset",
    pynvml.NVML_GPU_RECOVERY_ACTION_RECOVER_IMEX_DOMAIN: "recover_imex_domain",
    pynvml.NVML_GPU_RECOVERY_ACTION_BUS_RESET: "bus_reset",
    pynvml.NVML_GPU_RECOVERY_ACTION_SYSTEM_REBOOT: "system_reboot",
}


def decode_recovery_action(code: int) -> str:
    return RECOVERY_ACTIONS.get(code, f"unknown_{code}")


_VALUE_MEMBERS = {
    pynvml.NVML_VALUE_TYPE_DOUBLE: "dVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
    pynvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal",
    pynvml.NVML_VALUE_TYPE_SIGNED_INT: "siVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_SHORT: "usVal",
}


def field_value(field: pynvml.c_nvmlFieldValue_t) -> float | int:
    """The number inside an nvmlFieldValue_t, read through the union member its valueType names."""
    value: float | int = getattr(field.value, _VALUE_MEMBERS.get(field.valueType, "uiVal"))
    return value


def cuda_version(code: int) -> str:
    """nvmlSystemGetCudaDriverVersion's 12080 -> "12.8"."""
    return f"{code // 1000}.{code % 1000 // 10}"


def text(value: str | bytes) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


# --- PCI ---------------------------------------------------------------------------

NVIDIA_VENDOR = 0x10DE
GPU_PCI_CLASSES = (0x0300, 0x0302)  # display VGA, 3D controller (NVSwitch is a bridge, 0x0680: not a GPU)
NVIDIA_DRIVER = "nvidia"


def is_nvidia_gpu(vendor: str, pci_class: str, driver: str | None) -> bool:
    """An NVIDIA GPU from sysfs `vendor` and `class` ("0x10de", "0x030200"), bound to the nvidia driver or to none.

    A GPU bound to another driver (vfio-pci for passthrough to a VM) is not NVML's to see; an unbound
    one is, since that is what a GPU the driver failed to initialise looks like."""
    try:
        return int(vendor, 16) == NVIDIA_VENDOR and int(pci_class, 16) >> 8 in GPU_PCI_CLASSES and driver in (None, NVIDIA_DRIVER)
    except ValueError:
        return False


def process_started_at(stat_text: str, boot_time: float, ticks_per_second: int) -> float:
    """Unix seconds a process started, from its /proc/<pid>/stat (field 22, starttime, clock ticks since boot)."""
    fields = stat_text.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
    return boot_time + int(fields[19]) / ticks_per_second  # fields[0] is field 3 (state)
