"""Standing GPU hardware faults, kept across windows until they are fixed (pure, no I/O).

`FaultTracker.add` takes every sample in order (the agent's, or a recording's) and keeps,
per boot id and GPU uuid, the faults an SRE must see until they are fixed, not until the
window ends:

- `ecc-uncorrected`: the volatile uncorrected ECC counter is above zero (it counts since the
  driver loaded or the GPU was reset); clears when it reads zero again.
- `row-remap-pending`, `row-remap-failure`: as NVML reports them; clear when NVML says no.
- `recovery-action`: NVML's recovery action is other than "none"; clears when it is "none".
- `fatal-xid`: an XID of `FATAL_XIDS` (one fault per code); clears only on a GPU reset or a
  new boot. A reset is seen as a volatile ECC counter that went down (they restart at zero)
  or a recovery action calling for a reset that went back to "none"; a reset that shows
  neither (counters already zero, no recovery action) leaves the fault until the next boot.
- `lost`: NVML lost the GPU, or the PCI bus lists it and NVML does not; clears when the
  sample no longer lists it as lost.

A new boot id clears everything. A value NVML did not give (None) changes nothing, nor does
a sample without a GPU section (the collector failed). `since` is the sample (or XID event)
time the fault was first seen on this boot.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from resource_agent.api.samples import GpuDeviceSample, GpuSample, LostGpu, Sample, XidEvent
from resource_agent.api.summary import GpuFault, GpuFaultKind, LostGpuSummary
from resource_agent.api.xid import FATAL_XIDS
from resource_agent.node_agent.bus_ids import normalise_bus_id

NO_RECOVERY_ACTION = "none"
RESET_ACTIONS = frozenset({"gpu_reset", "drain_and_reset", "bus_reset"})  # recovery actions a GPU reset satisfies
STATE_VERSION = 1


@dataclass
class _Gpu:
    """What the tracker remembers of one GPU on this boot."""

    faults: dict[str, GpuFault] = field(default_factory=dict)  # kind, or "fatal-xid-<code>" -> fault
    volatile_ecc: tuple[int | None, int | None] = (None, None)  # last (corrected, uncorrected) volatile counts
    recovery_action: str | None = None
    index: int | None = None
    pci_bus_id: str | None = None


class FaultTracker:
    """Standing faults by GPU uuid, and lost GPUs, on the current boot."""

    def __init__(self) -> None:
        self.boot_id: str | None = None
        self.expected_count: int | None = None  # NVIDIA GPUs on the PCI bus, as last seen
        self._gpus: dict[str, _Gpu] = {}
        self._lost: dict[str, LostGpuSummary] = {}  # bus id, else uuid, else "index-<n>" -> lost GPU

    def add(self, sample: Sample) -> None:
        """Take the next sample (in time order)."""
        boot_id = sample.system.boot_id if sample.system is not None else None
        if boot_id is not None and boot_id != self.boot_id:
            if self.boot_id is not None:  # a reboot fixes everything it can; what is still wrong shows again
                self._gpus.clear()
                self._lost.clear()
            self.boot_id = boot_id
        if sample.gpu is None:
            return
        for device in sample.gpu.devices:
            self._device(device, sample.timestamp)
        self._lost_gpus(sample.gpu, sample.timestamp)

    def faults(self, uuid: str) -> list[GpuFault]:
        """The GPU's standing faults, oldest first (a lost GPU included)."""
        gpu = self._gpus.get(uuid)
        faults = list(gpu.faults.values()) if gpu is not None else []
        faults += [_lost_fault(lost) for lost in self._lost.values() if lost.uuid == uuid]
        return sorted(faults, key=lambda fault: (fault.since, fault.kind.value, fault.xid or 0))

    def lost(self) -> list[LostGpuSummary]:
        return sorted(self._lost.values(), key=lambda lost: (lost.since, lost.pci_bus_id or "", lost.index or 0))

    def snapshot(self) -> FaultTracker:
        """An independent copy (the agent summarises one while the sampler feeds the original)."""
        return copy.deepcopy(self)

    # --- state file -------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The tracker as JSON-ready data (small: a few entries per faulty GPU)."""
        return {
            "version": STATE_VERSION,
            "bootId": self.boot_id,
            "expectedCount": self.expected_count,
            "gpus": {
                uuid: {
                    "faults": [fault.to_wire() for fault in gpu.faults.values()],
                    "volatileEcc": list(gpu.volatile_ecc),
                    "recoveryAction": gpu.recovery_action,
                    "index": gpu.index,
                    "pciBusId": gpu.pci_bus_id,
                }
                for uuid, gpu in self._gpus.items()
            },
            "lost": {key: lost.to_wire() for key, lost in self._lost.items()},
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> FaultTracker:
        """A tracker from `state()`; raises ValueError (or pydantic's ValidationError) on anything else."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unknown fault state version {data.get('version')!r}")
        tracker = cls()
        tracker.boot_id = data.get("bootId")
        tracker.expected_count = data.get("expectedCount")
        for uuid, gpu in data.get("gpus", {}).items():
            faults = [GpuFault.model_validate(fault) for fault in gpu.get("faults", [])]
            corrected, uncorrected = gpu.get("volatileEcc", [None, None])
            tracker._gpus[uuid] = _Gpu(
                faults={_key(fault): fault for fault in faults},
                volatile_ecc=(corrected, uncorrected),
                recovery_action=gpu.get("recoveryAction"),
                index=gpu.get("index"),
                pci_bus_id=gpu.get("pciBusId"),
            )
        tracker._lost = {key: LostGpuSummary.model_validate(lost) for key, lost in data.get("lost", {}).items()}
        return tracker

    # --- per sample -------------------------------------------------------------

    def _device(self, device: GpuDeviceSample, now: float) -> None:
        gpu = self._gpus.setdefault(device.uuid, _Gpu())
        gpu.index = device.index
        if device.pci_bus_id:
            gpu.pci_bus_id = normalise_bus_id(device.pci_bus_id)
        if _was_reset(gpu, device):
            gpu.faults = {key: fault for key, fault in gpu.faults.items() if fault.kind is not GpuFaultKind.FATAL_XID}
        corrected, uncorrected = device.ecc_corrected_volatile, device.ecc_uncorrected_volatile
        old_corrected, old_uncorrected = gpu.volatile_ecc
        gpu.volatile_ecc = (
            corrected if corrected is not None else old_corrected,
            uncorrected if uncorrected is not None else old_uncorrected,
        )
        if device.recovery_action is not None:
            gpu.recovery_action = device.recovery_action
        _condition(gpu, GpuFaultKind.ECC_UNCORRECTED, None if uncorrected is None else uncorrected > 0, f"uncorrected volatile ECC errors: {uncorrected}", now)
        _condition(gpu, GpuFaultKind.ROW_REMAP_PENDING, device.remapped_rows_pending, "row remap pending: reset the GPU to apply it", now)
        _condition(gpu, GpuFaultKind.ROW_REMAP_FAILURE, device.remapped_rows_failure, "row remapping failed", now)
        action = device.recovery_action
        _condition(gpu, GpuFaultKind.RECOVERY_ACTION, None if action is None else action != NO_RECOVERY_ACTION, f"recovery action: {action}", now)
        _fatal_xids(gpu, device.xid_events)

    def _lost_gpus(self, sample: GpuSample, now: float) -> None:
        by_bus_id = {gpu.pci_bus_id: (uuid, gpu.index) for uuid, gpu in self._gpus.items() if gpu.pci_bus_id}
        current: dict[str, LostGpuSummary] = {}
        for lost in sample.lost:
            if lost.uuid is not None and lost.xid_events:
                _fatal_xids(self._gpus.setdefault(lost.uuid, _Gpu()), lost.xid_events)
            bus_id = normalise_bus_id(lost.pci_bus_id) if lost.pci_bus_id else None
            uuid, index = by_bus_id.get(bus_id, (lost.uuid, lost.index)) if bus_id else (lost.uuid, lost.index)
            key = _lost_key(lost, bus_id)
            before = self._lost.get(key)
            current[key] = LostGpuSummary(
                index=lost.index if lost.index is not None else index,
                uuid=lost.uuid or uuid,
                pci_bus_id=bus_id,
                error=lost.error,
                since=before.since if before is not None else now,
            )
        self._lost = current
        if sample.pci_gpu_count is not None:
            self.expected_count = sample.pci_gpu_count


def _fatal_xids(gpu: _Gpu, events: list[XidEvent]) -> None:
    for event in events:
        meaning = FATAL_XIDS.get(event.xid)
        if meaning is not None:
            fault = GpuFault(kind=GpuFaultKind.FATAL_XID, since=event.timestamp, detail=f"XID {event.xid}: {meaning}", xid=event.xid)
            gpu.faults.setdefault(_key(fault), fault)


def _key(fault: GpuFault) -> str:
    return f"{fault.kind.value}-{fault.xid}" if fault.xid is not None else fault.kind.value


def _lost_key(lost: LostGpu, bus_id: str | None) -> str:
    return bus_id or lost.uuid or f"index-{lost.index}"


def _lost_fault(lost: LostGpuSummary) -> GpuFault:
    return GpuFault(kind=GpuFaultKind.LOST, since=lost.since, detail=lost.error)


def _condition(gpu: _Gpu, kind: GpuFaultKind, active: bool | None, detail: str, now: float) -> None:
    """Open, refresh or clear the fault of `kind`; None (not read this time) changes nothing."""
    if active is None:
        return
    before = gpu.faults.get(kind.value)
    if not active:
        gpu.faults.pop(kind.value, None)
    elif before is None or before.detail != detail:
        gpu.faults[kind.value] = GpuFault(kind=kind, since=before.since if before is not None else now, detail=detail)


def _was_reset(gpu: _Gpu, device: GpuDeviceSample) -> bool:
    """Whether the GPU was reset since the last sample: a volatile ECC counter went down, or a reset action was cleared."""
    for before, now in zip(gpu.volatile_ecc, (device.ecc_corrected_volatile, device.ecc_uncorrected_volatile), strict=True):
        if before is not None and now is not None and now < before:
            return True
    return gpu.recovery_action in RESET_ACTIONS and device.recovery_action == NO_RECOVERY_ACTION
