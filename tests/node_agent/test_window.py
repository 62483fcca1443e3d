"""SampleWindow and summarize: the reduction of a run of samples."""

from __future__ import annotations

import math
import random
import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resource_agent.api.samples import CollectorState, CollectorStatus, GpuDeviceSample, GpuSample, LMCacheSample, Sample, XidEvent
from resource_agent.api.summary import NodeSummary, Stat
from resource_agent.node_agent.window import SampleWindow, SummaryError, WindowReducer, summarize
from resource_agent.scenarios.generator import generate
from tests.node_agent.agent_samples import GIB, gpu_device, lmcache_instance, pressure, sample, system
from tests.node_agent.test_stats import as_tuple, reference_increase, reference_stat


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


def test_the_window_keeps_older_samples_pickled_and_gives_them_back_the_same() -> None:
    samples = list(generate("ecc-xid-failing", samples=60))  # 8 GPUs with XIDs, 2 LMCache instances
    expected = summarize([item.model_copy(deep=True) for item in samples], "n")
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    held = [item.model_copy(deep=True) for item in samples]
    as_models = tracemalloc.get_traced_memory()[0] - base
    del held
    base, _ = tracemalloc.get_traced_memory()
    window = SampleWindow(60)
    for item in samples:
        window.append(item.model_copy(deep=True))
    in_window = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.reset_peak()
    assert window.summary("n") == expected
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert in_window < as_models / 3  # ~2.6 MiB of models, ~0.6 MiB of pickles
    assert peak - current < as_models / 2  # the summary reads the samples back one at a time, not all at once
    back = window.samples()
    assert back == samples
    assert window.latest() is back[-1] and back[-1].model_fields_set == set()  # the newest as it is, given fields dropped
    odd = samples[0].model_copy(deep=True)
    odd.gpu.devices[0].power_watts = float("nan")  # type: ignore[union-attr]  # NVML never says NaN; if it did, NaN stays NaN
    window.append(odd)
    window.append(samples[1])
    assert math.isnan(window.samples()[-2].gpu.devices[0].power_watts)  # type: ignore[union-attr,arg-type]


def test_summary_of_empty_window_is_a_clear_error() -> None:
    with pytest.raises(SummaryError, match="no samples"):
        SampleWindow().summary("n")
    with pytest.raises(SummaryError, match="system section"):
        summarize([Sample(timestamp=1.0)], "n")
    reducer = WindowReducer()
    with pytest.raises(SummaryError, match="no samples"):
        reducer.summary("n")
    reducer.add(Sample(timestamp=1.0))
    assert reducer.hostname is None
    with pytest.raises(SummaryError, match="system section"):
        reducer.summary("n")
    reducer.add(sample(1))
    assert reducer.hostname == sample(1).system.hostname and reducer.summary("n").window.samples == 2


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


def test_busiest_core_skips_unknown_cores_and_irq_pressure_is_full_only() -> None:
    samples = [sample(step) for step in range(4)]
    samples[1].system.cpu.per_core_utilization_percent = [None, 80.0, None]  # core 0 offline: core 1 keeps its id
    samples[2].system.cpu.per_core_utilization_percent = [None, None]
    summary = summarize(samples, "n")
    busiest = summary.cpu.busiest_core_utilization_percent
    assert busiest is not None and busiest.max == 80.0 and busiest.last == 21.0  # the window skips the all-unknown sample
    assert summary.pressure.irq is not None and summary.pressure.irq.full.stalled_seconds == pytest.approx(0.3)
    assert "some" not in summary.pressure.irq.model_dump()


def test_disk_queue_depth_and_await_are_summarised_like_busy() -> None:
    summary = summarize([sample(step) for step in range(8)], "n")
    disk = summary.disks[0]
    assert disk.queue_depth is not None and (disk.queue_depth.max, disk.queue_depth.min, disk.queue_depth.last) == (1.5, 0.0, 1.5)
    assert disk.await_seconds is not None and disk.await_seconds.mean == pytest.approx(0.002)  # steps without I/O left out


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


def test_gpu_section_with_devices_has_no_reason_whatever_the_collector_statuses() -> None:
    # a recording or scenario has GPU samples but no "gpu" collector status: the section is there, so no reason
    summary = summarize([sample(step) for step in range(3)], "n")
    assert summary.gpu.available and summary.gpu.devices and summary.gpu.reason is None


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


# --- the optimised reduction against a plain one ----------------------------------------------------
# summarize gathers rows with C-level getters, reduces columns lazily and takes stats shortcuts; here
# every number it reports is recomputed the obvious way (attribute by attribute, sorted columns).

maybe = st.one_of(st.none(), st.floats(0, 1e4, allow_nan=False))
maybe_bytes = st.one_of(st.none(), st.integers(0, 100 * GIB))


@st.composite
def device_samples(draw: st.DrawFn, index: int, step: int) -> GpuDeviceSample:
    return gpu_device(
        index,
        step,
        sm_utilization_percent=draw(maybe),
        temperature_celsius=draw(maybe),
        power_watts=draw(maybe),
        memory_used_bytes=draw(maybe_bytes),
        memory_total_bytes=draw(st.one_of(st.none(), st.sampled_from([0, 80 * GIB]))),
        pcie_rx_bytes_per_second=draw(maybe),
        fan_speed_percent=draw(maybe),
        clock_event_reasons=draw(st.lists(st.sampled_from(["SwPowerCap", "HwSlowdown"]), max_size=2, unique=True)),
        violation_seconds=draw(st.dictionaries(st.sampled_from(["power", "thermal"]), st.floats(0, 1e3))),
        ecc_uncorrected_aggregate=draw(st.one_of(st.none(), st.integers(0, 5))),
        ecc_uncorrected_volatile=draw(st.one_of(st.none(), st.integers(0, 5))),
        xid_events=[XidEvent(xid=xid, timestamp=float(step)) for xid in draw(st.lists(st.sampled_from([13, 48, 79]), max_size=2))],
        recovery_action=draw(st.sampled_from([None, "none", "gpu_reset", "node_reboot"])),
    )


@st.composite
def random_samples(draw: st.DrawFn) -> list[Sample]:
    samples = []
    for step in range(draw(st.integers(1, 25))):
        host = system(step, disks=tuple(draw(st.sets(st.sampled_from(["sda", "sdb"])))), nics=("eth0",) if draw(st.booleans()) else ())
        host.cpu.utilization_percent = draw(maybe)
        host.cpu.per_core_utilization_percent = draw(st.lists(st.one_of(st.none(), st.floats(0, 100)), max_size=4))
        host.memory.swap_used_bytes = draw(st.integers(0, GIB))
        host.memory.swap_total_bytes = draw(st.sampled_from([0, 2 * GIB]))
        for disk in host.disks:
            disk.busy_percent, disk.used_bytes = draw(maybe), draw(maybe_bytes)
            disk.queue_depth, disk.await_seconds = draw(maybe), draw(maybe)
        psi = pressure(step) if draw(st.booleans()) else None
        if psi is not None and draw(st.booleans()):
            psi.io = None
        if psi is not None and draw(st.booleans()):
            psi.irq = None
        indexes = draw(st.sets(st.integers(0, 2)))
        gpu = GpuSample(devices=[draw(device_samples(index, step)) for index in sorted(indexes)]) if draw(st.booleans()) else None
        samples.append(Sample(timestamp=float(step), system=host, pressure=psi, gpu=gpu))
    return samples


def expect_stat(actual: Stat | None, column: list) -> None:
    assert as_tuple(actual) == reference_stat(column)


def check_against_reference(samples: list[Sample], summary: NodeSummary) -> None:
    systems = [s.system for s in samples if s.system is not None]
    for field in ("utilization_percent", "iowait_percent", "frequency_mhz", "load1", "context_switches_per_second"):
        expect_stat(getattr(summary.cpu, field), [getattr(s.cpu, field) for s in systems])
    expect_stat(
        summary.cpu.busiest_core_utilization_percent,
        [max((c for c in s.cpu.per_core_utilization_percent if c is not None), default=None) for s in systems],
    )
    memories = [s.memory for s in systems]
    expect_stat(summary.memory.available_bytes, [m.available_bytes for m in memories])
    expect_stat(summary.memory.available_percent, [100.0 * m.available_bytes / m.total_bytes for m in memories])
    if memories[-1].swap_total_bytes:
        expect_stat(summary.memory.swap_used_bytes, [m.swap_used_bytes for m in memories])
    else:
        assert summary.memory.swap_used_bytes is None
    for disk in summary.disks:
        series = [d for s in systems for d in s.disks if d.device == disk.device]
        expect_stat(disk.busy_percent, [d.busy_percent for d in series])
        expect_stat(disk.queue_depth, [d.queue_depth for d in series])
        expect_stat(disk.await_seconds, [d.await_seconds for d in series])
        expect_stat(disk.used_percent, [None if d.used_bytes is None else 100.0 * d.used_bytes / d.total_bytes for d in series])
    assert [n.interface for n in summary.networks] == sorted({n.interface for s in systems for n in s.networks})
    pressures = [s.pressure for s in samples if s.pressure is not None]
    assert summary.pressure.available == bool(pressures)
    for resource in ("cpu", "memory", "io"):
        sections = [getattr(p, resource) for p in pressures if getattr(p, resource) is not None]
        resource_summary = getattr(summary.pressure, resource)
        assert (resource_summary is None) == (not sections)
        for line in ("some", "full"):
            lines = [getattr(section, line) for section in sections if getattr(section, line) is not None]
            line_summary = getattr(resource_summary, line) if resource_summary else None
            assert (line_summary is None) == (not lines)
            if line_summary is not None:
                expect_stat(line_summary.avg10, [entry.avg10 for entry in lines])
                expect_stat(line_summary.avg60, [entry.avg60 for entry in lines])
                assert line_summary.stalled_seconds == reference_increase([entry.total_microseconds for entry in lines]) / 1e6
    irqs = [p.irq.full for p in pressures if p.irq is not None]
    assert (summary.pressure.irq is None) == (not irqs)
    if summary.pressure.irq is not None:
        expect_stat(summary.pressure.irq.full.avg10, [line.avg10 for line in irqs])
        assert summary.pressure.irq.full.stalled_seconds == reference_increase([line.total_microseconds for line in irqs]) / 1e6
    series_by_uuid: dict[str, list[GpuDeviceSample]] = {}
    for s in samples:
        for device in s.gpu.devices if s.gpu else []:
            series_by_uuid.setdefault(device.uuid, []).append(device)
    assert [d.uuid for d in summary.gpu.devices] == [u for u, _ in sorted(series_by_uuid.items(), key=lambda item: item[1][-1].index)]
    for device in summary.gpu.devices:
        series = series_by_uuid[device.uuid]
        for field in ("sm_utilization_percent", "temperature_celsius", "power_watts", "memory_used_bytes", "fan_speed_percent"):
            expect_stat(getattr(device, field), [getattr(d, field) for d in series])
        expect_stat(device.pcie.rx_bytes_per_second, [d.pcie_rx_bytes_per_second for d in series])
        expect_stat(
            device.memory_used_percent,
            [None if d.memory_used_bytes is None or not d.memory_total_bytes else 100.0 * d.memory_used_bytes / d.memory_total_bytes for d in series],
        )
        reasons = sorted({r for d in series for r in d.clock_event_reasons})
        assert device.clock_event_reasons == {r: sum(r in d.clock_event_reasons for d in series) / len(series) for r in reasons}
        policies = sorted({p for d in series for p in d.violation_seconds})
        assert device.violation_seconds == {p: reference_increase([d.violation_seconds.get(p) for d in series]) for p in policies}
        xids = sorted({e.xid for d in series for e in d.xid_events})
        assert device.xid_counts == {str(x): sum(e.xid == x for d in series for e in d.xid_events) for x in xids}
        aggregate = [d.ecc_uncorrected_aggregate for d in series]
        counter = aggregate if any(v is not None for v in aggregate) else [d.ecc_uncorrected_volatile for d in series]
        assert device.ecc.uncorrected_increase == int(reference_increase(counter))
        actions = [d.recovery_action for d in series]
        real = [a for a in actions if a not in (None, "none")]
        assert device.recovery_action == (real[-1] if real else next((a for a in reversed(actions) if a is not None), None))


@settings(max_examples=60, deadline=None)
@given(random_samples())
def test_summary_equals_a_plain_reduction_on_random_windows(samples: list[Sample]) -> None:
    check_against_reference(samples, summarize(samples, "n"))


def test_summary_equals_a_plain_reduction_on_a_long_random_window() -> None:
    # longer than stats.SELECT_FROM, so every column takes the selection path for its p95
    rng = random.Random(5)
    samples = []
    for step in range(2_500):
        s = sample(step, gpus=2, xids={1: [79]} if step % 997 == 0 else None)
        s.system.cpu.utilization_percent = rng.uniform(0, 100)
        for device in s.gpu.devices:
            device.sm_utilization_percent = None if rng.random() < 0.01 else round(rng.gauss(70, 20), 3)
            device.power_watts = rng.choice([300.0, 350.0, 700.0])  # many ties
            device.memory_used_bytes = rng.randint(0, 80 * GIB)
        samples.append(s)
    check_against_reference(samples, summarize(samples, "n"))


# --- the reducer fed one sample at a time -----------------------------------------------------------


def fed(samples: list[Sample]) -> WindowReducer:
    reducer = WindowReducer()
    for s in samples:
        reducer.add(s)
    return reducer


@settings(max_examples=40, deadline=None)
@given(random_samples())
def test_reducer_summary_after_every_sample_equals_summarize_of_that_prefix(samples: list[Sample]) -> None:
    reducer = WindowReducer()
    for count, s in enumerate(samples, start=1):
        reducer.add(s)
        summary = reducer.summary("n", "1.0")  # asking does not consume: more samples may follow
        assert summary == summarize(samples[:count], "n", "1.0")
    check_against_reference(samples, reducer.summary("n"))


def test_reducer_on_a_long_window_with_lmcache_is_bit_identical_to_summarize() -> None:
    rng = random.Random(3)
    samples = []
    for step in range(2_500):
        s = sample(step, gpus=2, xids={0: [48, 79]} if step % 613 == 0 else None)
        s.system.cpu.utilization_percent = rng.uniform(0, 100)
        for device in s.gpu.devices:
            device.power_watts = None if rng.random() < 0.02 else rng.gauss(400, 90)
            device.violation_seconds = {"power": step * 0.5} if step % 5 else {"power": step * 0.5, "thermal": step * 0.1}
        lm = lmcache_instance(step, requested_tokens_total=float(step * 100 if step < 1_800 else (step - 1_800) * 100))
        s.lmcache = LMCacheSample(instances=[lm])
        samples.append(s)
    summary = fed(samples).summary("n", "1.0")
    assert summary.model_dump_json() == summarize(samples, "n", "1.0").model_dump_json()  # to the last bit
    check_against_reference(samples, summary)
    assert summary.gpu.devices[0].violation_seconds == {"power": 2_499 * 0.5, "thermal": pytest.approx(2_495 * 0.1)}


def test_reducer_keeps_columns_not_samples() -> None:
    samples = [sample(step, gpus=8) for step in range(300)]
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    reducer = WindowReducer()
    for step in range(300):
        reducer.add(sample(step, gpus=8))  # each sample dies when the next is built
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert reducer.summary("n") == summarize(samples, "n")
    tracemalloc.start()
    start, _ = tracemalloc.get_traced_memory()
    kept = [sample(step, gpus=8) for step in range(300)]
    list_size = tracemalloc.get_traced_memory()[0] - start
    tracemalloc.stop()
    assert len(kept) == 300
    assert held - before < list_size / 3, (held - before, list_size)


def test_busy_sm_clock_and_power_limits_in_the_gpu_summary() -> None:
    from resource_agent.node_agent.gpu_summary import BUSY_SM_UTILIZATION_PERCENT

    def run(rows: list[tuple[float, float]]) -> list:
        samples = []
        for step, (utilization, clock) in enumerate(rows):
            one = sample(step)
            device = one.gpu.devices[0]  # type: ignore[union-attr]
            one.gpu.devices[0] = device.model_copy(  # type: ignore[union-attr]
                update={"sm_utilization_percent": utilization, "sm_clock_mhz": clock, "power_default_limit_watts": 700.0, "power_limit_max_watts": 750.0}
            )
            samples.append(one)
        return summarize(samples, "n").gpu.devices

    (gpu,) = run([(90.0, 1500.0), (BUSY_SM_UTILIZATION_PERCENT, 1700.0), (5.0, 345.0), (99.0, 1980.0)])
    assert gpu.sm_clock_busy_mhz is not None and (gpu.sm_clock_busy_mhz.min, gpu.sm_clock_busy_mhz.max) == (1500.0, 1980.0)
    assert gpu.sm_clock_busy_mhz.mean == (1500.0 + 1700.0 + 1980.0) / 3 and gpu.sm_clock_mhz.min == 345.0  # type: ignore[union-attr]
    assert (gpu.power_default_limit_watts, gpu.power_limit_max_watts) == (700.0, 750.0)
    (idle,) = run([(0.0, 345.0), (10.0, 400.0)])
    assert idle.sm_clock_busy_mhz is None
