from resource_agent.analysis.correlate import correlate, merge
from resource_agent.analysis.engine import analyze
from resource_agent.api.findings import (
    ACTION_STRENGTH_ORDER,
    Action,
    ActionType,
    Category,
    Evidence,
    Finding,
    Severity,
    Target,
    TargetKind,
    action_strength,
)
from resource_agent.api.summary import CpuSummary, EccSummary, PressureSummary
from tests.analysis.analysis_builders import gpu, node, psi, st


def finding(rule: str, action: ActionType, severity: Severity = Severity.WARNING, category: Category = Category.HARDWARE, target: str = "gpu5") -> Finding:
    kind = TargetKind.GPU if target.startswith("gpu") else TargetKind.NODE
    parameters = {"gpuIndex": 5} if action in (ActionType.RESET_GPU, ActionType.RUN_ECC_WORKFLOW, ActionType.REVIEW_POWER_LIMIT) else {}
    return Finding(
        rule=rule,
        category=category,
        severity=severity,
        node_name="n1",
        target=Target(kind=kind, name=target, gpu_index=5 if kind is TargetKind.GPU else None),
        summary=f"{rule} fired",
        evidence=[Evidence(metric=f"{rule}.metric", statistic="last", observed=1, threshold=1)],
        action=Action(type=action, parameters=parameters),
        expected_impact="x",
    )


def test_every_action_has_one_strength_and_drain_is_strongest():
    assert sorted(ACTION_STRENGTH_ORDER) == sorted(ActionType) and len(set(ACTION_STRENGTH_ORDER)) == len(ActionType)
    order = [ActionType.DRAIN_NODE, ActionType.RESET_GPU, ActionType.RESTART_WORKLOAD, ActionType.SET_LMCACHE_CONFIG, ActionType.INVESTIGATE]
    assert [action_strength(a) for a in order] == sorted((action_strength(a) for a in order), reverse=True)


def test_one_failing_gpu_is_one_finding_with_the_strongest_action_and_every_rules_evidence():
    """The demo's failing GPU: four rules, three different actions, one problem."""
    group = [
        finding("gpu-recovery-action", ActionType.RESET_GPU, Severity.CRITICAL),
        finding("gpu-xid-ecc", ActionType.RUN_ECC_WORKFLOW),
        finding("gpu-row-remap-pending", ActionType.RUN_ECC_WORKFLOW),
        finding("gpu-ecc-uncorrectable", ActionType.DRAIN_NODE, Severity.WARNING),
    ]
    [merged] = correlate(group)
    assert merged.rule == "gpu-ecc-uncorrectable" and merged.action.type is ActionType.DRAIN_NODE
    assert merged.severity is Severity.CRITICAL  # the group's worst
    assert sorted(merged.rules()) == sorted(f.rule for f in group)
    assert {item.rule: item.action for item in merged.correlated}["gpu-recovery-action"] is ActionType.RESET_GPU
    assert all(item.evidence[0].metric == f"{item.rule}.metric" for item in merged.correlated)
    assert "gpu-recovery-action" in merged.summary


def test_different_targets_and_unrelated_rules_stay_apart():
    other_gpu = finding("gpu-xid-ecc", ActionType.RUN_ECC_WORKFLOW, target="gpu6")
    efficiency = finding("gpu-power-capped", ActionType.REVIEW_POWER_LIMIT, category=Category.GPU)
    alone = [finding("gpu-xid-ecc", ActionType.RUN_ECC_WORKFLOW), other_gpu, efficiency]
    assert correlate(alone) == alone
    assert merge([efficiency]) is efficiency


def test_cpu_saturation_and_starved_gpus_on_a_node_are_one_finding():
    starved = [gpu(0, sm_utilization_percent=st(30)), gpu(1, sm_utilization_percent=st(40))]
    summary = node(gpus=starved, cpu=CpuSummary(utilization_percent=st(96), iowait_percent=st(0), load1=st(300)), pressure=PressureSummary(available=True, cpu=psi(45)))
    findings = [f for f in analyze(summary).findings if f.category is Category.CPU]
    assert [f.rule for f in findings] == ["host-cpu-starving-gpus"]
    assert findings[0].rules() == ["host-cpu-starving-gpus", "host-cpu-saturated"]


def test_the_engine_correlates_and_scores_every_symptom():
    broken = node(gpus=[gpu(0, ecc=EccSummary(uncorrected_increase=2, remapped_rows_pending=True), recovery_action="gpu_reset"), gpu(1)])
    analysis = analyze(broken)
    on_gpu0 = [f for f in analysis.findings if f.target.name == "gpu0"]
    assert len(on_gpu0) == 1 and len(on_gpu0[0].rules()) >= 2
    uncorrelated = sum(1 for f in on_gpu0 for _ in f.rules())
    assert analysis.scores.health <= 100 - 25 - 25 * (uncorrelated > 1)
