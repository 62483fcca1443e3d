"""The GPU collector through a fake NVML that raises NVML's real error classes."""

from __future__ import annotations

from pathlib import Path

import pynvml
import pytest

from resource_agent.api.samples import CollectorState, Sample
from resource_agent.node_agent.collectors.base import CollectorContext, CollectorUnavailable, run_collectors
from resource_agent.node_agent.collectors.gpu import GpuCollector
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
    assert {"nvmlDeviceGetFanSpeed", "nvmlDeviceGetMemoryInfo_v2", "nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetRemappedRows"} <= set(device.unsupported)
    assert device.fan_speed_percent is None and device.remapped_rows_correctable is None
    assert device.memory_total_bytes == 80 * 2**30 and device.memory_reserved_bytes is None  # v1 fallback
    assert device.clock_event_reasons == ["SwPowerCap"]  # older throttle-reasons call


def test_lost_gpu_does_not_hide_the_others(monkeypatch: pytest.MonkeyPatch, host_proc: Path) -> None:
    FakeNvml(monkeypatch, [FakeGpu(0, "GPU-ok"), FakeGpu(1, "GPU-lost", lost=True), FakeGpu(2, "GPU-ok2")])
    sample = collect(GpuCollector(CollectorContext(host_proc=host_proc)))
    assert [d.uuid for d in sample.gpu.devices] == ["GPU-ok", "GPU-ok2"]  # type: ignore[union-attr]
    status = sample.collectors[0]
    assert status.state is CollectorState.FAILED and "GPU 1" in (status.reason or "") and "Lost" in (status.reason or "")


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
