"""A healthy 8x H100 SXM node serving an LLM raises no GPU finding; each rule still catches
the real fault. One test on the normal state and one on the fault, per false alarm."""

from resource_agent.analysis.engine import analyze
from resource_agent.analysis.policy import Policy
from resource_agent.analysis.rules import gpu as rules
from resource_agent.analysis.rules import gpu_health
from resource_agent.api.findings import Severity
from resource_agent.api.samples import GpuProcess
from resource_agent.api.summary import PcieSummary
from tests.analysis.analysis_builders import H100_MEMORY, fired, gpu, node, st

POLICY = Policy()
END = 1295.0  # the builder's window: 1000-1295 s


def serving(index: int, utilization: float = 0.92, **changes) -> object:
    """An H100 SXM (700 W default limit, slowdown 89°C, shutdown 92°C: nvidia-smi -q) under a
    vLLM engine that reserved `utilization` of its memory an hour ago and holds it steadily."""
    used = utilization * 100 + 0.6  # the reservation plus the CUDA context
    values = dict(
        slowdown_temperature_celsius=89,
        shutdown_temperature_celsius=92,
        temperature_celsius=st(71, 76, 78, 64),
        power_watts=st(655, 699, 700, 540),
        power_limit_watts=700,
        power_default_limit_watts=700,
        power_limit_max_watts=700,
        clock_event_reasons={"SwPowerCap": 0.7, "GpuIdle": 0.02},  # GPU Boost at the limit under full load
        violation_seconds={"power": 200.0},
        sm_utilization_percent=st(91, 99, 100, 35, 96),
        sm_clock_mhz=st(1790, 1980, 1980, 345),  # all samples: idle moments pull the mean down
        sm_clock_busy_mhz=st(1840, 1980, 1980, 1650),
        memory_used_percent=st(used, used, used + 0.05, used - 0.05),
        memory_used_bytes=st(used / 100 * H100_MEMORY),
        processes=[GpuProcess(pid=4000 + index, used_memory_bytes=int(used / 100 * H100_MEMORY), name="vllm",
                              pod_uid=f"pod-uid-{index}", started_at=END - 3600)],
    )
    values.update(changes)
    return gpu(index, **values)


def busy_node(*gpus) -> object:
    devices = {device.index: device for device in gpus}
    return node(gpus=[devices.get(i, serving(i, utilization=(0.90, 0.92, 0.95)[i % 3])) for i in range(8)])


def test_a_healthy_busy_serving_node_raises_no_finding():
    # a GPU idle at its last sample has its PCIe link downshifted to gen1, which is power saving
    momentary_pause = serving(6, sm_utilization_percent=st(60, 99, 100, 0, 0),
                              pcie=PcieSummary(link_generation=1, link_generation_max=5, link_width=16, link_width_max=16))
    assert analyze(busy_node(momentary_pause)).findings == []


# --- gpu-memory-pressure: vLLM's reservation is not pressure ----------------------------------


def test_memory_reserved_and_held_by_vllm_is_not_pressure():
    for utilization in (0.90, 0.92, 0.95, 0.98):
        summary = node(gpus=[serving(0, utilization=utilization)])
        assert rules.gpu_memory_pressure(summary, POLICY) == [], utilization


def test_memory_growing_to_the_limit_is_pressure():
    growing = serving(0, memory_used_percent=st(93, 99.2, 99.5, 80, 99.4))
    findings = rules.gpu_memory_pressure(node(gpus=[growing]), POLICY)
    assert fired(findings) == [("gpu-memory-pressure", "gpu0")]
    assert findings[0].severity is Severity.CRITICAL
    assert findings[0].evidence[0].statistic == "growth"


def test_memory_growing_while_the_model_loads_is_not_pressure():
    loading = serving(0, memory_used_percent=st(60, 97.5, 97.6, 2, 97.6), processes=[
        GpuProcess(pid=4000, used_memory_bytes=int(0.97 * H100_MEMORY), name="vllm", started_at=END - 120)])
    assert rules.gpu_memory_pressure(node(gpus=[loading]), POLICY) == []


# --- gpu-clocks-low-unexplained: busy samples only -----------------------------------------------


def test_clocks_lowered_by_idle_moments_are_not_low():
    bursty = serving(0, clock_event_reasons={}, sm_clock_mhz=st(1100, 1980, 1980, 345), sm_clock_busy_mhz=st(1930, 1980, 1980, 1850))
    no_busy_clock = serving(1, clock_event_reasons={}, sm_clock_mhz=st(1100, 1980, 1980, 345), sm_clock_busy_mhz=None)
    idle_reason = serving(2, clock_event_reasons={"GpuIdle": 0.3}, sm_clock_busy_mhz=st(1200))
    assert rules.clocks_low_unexplained(node(gpus=[bursty, no_busy_clock, idle_reason]), POLICY) == []


def test_busy_clocks_locked_low_are_low():
    locked = serving(0, clock_event_reasons={}, sm_clock_busy_mhz=st(1200, 1210, 1215, 1190))
    findings = rules.clocks_low_unexplained(node(gpus=[locked]), POLICY)
    assert fired(findings) == [("gpu-clocks-low-unexplained", "gpu0")]
    assert findings[0].evidence[0].metric == "gpu.sm_clock_busy_mhz"


# --- gpu-power-capped: GPU Boost at the default limit is not a misconfiguration ----------------


def test_full_load_at_the_default_power_limit_is_gpu_boost():
    at_default = serving(0, clock_event_reasons={"SwPowerCap": 0.95}, violation_seconds={"power": 280.0})
    assert rules.power_capped(node(gpus=[at_default]), POLICY) == []


def test_a_limit_lowered_below_the_default_is_capped():
    lowered = serving(0, power_limit_watts=450, power_watts=st(448, 450, 450, 400), clock_event_reasons={"SwPowerCap": 0.9},
                      sm_clock_busy_mhz=st(1400))
    findings = rules.power_capped(node(gpus=[lowered]), POLICY)
    assert [(f.rule, f.severity) for f in findings] == [("gpu-power-capped", Severity.WARNING)]
    assert "700 W default" in findings[0].summary
    assert findings[0].action.parameters == {"gpuIndex": 0, "currentLimitWatts": 450.0}


def test_busy_clocks_starved_by_the_cap_at_the_default_limit_warn():
    starved = serving(0, clock_event_reasons={"SwPowerCap": 0.9}, sm_clock_busy_mhz=st(1000, 1100, 1150, 900))
    findings = rules.power_capped(node(gpus=[starved]), POLICY)
    assert [(f.rule, f.severity) for f in findings] == [("gpu-power-capped", Severity.WARNING)]


def test_a_cap_without_a_known_default_limit_is_information_only():
    unknown = serving(0, power_default_limit_watts=None, clock_event_reasons={"SwPowerCap": 0.9})
    assert [f.severity for f in rules.power_capped(node(gpus=[unknown]), POLICY)] == [Severity.INFO]


def test_a_small_limit_trim_within_the_threshold_is_not_a_misconfiguration():
    trimmed = serving(0, power_limit_watts=690, clock_event_reasons={"SwPowerCap": 0.9})
    assert rules.power_capped(node(gpus=[trimmed]), POLICY) == []


# --- gpu-idle-holding-memory: a model still loading is not idle -----------------------------


IDLE = dict(sm_utilization_percent=st(0.5, 1, 2, 0), clock_event_reasons={}, sm_clock_busy_mhz=None)


def test_a_model_still_loading_is_not_idle_holding_memory():
    rising = serving(0, **IDLE, memory_used_percent=st(55, 92, 92.6, 3, 92.6))
    young = serving(1, **IDLE, processes=[GpuProcess(pid=4001, used_memory_bytes=int(0.9 * H100_MEMORY), name="vllm",
                                                    started_at=END - 240)])
    summary = node(gpus=[rising, young])
    assert rules.idle_gpu_holding_memory(summary, POLICY) == []
    assert rules.underutilized_gpu(summary, POLICY) == []


def test_a_loaded_model_nobody_uses_is_idle_holding_memory():
    loaded_long_ago = serving(0, **IDLE)
    assert fired(rules.idle_gpu_holding_memory(node(gpus=[loaded_long_ago]), POLICY)) == [("gpu-idle-holding-memory", "gpu0")]


# --- gpu-pcie-degraded: an idle downshift is power saving ------------------------------------


def test_pcie_generation_dropped_at_an_idle_last_sample_is_not_degraded():
    paused = serving(0, sm_utilization_percent=st(70, 99, 100, 0, 1),
                     pcie=PcieSummary(link_generation=1, link_generation_max=5, link_width=16, link_width_max=16))
    assert gpu_health.pcie_degraded(node(gpus=[paused]), POLICY) == []


def test_pcie_link_slow_under_load_is_degraded():
    riser = serving(0, pcie=PcieSummary(link_generation=3, link_generation_max=5, link_width=16, link_width_max=16))
    narrow = serving(1, pcie=PcieSummary(link_generation=5, link_generation_max=5, link_width=8, link_width_max=16))
    assert fired(gpu_health.pcie_degraded(node(gpus=[riser, narrow]), POLICY)) == [
        ("gpu-pcie-degraded", "gpu0"),
        ("gpu-pcie-degraded", "gpu1"),
    ]


# --- thermal: a warm busy H100 is not near slowdown ---------------------------------------------


def test_a_warm_busy_h100_is_not_near_slowdown_but_a_hot_one_is():
    warm = serving(0, temperature_celsius=st(78, 82, 83, 70))  # 89°C slowdown: 6°C of headroom at p95
    hot = serving(1, temperature_celsius=st(84, 86, 87, 80))
    findings = rules.temperature_near_slowdown(node(gpus=[warm, hot]), POLICY)
    assert fired(findings) == [("gpu-temperature-near-slowdown", "gpu1")]
    assert rules.thermal_throttling(node(gpus=[warm, hot]), POLICY) == []
