"""SampleWindow and summarize: the reduction of a run of samples."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from tests.node_agent.agent_samples import GIB, gpu_device, lmcache_instance, sample, system
from hypothesis import given
from hypothesis import strategies as st

from resource_agent.api.samples import CollectorState, CollectorStatus, GpuSample, LMCacheSample, Sample
from resource_agent.node_agent.window import SampleWindow, SummaryError, summarize


@given(capacity=st.integers(min_value=1, max_value=50), count=st.integers(min_value=0, max_value=120))
def test_window_never_exceeds_capacity_and_keeps_the_newest(capacity: int, count: int) -> None:
    window = SampleWindow(capacity)
    for step in range(count):
        window.append(Sample(timestamp=float(step)))
    assert len(window) == min(capacity, count)
    if count:
        assert window.latest() is not None and window.latest().timestamp == count - 1
        assert window.samples()[0].timestamp == max(0, count - capacity)


def test_window_rejects_zero_capacity() -> None:
    with pytest.raises(ValueError, match="capacity"):
        SampleWindow(0)


def test_window_memory_stays_flat_over_many_appends() -> None:
    window = SampleWindow(60)
    tracemalloc.start()
    for step in range(200):
        window.append(sample(step))
    before, _ = tracemalloc.get_traced_memory()
    for step in range(200, 1200):
        window.append(sample(step))
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(window) == 60
    assert after - before < 200_000  # a thousand more samples, same footprint


def test_summary_of_empty_window_is_a_clear_error() -> None:
    with pytest.raises(SummaryError, match="no samples"):
        SampleWindow().summary("n")
    with pytest.raises(SummaryError, match="system section"):
        summarize([Sample(timestamp=1.0)], "n")


def test_summary_window_inventory_and_host_sections() -> None:
    samples = [sample(step) for step in range(10)]
    summary = summarize(samples, "gpu-node-1", "9.9.9")
    assert summary.node_name == "gpu-node-1" and summary.agent_version == "9.9.9"
    assert summary.window.samples == 10 and summary.window.interval_seconds == 5.0
    assert summary.window.end - summary.window.start == 45.0
    assert summary.inventory.cpu_cores == 2 and summary.inventory.memory_total_bytes == 64 * GIB
    assert [gpu.uuid for gpu in summary.inventory.gpus] == ["GPU-0000"]
    assert summary.cpu.utilization_percent is not None and summary.cpu.utilization_percent.last == 9.0
    assert summary.cpu.busiest_core_utilization_percent is not None
    assert summary.cpu.busiest_core_utilization_percent.max == 63.0  # step 9: 9*7
    assert summary.memory.available_percent.min == 50.0
    assert summary.pressure.available and summary.pressure.memory and summary.pressure.memory.full
    assert summary.pressure.cpu is not None and summary.pressure.cpu.some.stalled_seconds == pytest.approx(0.9)
    assert [d.device for d in summary.disks] == ["nvme0n1"] and summary.disks[0].used_percent.last == 50.0


def test_disks_and_nics_that_appear_or_vanish_mid_window() -> None:
    samples = []
    for step in range(6):
        s = sample(step)
        s.system = system(step, disks=("sda",) if step < 3 else ("sda", "sdb"), nics=("eth0",) if step < 4 else ())
        samples.append(s)
    summary = summarize(samples, "n")
    assert [d.device for d in summary.disks] == ["sda", "sdb"]
    assert summary.disks[1].busy_percent is not None and summary.disks[1].busy_percent.last == 5.0
    assert [n.interface for n in summary.networks] == ["eth0"]


def test_gpu_reasons_share_violations_increase_and_xids_counted_over_window() -> None:
    samples = [sample(step, xids={0: [79]} if step in (2, 5) else ({0: [13, 79]} if step == 7 else None)) for step in range(8)]
    device = summarize(samples, "n").gpu.devices[0]
    assert device.clock_event_reasons == {"SwPowerCap": 0.25}  # steps 0 and 4 of 8
    assert device.violation_seconds == {"power": 3.5}  # 0.0 -> 3.5 cumulative
    assert device.xid_counts == {"13": 1, "79": 3}
    assert device.memory_used_percent is not None and device.memory_used_percent.mean == 50.0


def test_gpu_that_vanishes_mid_window_is_kept_and_recovery_action_sticks() -> None:
    samples = []
    for step in range(4):
        devices = [gpu_device(0, step, recovery_action="gpu reset" if step == 1 else "none")]
        if step < 2:
            devices.append(gpu_device(1, step, ecc_uncorrected_aggregate=step * 2))
        samples.append(Sample(timestamp=float(step), system=system(step), gpu=GpuSample(devices=devices)))
    summary = summarize(samples, "n")
    assert [d.index for d in summary.gpu.devices] == [0, 1]
    assert summary.gpu.devices[0].recovery_action == "gpu reset"
    assert summary.gpu.devices[1].ecc.uncorrected_increase == 2
    assert [g.index for g in summary.inventory.gpus] == [0]  # inventory is the last sample's


def test_gpu_section_unavailable_carries_the_collector_reason() -> None:
    status = CollectorStatus(name="gpu", state=CollectorState.UNAVAILABLE, reason="NVML not available: no driver")
    summary = summarize([Sample(timestamp=1.0, system=system(1), collectors=[status])], "n")
    assert not summary.gpu.available and summary.gpu.reason == "NVML not available: no driver"
    assert not summary.pressure.available and summary.pressure.reason == "pressure collector not enabled"


def test_lmcache_rates_over_the_window_with_a_restart() -> None:
    steps = [
        lmcache_instance(0, requested_tokens_total=1000.0, hit_tokens_total=100.0),
        lmcache_instance(1, requested_tokens_total=2000.0, hit_tokens_total=600.0),
        lmcache_instance(2, requested_tokens_total=500.0, hit_tokens_total=100.0),  # restarted
    ]
    samples = [Sample(timestamp=float(i), system=system(i), lmcache=LMCacheSample(instances=[inst])) for i, inst in enumerate(steps)]
    instance = summarize(samples, "n").lmcache.instances[0]
    assert instance.requested_tokens == 1500.0 and instance.hit_tokens == 600.0
    assert instance.token_hit_rate == pytest.approx(0.4)
    assert instance.lookup_hit_rate == pytest.approx(0.25)
    assert instance.saved_prefill_tokens == 600.0 and instance.saved_kv_bytes == 600.0 * 131072
    assert instance.local_cpu_usage_percent is not None and instance.local_cpu_usage_percent.last == 25.0


def test_lmcache_hit_rate_is_none_when_nothing_requested() -> None:
    idle = [lmcache_instance(0, requested_tokens_total=7.0, kv_bytes_per_token=None) for _ in range(3)]
    samples = [Sample(timestamp=float(i), system=system(i), lmcache=LMCacheSample(instances=[inst])) for i, inst in enumerate(idle)]
    instance = summarize(samples, "n").lmcache.instances[0]
    assert instance.token_hit_rate is None and instance.saved_kv_bytes is None


@pytest.mark.slow
def test_summarize_a_day_of_an_eight_gpu_node_quickly() -> None:
    samples = [sample(step, gpus=8) for step in range(17_280)]
    started = time.process_time()
    summary = summarize(samples, "n")
    elapsed = time.process_time() - started
    assert summary.window.samples == 17_280 and len(summary.gpu.devices) == 8
    assert elapsed < 3.0, f"summarize took {elapsed:.2f} s of CPU"
