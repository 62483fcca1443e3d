from resource_agent.analysis.engine import analyze
from resource_agent.analysis.policy import Policy
from resource_agent.analysis.rules import gpu as rules
from resource_agent.api.findings import ActionType, Severity
from resource_agent.node_agent.window import summarize
from resource_agent.scenarios import generate
from tests.analysis.analysis_builders import H100_MEMORY, fired, gpu, node, st

POLICY = Policy()
LONG_IDLE = 361  # samples at 5 s: 30 minutes, the rule's warning horizon

IDLE = dict(
    sm_utilization_percent=st(0.5, 1, 2, 0),
    memory_used_percent=st(85),
    pcie=gpu(0).pcie.model_copy(update={"link_generation": 1}),
)


def test_idle_gpu_holding_memory_fires_with_reclaim_action():
    findings = rules.idle_gpu_holding_memory(node(gpus=[gpu(0), gpu(1, **IDLE)], samples=LONG_IDLE), POLICY)
    assert fired(findings) == [("gpu-idle-holding-memory", "gpu1")]
    finding = findings[0]
    assert finding.action.type is ActionType.RECLAIM_GPU_MEMORY
    assert finding.action.parameters == {"gpuIndex": 1, "memoryBytes": int(0.85 * H100_MEMORY)}  # 85% of the GPU's memory
    assert finding.severity is Severity.WARNING
    assert {e.statistic for e in finding.evidence} == {"mean", "p95"}
    unmasked = {s.unmasked for s in finding.sensitive}
    assert {"gpu-node-1", gpu(1).uuid, "vllm", "pod-uid-1"} <= unmasked
    assert all(s.masked != s.unmasked and "gpu-node-1" not in s.masked for s in finding.sensitive)


def test_idle_gpu_holding_memory_is_info_over_a_short_window():
    """A replica idles through every traffic lull: five idle minutes are a hint, not a warning."""
    [finding] = rules.idle_gpu_holding_memory(node(gpus=[gpu(1, **IDLE)], samples=60), POLICY)
    assert finding.severity is Severity.INFO


def test_idle_gpu_with_a_burst_or_little_memory_does_not_fire():
    burst = gpu(1, **{**IDLE, "sm_utilization_percent": st(3, 40, 60, 0)})
    empty = gpu(1, **{**IDLE, "memory_used_percent": st(2)})
    assert rules.idle_gpu_holding_memory(node(gpus=[burst]), POLICY) == []
    assert rules.idle_gpu_holding_memory(node(gpus=[empty]), POLICY) == []


def test_underutilized_fires_for_light_work_but_not_for_idle_holding_or_free_gpus():
    light = gpu(0, sm_utilization_percent=st(18, 35, 40, 5))
    idle = gpu(1, **IDLE)
    free = gpu(2, sm_utilization_percent=st(0), memory_used_percent=st(0.6), processes=[])
    assert fired(rules.underutilized_gpu(node(gpus=[light, idle, free]), POLICY)) == [("gpu-underutilized", "gpu0")]
    assert rules.underutilized_gpu(node(), POLICY) == []


def test_underutilized_reports_idle_gpus_when_the_idle_rule_is_disabled():
    policy = Policy(disabled_rules=["gpu-idle-holding-memory"])
    assert fired(rules.underutilized_gpu(node(gpus=[gpu(1, **IDLE)]), policy)) == [("gpu-underutilized", "gpu1")]


def test_gpu_memory_pressure_warning_and_critical():
    warm = gpu(0, memory_used_percent=st(90, 96.5, 97.5, 80, 97))  # grew from 80% to 97% in the window
    full = gpu(1, memory_used_percent=st(93, 98.5, 99.6, 85, 99.4))
    findings = {f.target.name: f for f in rules.gpu_memory_pressure(node(gpus=[warm, full]), POLICY)}
    assert findings["gpu0"].severity is Severity.WARNING
    assert findings["gpu1"].severity is Severity.CRITICAL
    assert findings["gpu1"].action.parameters == {"gpuIndex": 1, "targetPercent": 90.0}
    assert rules.gpu_memory_pressure(node(), POLICY) == []


def test_thermal_throttling_reads_clock_reasons_and_violation_time():
    by_reason = gpu(0, clock_event_reasons={"SwThermalSlowdown": 0.5}, temperature_celsius=st(88))
    by_violation = gpu(1, violation_seconds={"thermal": 60.0})  # 60 s of a 295 s window
    hardware = gpu(2, clock_event_reasons={"HwThermalSlowdown": 0.3})
    hot_but_unthrottled = gpu(3, temperature_celsius=st(86, 86.5, 87, 85))
    findings = {f.target.name: f for f in rules.thermal_throttling(node(gpus=[by_reason, by_violation, hardware, hot_but_unthrottled]), POLICY)}
    assert sorted(findings) == ["gpu0", "gpu1", "gpu2"]
    assert findings["gpu0"].severity is Severity.WARNING
    assert findings["gpu2"].severity is Severity.CRITICAL
    assert findings["gpu0"].action.type is ActionType.CHECK_COOLING


def test_power_capped_by_share_and_brake():
    capped = gpu(0, clock_event_reasons={"SwPowerCap": 0.8}, power_limit_watts=450, power_watts=st(447))
    braked = gpu(1, clock_event_reasons={"HwPowerBrakeSlowdown": 0.1})
    rare = gpu(2, clock_event_reasons={"SwPowerCap": 0.1})
    findings = {f.target.name: f for f in rules.power_capped(node(gpus=[capped, braked, rare]), POLICY)}
    assert sorted(findings) == ["gpu0", "gpu1"]
    assert findings["gpu0"].action.parameters == {"gpuIndex": 0, "currentLimitWatts": 450.0}
    assert findings["gpu0"].severity is Severity.WARNING
    assert findings["gpu1"].severity is Severity.CRITICAL


def test_clocks_low_unexplained_only_when_busy_and_without_a_reason():
    slow = gpu(0, sm_clock_mhz=st(1100), sm_clock_busy_mhz=st(1100), clock_event_reasons={"ApplicationsClocksSetting": 1.0})
    explained = gpu(1, sm_clock_mhz=st(1100), sm_clock_busy_mhz=st(1100), clock_event_reasons={"SwPowerCap": 0.9})
    idle = gpu(2, sm_clock_mhz=st(345), sm_utilization_percent=st(1))
    findings = rules.clocks_low_unexplained(node(gpus=[slow, explained, idle]), POLICY)
    assert fired(findings) == [("gpu-clocks-low-unexplained", "gpu0")]
    assert "application clocks" in findings[0].summary
    assert findings[0].action.type is ActionType.RESET_APPLICATION_CLOCKS


def test_temperature_near_slowdown_is_an_early_warning_only():
    near = gpu(0, temperature_celsius=st(83, 84, 85, 81))
    near_shutdown = gpu(1, temperature_celsius=st(86, 88, 90, 84))
    throttled = gpu(2, temperature_celsius=st(86, 88, 89, 84), clock_event_reasons={"SwThermalSlowdown": 0.5})
    findings = {f.target.name: f for f in rules.temperature_near_slowdown(node(gpus=[near, near_shutdown, throttled, gpu(3)]), POLICY)}
    assert sorted(findings) == ["gpu0", "gpu1"]
    assert findings["gpu0"].severity is Severity.WARNING
    assert findings["gpu1"].severity is Severity.CRITICAL


def test_imbalance_compares_active_gpus_only():
    busy, light, idle = gpu(0, sm_utilization_percent=st(92)), gpu(1, sm_utilization_percent=st(30)), gpu(2, **IDLE)
    findings = rules.gpu_imbalance(node(gpus=[busy, light, idle]), POLICY)
    assert fired(findings) == [("gpu-imbalance", "gpu-node-1")]
    assert findings[0].action.parameters == {"fromGpuIndex": 0, "toGpuIndex": 1}
    assert rules.gpu_imbalance(node(gpus=[busy, idle]), POLICY) == []
    assert rules.gpu_imbalance(node(), POLICY) == []


def test_threshold_overrides_change_what_fires():
    light = gpu(0, sm_utilization_percent=st(40, 55, 60, 20))
    assert rules.underutilized_gpu(node(gpus=[light]), POLICY) == []
    policy = Policy.from_mapping({"rules": {"gpu-underutilized": {"thresholds": {"sm_utilization_mean_max": 45}}}})
    assert fired(rules.underutilized_gpu(node(gpus=[light]), policy)) == [("gpu-underutilized", "gpu0")]


def test_healthy_node_has_no_gpu_findings():
    assert analyze(node()).findings == []


def test_an_idle_replicas_gpus_are_left_to_the_serving_rule_unless_it_is_disabled():
    """One fault, one recommendation: GPUs held by an idle replica are the replica's finding."""
    summary = summarize(list(generate("serving-idle-replica", samples=LONG_IDLE, interval_seconds=5.0)), "gpu-node-1")
    assert rules.idle_gpu_holding_memory(summary, POLICY) == []
    assert [f.rule for f in analyze(summary).findings if f.target.kind.value != "node"].count("serving-idle-replica") == 1
    alone = Policy(disabled_rules=["serving-idle-replica"])
    assert fired(rules.idle_gpu_holding_memory(summary, alone)) == [("gpu-idle-holding-memory", "gpu6"), ("gpu-idle-holding-memory", "gpu7")]
