"""NVML names the exporter needs without importing pynvml (a large module, loaded only where NVML is)."""

# The nvmlClocksEventReason* names (pynvml.py; nvmlClocksThrottleReason* in older versions).
# UserDefinedClocks is an alias of ApplicationsClocksSetting; All/None are not reasons.
CLOCK_EVENT_REASON_NAMES = (
    "GpuIdle",
    "ApplicationsClocksSetting",
    "SwPowerCap",
    "HwSlowdown",
    "SyncBoost",
    "SwThermalSlowdown",
    "HwThermalSlowdown",
    "HwPowerBrakeSlowdown",
    "DisplayClockSetting",
    "BoardLimit",
    "Reliability",
)
