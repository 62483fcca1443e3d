"""When a new summary is worth writing before the report interval is up."""

from __future__ import annotations

from resource_agent.api.samples import CollectorState
from resource_agent.api.summary import GpuSummary, NodeSummary

MEMORY_NEAR_FULL_PERCENT = 95.0
TEMPERATURE_MARGIN_CELSIUS = 5.0


def significant_change(previous: NodeSummary | None, current: NodeSummary) -> str | None:
    """A reason to report now, or None when the summary can wait for the next interval."""
    if previous is None:
        return "first report"
    if len(current.gpu.devices) != len(previous.gpu.devices):
        return "GPU count changed"
    old_gpus = {gpu.uuid: gpu for gpu in previous.gpu.devices}
    for gpu in current.gpu.devices:
        old = old_gpus.get(gpu.uuid)
        if old is None:
            return f"new GPU {gpu.index}"
        if _xid_total(gpu.xid_counts) > _xid_total(old.xid_counts) or set(gpu.xid_counts) - set(old.xid_counts):
            return f"new XID event on GPU {gpu.index}"
        if gpu.ecc.uncorrected_increase > old.ecc.uncorrected_increase:
            return f"new uncorrectable ECC error on GPU {gpu.index}"
        if gpu.recovery_action and gpu.recovery_action != old.recovery_action:
            return f"GPU {gpu.index} recovery action {gpu.recovery_action}"
        if _crossed(_memory_percent(old), _memory_percent(gpu), MEMORY_NEAR_FULL_PERCENT):
            return f"GPU {gpu.index} memory crossed {MEMORY_NEAR_FULL_PERCENT:.0f}%"
        if _crossed(_temperature_margin(old), _temperature_margin(gpu), TEMPERATURE_MARGIN_CELSIUS, below=True):
            return f"GPU {gpu.index} within {TEMPERATURE_MARGIN_CELSIUS:.0f} C of slowdown"
    failed_before = {c.name for c in previous.collectors if c.state is CollectorState.FAILED}
    failed_now = {c.name for c in current.collectors if c.state is CollectorState.FAILED}
    if failed_now - failed_before:
        return f"collector failed: {', '.join(sorted(failed_now - failed_before))}"
    return None


def _xid_total(counts: dict[str, int]) -> int:
    return sum(counts.values())


def _memory_percent(gpu: GpuSummary) -> float | None:
    return gpu.memory_used_percent.last if gpu.memory_used_percent else None


def _temperature_margin(gpu: GpuSummary) -> float | None:
    if gpu.temperature_celsius is None or gpu.slowdown_temperature_celsius is None:
        return None
    return gpu.slowdown_temperature_celsius - gpu.temperature_celsius.last


def _crossed(old: float | None, new: float | None, threshold: float, *, below: bool = False) -> bool:
    if old is None or new is None:
        return False
    if below:
        return old > threshold >= new
    return old < threshold <= new
