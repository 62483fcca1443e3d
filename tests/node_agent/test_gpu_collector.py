"""The GPU collector through a fake NVML that raises NVML's real error classes."""

from __future__ import annotations

import os
from pathlib import Path

import pynvml
import pytest

from resource_agent.analysis.engine import analyze
from resource_agent.api.samples import CollectorState, Sample
from resource_agent.node_agent.bus_ids import PCI_ONLY_ERROR, normalise_bus_id
from resource_agent.node_agent.collectors.base import CollectorContext, CollectorUnavailable, run_collectors
from resource_agent.node_agent.nvml_collector import GpuCollector
from resource_agent.node_agent.nvml_decode import decode_clock_event_reasons
from resource_agent.node_agent.window import summarize
from tests.node_agent.fake_nvml import FakeGpu, FakeNvml

POD_UID = "1f6b1f4e-8f0c-4c1e-9d1a-3c2b6a5d4e7f"
CONTAINER = "a" * 64


@pytest.fixture
def host_proc(tmp_path: Path) -> Path:
    process = tmp_path / "4242"
    process.mkdir()
    (process / "comm").write_text("python3\n")
    slice_uid = POD_UID.replace("-", "_")
    (process / "cgroup").write_text(
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{slice_uid}.slice/cri-containerd-{CONTAINER}.scope\n"
    )
    return tmp_path


@pytest.fixture(autouse=True)
def _no_real_pci_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that do not build a sysfs must not see this machine's real GPUs under /sys."""
    real = GpuCollector._pci_gpus
    monkeypatch.setattr(GpuCollector, "_pci_gpus", lambda self: None if self.host_sys == Path("/sys") else real(self))


def collect(collector: GpuCollector) -> Sample:
    return run_collectors([collector])


def test_device_fields_units_and_pod_mapping(monkeypatch: pytest.MonkeyPatch, host_proc: Path) -> None:
    nvml = FakeNvml(monkeypatch, [FakeGpu(0, "GPU-aaaa", processes=[(4242, 30 * 2**30), (999, None)])])
    collector = GpuCollector(CollectorContext(host_proc=host_proc))
    sample = collect(collector)
    assert sample.collectors[0].state is CollectorState.OK
    assert sample.gpu is not None and sample.gpu.driver_version == "570.86.15" and sample.gpu.cuda_driver_version == "12.8"
    device = sample.gpu.devices[0]
    assert (device.uuid, device.pci_bus_id, device.mig_mode) == ("GPU-aaaa", "00000000:18:00.0", False)
    assert (device.sm_utilization_percent, device.memory_utilization_percent) == (87.0, 41.0)
    assert device.memory_reserved_bytes == 512 * 2**20 and device.memory_used_bytes == 40 * 2**30
    assert (device.power_watts, device.power_limit_watts) == (612.345, 700.0)
    assert (device.slowdown_temperature_celsius, device.shutdown_temperature_celsius) == (87.0, 92.0)
    assert (device.sm_clock_mhz, device.sm_clock_max_mhz) == (1755.0, 1980.0)
    assert device.clock_event_reasons == ["SwPowerCap"]
    assert device.violation_seconds["power"] == 2.5 and "reliability" not in device.violation_seconds
    assert "nvmlDeviceGetViolationStatus(reliability)" in device.unsupported
    assert (device.ecc_corrected_volatile, device.retired_pages_single_bit, device.remapped_rows_pending) == (3, 2, True)
    assert (device.pcie_rx_bytes_per_second, device.pcie_tx_bytes_per_second) == (1024_000, 256_000)
    assert (device.pcie_link_generation, device.pcie_link_generation_max) == (4, 5)
    assert device.recovery_action == "none"
    in_pod, outside = device.processes
    assert (in_pod.pid, in_pod.name, in_pod.pod_uid, in_pod.container_id) == (4242, "python3", POD_UID, CONTAINER)
    assert (outside.pod_uid, outside.used_memory_bytes) == (None, None)
    collector.close()
    assert nvml.shutdowns == 1 and nvml.init_calls == 1


def test_not_supported_and_old_driver_calls_are_listed_not_errors(monkeypatch: pytest.MonkeyPatch, host_proc: Path) -> None:
    gpu = FakeGpu(0, "GPU-old", unsupported={"nvmlDeviceGetFanSpeed", "nvmlDeviceGetMemoryInfo_v2"}, missing={"nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetRemappedRows"})
    FakeNvml(monkeypatch, [gpu])
    sample = collect(GpuCollector(CollectorContext(host_proc=host_proc)))
    device = sample.gpu.devices[0]  # type: ignore[union-attr]
    assert sample.collectors[0].state is CollectorState.OK
    assert {"nvmlDeviceGetFanSpeed", "nvmlDeviceGetMemoryInfo_v2"} <= set(device.unsupported)
    assert device.missing_functions == ["nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetRemappedRows"]
    assert device.fan_speed_percent is None and device.remapped_rows_correctable is None
    assert device.memory_total_bytes == 80 * 2**30 and device.memory_reserved_bytes is None  # v1 fallback
    assert device.clock_event_reasons == ["SwPowerCap"]  # older throttle-reasons call


def test_lost_gpu_does_not_hide_the_others(monkeypatch: pytest.MonkeyPatch, host_proc: Path) -> None:
    FakeNvml(monkeypatch, [FakeGpu(0, "GPU-ok"), FakeGpu(1, "GPU-lost", lost=True), FakeGpu(2, "GPU-ok2")])
    sample = collect(GpuCollector(CollectorContext(host_proc=host_proc)))
    assert [d.uuid for d in sample.gpu.devices] == ["GPU-ok", "GPU-ok2"]  # type: ignore[union-attr]
    assert [(gpu.index, gpu.error) for gpu in sample.gpu.lost] == [(1, "GPU is lost")]  # type: ignore[union-attr]
    status = sample.collectors[0]
    assert status.state is CollectorState.FAILED and "GPU 1" in (status.reason or "") and "Lost" in (status.reason or "")


@pytest.mark.parametrize(
    ("function", "error"),
    [
        ("nvmlDeviceGetHandleByIndex", pynvml.NVMLError_Unknown),
        ("nvmlDeviceGetHandleByIndex", pynvml.NVMLError_GpuIsLost),
        ("nvmlDeviceGetUUID", pynvml.NVMLError_Unknown),
        ("nvmlDeviceGetUUID", pynvml.NVMLError_GpuIsLost),
        ("nvmlDeviceGetPowerUsage", pynvml.NVMLError_Unknown),
        ("nvmlDeviceGetTotalEccErrors", pynvml.NVMLError_GpuIsLost),
        ("nvmlDeviceGetName", pynvml.NVMLError_ResetRequired),
    ],
)
def test_one_bad_gpu_never_hides_the_others(monkeypatch: pytest.MonkeyPatch, host_proc: Path, function: str, error: type[pynvml.NVMLError]) -> None:
    gpus = [FakeGpu(0, "GPU-a"), FakeGpu(1, "GPU-b"), FakeGpu(2, "GPU-c")]
    FakeNvml(monkeypatch, gpus)
    collector = GpuCollector(CollectorContext(host_proc=host_proc))
    collect(collector)  # healthy first: the bus id of GPU 1 is remembered
    gpus[1].errors[function] = error
    sample = collect(collector)
    assert sample.gpu is not None and [d.uuid for d in sample.gpu.devices] == ["GPU-a", "GPU-c"]
    (lost,) = sample.gpu.lost
    assert (lost.index, lost.pci_bus_id, lost.error) == (1, "0000:19:00.0", str(FakeNvml.error(error)))
    assert lost.uuid == (None if function == "nvmlDeviceGetHandleByIndex" else "GPU-b")  # a failed UUID lookup: the handle's
    assert sample.collectors[0].state is CollectorState.FAILED and "GPU 1" in (sample.collectors[0].reason or "")


def test_event_wait_errors_do_not_stop_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = FakeNvml(monkeypatch, [FakeGpu(0, "GPU-a"), FakeGpu(1, "GPU-b")])
    collector = GpuCollector(CollectorContext())
    collect(collector)
    nvml.events += [(0, 48), pynvml.NVMLError_GpuIsLost, pynvml.NVMLError_Unknown, (1, 79)]
    sample = collect(collector)
    assert sample.gpu is not None
    assert [[e.xid for e in d.xid_events] for d in sample.gpu.devices] == [[48], [79]]
    status = sample.collectors[0]
    assert status.state is CollectorState.OK and "XID event wait: GPU is lost" in (status.reason or "")
    nvml.events += [pynvml.NVMLError_GpuIsLost] * 50
    collect(collector)
    assert len(nvml.events) == 50 - 4  # gives up after a few errors instead of spinning


def test_xid_of_a_device_that_cannot_be_named_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [FakeGpu(0, "GPU-a"), FakeGpu(1, "GPU-b")]
    nvml = FakeNvml(monkeypatch, gpus)
    collector = GpuCollector(CollectorContext())
    collect(collector)
    gpus[1].lost = True  # seen healthy before: its handle still names it
    nvml.events += [(1, 79)]
    sample = collect(collector)
    assert sample.gpu is not None and sample.gpu.xid_events_unattributed == []
    assert [event.xid for event in sample.gpu.lost[0].xid_events] == [79]  # on the lost GPU, by its remembered handle
    collector._handles.clear()  # never seen healthy: nothing names it
    nvml.events += [(1, 79), (1, 79)]
    sample = collect(collector)
    assert sample.gpu is not None and [e.xid for e in sample.gpu.xid_events_unattributed] == [79, 79]
    sample.system = _system()
    summary = summarize([sample], "n")
    assert summary.gpu.unattributed_xid_counts == {"79": 2}  # the window keeps the code when it cannot say where
    off_bus = [f for f in analyze(summary).findings if f.rule == "gpu-xid-off-bus"]
    assert [(f.target.kind.value, f.severity.value, f.action.type.value) for f in off_bus] == [("Node", "critical", "drain-and-reboot-node")]
    assert "XID 79 x2 on a GPU NVML could not name" in off_bus[0].action.parameters["reason"]


def test_each_query_has_its_own_unsupported_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = FakeGpu(0, "GPU-a", unsupported={"uncorrected_aggregate", "retired_double_bit"}, ecc_uncorrected_volatile=2)
    FakeNvml(monkeypatch, [gpu])
    collector = GpuCollector(CollectorContext())
    for _ in range(2):  # the second sample must not skip the supported counters either
        device = collect(collector).gpu.devices[0]  # type: ignore[union-attr]
        assert (device.ecc_uncorrected_volatile, device.ecc_uncorrected_aggregate, device.ecc_corrected_aggregate) == (2, None, 0)
        assert (device.retired_pages_single_bit, device.retired_pages_double_bit) == (2, None)
        assert {"nvmlDeviceGetTotalEccErrors(uncorrected,aggregate)", "nvmlDeviceGetRetiredPages(double_bit)"} <= set(device.unsupported)


def test_current_functions_first_deprecated_ones_only_as_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = FakeNvml(monkeypatch, [FakeGpu(0, "GPU-a")])
    device = collect(GpuCollector(CollectorContext())).gpu.devices[0]  # type: ignore[union-attr]
    assert device.temperature_celsius == 71.0 and device.violation_seconds["power"] == 2.5
    deprecated = ("nvmlDeviceGetTemperature", "nvmlDeviceGetCurrentClocksThrottleReasons", "nvmlDeviceGetComputeRunningProcesses_v2")
    assert [nvml.calls[name] for name in deprecated] == [0, 0, 0]
    assert nvml.calls["nvmlDeviceGetViolationStatus"] == 1  # only the policy whose field is not supported
    assert device.missing_functions == []


def test_functions_missing_from_the_driver_are_reported_and_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = {"nvmlDeviceGetTemperatureV", "nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetFieldValues", "nvmlDeviceGetComputeRunningProcesses_v3"}
    FakeNvml(monkeypatch, [FakeGpu(0, "GPU-a", missing=missing, processes=[(4242, 2**30)])])
    sample = collect(GpuCollector(CollectorContext()))
    device = sample.gpu.devices[0]  # type: ignore[union-attr]
    assert device.missing_functions == sorted(missing)
    assert (device.temperature_celsius, device.clock_event_reasons, device.violation_seconds["power"]) == (71.0, ["SwPowerCap"], 2.5)
    assert [process.pid for process in device.processes] == [4242]
    status = sample.collectors[0]
    assert status.state is CollectorState.OK and status.reason == "driver lacks " + ", ".join(sorted(missing))


def test_power_limits_in_watts(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeNvml(monkeypatch, [FakeGpu(0, "GPU-a")])
    device = collect(GpuCollector(CollectorContext())).gpu.devices[0]  # type: ignore[union-attr]
    assert (device.power_limit_watts, device.power_default_limit_watts, device.power_limit_min_watts, device.power_limit_max_watts) == (700.0, 700.0, 200.0, 700.0)


def _pci_device(root: Path, bus_id: str, vendor: str, pci_class: str, driver: str | None) -> None:
    entry = root / "bus" / "pci" / "devices" / bus_id
    entry.mkdir(parents=True)
    (entry / "vendor").write_text(vendor + "\n")
    (entry / "class").write_text(pci_class + "\n")
    if driver is not None:
        target = root / "bus" / "pci" / "drivers" / driver
        target.mkdir(parents=True, exist_ok=True)
        (entry / "driver").symlink_to(target)


def test_pci_gpus_nvml_does_not_list_are_lost(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _pci_device(tmp_path, "0000:18:00.0", "0x10de", "0x030200", "nvidia")  # GPU 0 in NVML ("00000000:18:00.0")
    _pci_device(tmp_path, "0000:19:00.0", "0x10de", "0x030200", "nvidia")  # fell out of NVML
    _pci_device(tmp_path, "0000:1c:00.0", "0x10de", "0x030000", None)  # VGA the driver failed to take
    _pci_device(tmp_path, "0000:1a:00.0", "0x10de", "0x068000", None)  # NVSwitch bridge: not a GPU
    _pci_device(tmp_path, "0000:1b:00.0", "0x10de", "0x030200", "vfio-pci")  # passed through to a VM
    _pci_device(tmp_path, "0000:00:02.0", "0x8086", "0x030000", "i915")
    FakeNvml(monkeypatch, [FakeGpu(0, "GPU-a")])
    sample = collect(GpuCollector(CollectorContext(host_sys=tmp_path)))
    assert sample.gpu is not None
    assert (sample.gpu.pci_gpu_count, sample.gpu.pci_bus_ids) == (3, ["0000:18:00.0", "0000:19:00.0", "0000:1c:00.0"])
    assert [(gpu.pci_bus_id, gpu.error) for gpu in sample.gpu.lost] == [("0000:19:00.0", PCI_ONLY_ERROR), ("0000:1c:00.0", PCI_ONLY_ERROR)]
    assert sample.collectors[0].state is CollectorState.FAILED


def test_no_sysfs_means_no_pci_count(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    FakeNvml(monkeypatch, [FakeGpu(0, "GPU-a")])
    sample = collect(GpuCollector(CollectorContext(host_sys=tmp_path / "absent")))
    assert sample.gpu is not None and (sample.gpu.pci_gpu_count, sample.gpu.lost) == (None, [])
    assert sample.collectors[0].state is CollectorState.OK


def test_bus_ids_are_normalised() -> None:
    assert normalise_bus_id("00000000:3B:00.0") == normalise_bus_id("0000:3b:00.0") == "0000:3b:00.0"
    assert normalise_bus_id("00000001:C1:00.1") == "0001:c1:00.1"


def test_process_start_time_from_proc_stat(monkeypatch: pytest.MonkeyPatch, host_proc: Path) -> None:
    (host_proc / "stat").write_text("cpu  1 2 3 4\nbtime 1700000000\nprocesses 5\n")
    fields = ["S"] + ["0"] * 18 + ["12345"] + ["0"] * 20  # field 22 (starttime) is the 20th after the name
    (host_proc / "4242" / "stat").write_text(f"4242 (py (thon) 3) {' '.join(fields)}\n")
    FakeNvml(monkeypatch, [FakeGpu(0, "GPU-a", processes=[(4242, 2**30), (999, None)])])
    in_pod, gone = collect(GpuCollector(CollectorContext(host_proc=host_proc))).gpu.devices[0].processes  # type: ignore[union-attr]
    assert in_pod.started_at == 1700000000 + 12345 / os.sysconf("SC_CLK_TCK")
    assert gone.started_at is None


@pytest.mark.parametrize("error", [pynvml.NVMLError_LibraryNotFound, pynvml.NVMLError_DriverNotLoaded, pynvml.NVMLError_NoPermission])
def test_nvml_that_cannot_load_is_unavailable_with_the_reason(monkeypatch: pytest.MonkeyPatch, error: type[pynvml.NVMLError]) -> None:
    nvml = FakeNvml(monkeypatch, [], init_error=error)
    collector = GpuCollector(CollectorContext())
    status = collect(collector).collectors[0]
    assert status.state is CollectorState.UNAVAILABLE and (status.reason or "").startswith("NVML not available: ")
    collect(collector)
    assert nvml.init_calls == 1  # not retried on every sample


def test_driver_unloaded_mid_run_reinitialises(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = FakeNvml(monkeypatch, [FakeGpu(0, "GPU-a")])
    collector = GpuCollector(CollectorContext())
    collect(collector)
    nvml.initialised = False  # next call raises NVMLError_Uninitialized
    with pytest.raises(CollectorUnavailable, match="Uninitialized"):
        collector.update(Sample(timestamp=0.0))
    collector._next_init = 0.0
    assert collect(collector).gpu is not None and nvml.init_calls == 2


def test_xid_events_are_drained_each_sample_and_counted_over_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = FakeNvml(monkeypatch, [FakeGpu(0, "GPU-a"), FakeGpu(1, "GPU-b")])
    collector = GpuCollector(CollectorContext())
    samples = [collect(collector)]
    assert nvml.registered == [0, 1]
    nvml.events += [(1, 79), (1, 79), (0, 48)]
    samples.append(collect(collector))
    samples.append(collect(collector))  # nothing new: the same events are not seen twice
    nvml.events += [(1, 79)]
    samples.append(collect(collector))
    assert [e.xid for e in samples[1].gpu.devices[1].xid_events] == [79, 79]  # type: ignore[union-attr]
    assert samples[2].gpu.devices[1].xid_events == []  # type: ignore[union-attr]
    for step, sample in enumerate(samples):
        sample.timestamp = float(step)
        sample.system = _system()
    devices = summarize(samples, "n").gpu.devices
    assert devices[0].xid_counts == {"48": 1} and devices[1].xid_counts == {"79": 3}


def test_recovery_action_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeNvml(monkeypatch, [FakeGpu(0, "GPU-a", recovery_action=pynvml.NVML_GPU_RECOVERY_ACTION_DRAIN_AND_RESET)])
    assert collect(GpuCollector(CollectorContext())).gpu.devices[0].recovery_action == "drain_and_reset"  # type: ignore[union-attr]


def test_real_nvml_on_a_machine_without_a_driver() -> None:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver")
    status = collect(GpuCollector(CollectorContext())).collectors[0]
    assert status.state is CollectorState.UNAVAILABLE and "NVML not available" in (status.reason or "")


def test_clock_event_reason_bitmask_decoding() -> None:
    mask = pynvml.nvmlClocksEventReasonGpuIdle | pynvml.nvmlClocksEventReasonHwThermalSlowdown | 0x10000
    assert decode_clock_event_reasons(mask) == ["GpuIdle", "HwThermalSlowdown", "Unknown0x10000"]
    assert decode_clock_event_reasons(0) == []


def _system():  # type: ignore[no-untyped-def]
    from tests.node_agent.agent_samples import system

    return system(0)
