"""Standing GPU faults: kept across windows until fixed, by boot id and GPU uuid; the same from a recording."""

from __future__ import annotations

import json
from pathlib import Path

from resource_agent.api.samples import GpuDeviceSample, GpuSample, LostGpu, Sample, XidEvent
from resource_agent.api.summary import GpuFaultKind, NodeSummary
from resource_agent.node_agent.bus_ids import PCI_ONLY_ERROR
from resource_agent.node_agent.faults import FaultTracker
from resource_agent.node_agent.recording import reduce_recording, write_recording
from resource_agent.node_agent.window import SampleWindow, summarize
from tests.node_agent.agent_samples import gpu_device, system

T0 = 1_700_000_000.0


def make(step: int, *devices: GpuDeviceSample, boot: str = "b007", lost: list[LostGpu] | None = None, pci: int | None = None) -> Sample:
    host = system(step).model_copy(update={"boot_id": boot})
    gpu = GpuSample(devices=list(devices), lost=lost or [], pci_gpu_count=pci)
    return Sample(timestamp=T0 + step * 5, system=host, gpu=gpu)


def kinds(summary: NodeSummary, index: int = 0) -> list[tuple[GpuFaultKind, float, int | None]]:
    return [(fault.kind, fault.since, fault.xid) for fault in summary.gpu.devices[index].faults]


def run(samples: list[Sample], capacity: int = 3) -> SampleWindow:
    window = SampleWindow(capacity)
    for sample in samples:
        window.append(sample)
    return window


def test_fatal_xid_outlives_the_window_until_a_gpu_reset() -> None:
    samples = [make(0, gpu_device(0, 0, ecc_corrected_volatile=4))]
    samples.append(make(1, gpu_device(0, 1, ecc_corrected_volatile=4, xid_events=[XidEvent(xid=79, timestamp=T0 + 4)])))
    samples += [make(step, gpu_device(0, step, ecc_corrected_volatile=4, xid_events=[XidEvent(xid=13, timestamp=T0)])) for step in range(2, 20)]
    window = run(samples)
    assert kinds(window.summary("n")) == [(GpuFaultKind.FATAL_XID, T0 + 4, 79)]  # XID 13 is an application error
    assert window.summary("n").gpu.devices[0].xid_counts == {"13": 3}  # the window itself forgot XID 79
    window.append(make(20, gpu_device(0, 20, ecc_corrected_volatile=0)))  # volatile counters restart: the GPU was reset
    assert kinds(window.summary("n")) == []


def test_a_cleared_reset_recovery_action_clears_fatal_xids() -> None:
    xid = [XidEvent(xid=95, timestamp=T0)]
    window = run([make(0, gpu_device(0, 0, xid_events=xid, recovery_action="gpu_reset")), make(1, gpu_device(0, 1, recovery_action="gpu_reset"))])
    assert {fault.kind for fault in window.summary("n").gpu.devices[0].faults} == {GpuFaultKind.FATAL_XID, GpuFaultKind.RECOVERY_ACTION}
    window.append(make(2, gpu_device(0, 2, recovery_action="none")))
    assert kinds(window.summary("n")) == []


def test_conditions_open_and_clear_with_nvml_and_unknown_values_change_nothing() -> None:
    bad = {"ecc_uncorrected_volatile": 2, "remapped_rows_pending": True, "remapped_rows_failure": True, "recovery_action": "drain_and_reset"}
    samples = [make(0, gpu_device(0, 0, **bad))]
    samples += [make(step, gpu_device(0, step, ecc_uncorrected_volatile=None, recovery_action=None)) for step in range(1, 10)]
    window = run(samples)
    faults = window.summary("n").gpu.devices[0].faults
    assert sorted(fault.kind.value for fault in faults) == ["ecc-uncorrected", "recovery-action", "row-remap-failure", "row-remap-pending"]
    assert {fault.since for fault in faults} == {T0}
    assert "uncorrected volatile ECC errors: 2" in [fault.detail for fault in faults]
    fixed = {"ecc_uncorrected_volatile": 0, "remapped_rows_pending": False, "remapped_rows_failure": False, "recovery_action": "none"}
    window.append(make(10, gpu_device(0, 10, **fixed)))
    assert kinds(window.summary("n")) == []


def test_a_new_boot_clears_every_fault() -> None:
    xid = [XidEvent(xid=48, timestamp=T0)]
    window = run([make(0, gpu_device(0, 0, xid_events=xid), lost=[LostGpu(index=1, uuid="GPU-0001", error="GPU is lost")])])
    assert kinds(window.summary("n")) == [(GpuFaultKind.FATAL_XID, T0, 48)] and len(window.summary("n").gpu.lost) == 1
    window.append(make(1, gpu_device(0, 1), boot="b008"))
    summary = window.summary("n")
    assert kinds(summary) == [] and summary.gpu.lost == []


def test_lost_gpus_keep_their_since_and_clear_when_back() -> None:
    healthy = [gpu_device(0, 0), gpu_device(1, 0)]
    samples = [make(0, *healthy, pci=2)]
    pci_only = LostGpu(pci_bus_id="0000:0b:00.0", error=PCI_ONLY_ERROR)  # GPU 1 ("00000000:0B:00.0") left NVML
    samples += [make(step, gpu_device(0, step), lost=[pci_only], pci=2) for step in range(1, 10)]
    window = run(samples)
    summary = window.summary("n")
    assert summary.gpu.expected_count == 2 and [d.index for d in summary.gpu.devices] == [0]
    (lost,) = summary.gpu.lost
    assert (lost.index, lost.uuid, lost.pci_bus_id, lost.error, lost.since) == (1, "GPU-0001", "0000:0b:00.0", PCI_ONLY_ERROR, T0 + 5)
    window.append(make(10, gpu_device(0, 10), gpu_device(1, 10), pci=2))
    summary = window.summary("n")
    assert summary.gpu.lost == [] and kinds(summary, 1) == []


def test_a_lost_gpu_in_the_window_carries_a_lost_fault() -> None:
    lost = LostGpu(index=1, uuid="GPU-0001", pci_bus_id="0000:0b:00.0", error="Unknown Error")
    summary = summarize([make(0, gpu_device(0, 0), gpu_device(1, 0)), make(1, gpu_device(0, 1), lost=[lost])], "n")
    assert [(fault.kind, fault.detail) for fault in summary.gpu.devices[1].faults] == [(GpuFaultKind.LOST, "Unknown Error")]


def test_a_sample_without_gpu_section_changes_nothing() -> None:
    tracker = FaultTracker()
    tracker.add(make(0, gpu_device(0, 0, remapped_rows_pending=True)))
    tracker.add(Sample(timestamp=T0 + 5, system=system(1)))
    assert [fault.kind for fault in tracker.faults("GPU-0000")] == [GpuFaultKind.ROW_REMAP_PENDING]


def test_state_round_trips_through_json() -> None:
    tracker = FaultTracker()
    tracker.add(make(0, gpu_device(0, 0, ecc_corrected_volatile=1, xid_events=[XidEvent(xid=79, timestamp=T0)]), lost=[LostGpu(index=1, error="GPU is lost")], pci=2))
    restored = FaultTracker.from_state(json.loads(json.dumps(tracker.state())))
    assert restored.faults("GPU-0000") == tracker.faults("GPU-0000") and restored.lost() == tracker.lost()
    assert (restored.boot_id, restored.expected_count) == ("b007", 2)
    restored.add(make(1, gpu_device(0, 1, ecc_corrected_volatile=0)))  # the remembered counter still detects the reset
    assert restored.faults("GPU-0000") == []


def test_analyze_of_a_recording_gives_the_agents_faults(tmp_path: Path) -> None:
    samples = [make(0, gpu_device(0, 0, xid_events=[XidEvent(xid=79, timestamp=T0)]), gpu_device(1, 0), pci=2)]
    samples += [make(step, gpu_device(0, step, remapped_rows_pending=True), lost=[LostGpu(index=1, uuid="GPU-0001", error="GPU is lost")], pci=2) for step in range(1, 30)]
    window = run(samples, capacity=60)  # the agent's window holds the whole run, as analyze does
    path = tmp_path / "rec.jsonl"
    write_recording(path, samples)
    replayed = reduce_recording(path).summary("n")
    agent = window.summary("n")
    assert replayed.gpu.model_dump() == agent.gpu.model_dump()
    assert [fault.kind for fault in replayed.gpu.devices[0].faults] == [GpuFaultKind.FATAL_XID, GpuFaultKind.ROW_REMAP_PENDING]
    assert replayed.gpu.lost[0].since == T0 + 5


def test_an_xid_on_a_gpu_as_it_is_lost_is_counted_and_kept() -> None:
    lost = LostGpu(index=1, uuid="GPU-0001", pci_bus_id="0000:0b:00.0", error="GPU is lost", xid_events=[XidEvent(xid=79, timestamp=T0 + 5)])
    samples = [make(0, gpu_device(0, 0), gpu_device(1, 0)), make(1, gpu_device(0, 1), lost=[lost])]
    samples += [make(step, gpu_device(0, step), lost=[lost.model_copy(update={"xid_events": []})]) for step in range(2, 10)]
    window = run(samples[:2], capacity=3)
    assert window.summary("n").gpu.devices[1].xid_counts == {"79": 1}
    for later in samples[2:]:
        window.append(later)
    tracker = window.faults()
    assert [(fault.kind, fault.xid) for fault in tracker.faults("GPU-0001")] == [(GpuFaultKind.FATAL_XID, 79), (GpuFaultKind.LOST, None)]
