"""Cross-node findings (pure)."""

from __future__ import annotations

from resource_agent.analysis.catalog import RULES
from resource_agent.analysis.engine import analyze
from resource_agent.analysis.policy import Policy
from resource_agent.api.findings import ActionType
from resource_agent.node_agent.window import summarize
from resource_agent.operator.fleet import (
    FRAGMENTED_RULE,
    WORSE_RULE,
    FleetThresholds,
    FleetTracker,
    fragmentation_findings,
    idle_gpus,
)
from resource_agent.scenarios import generate


def node(name: str, scenario: str, gpus: int = 8):
    return summarize(list(generate(scenario, seed=0, samples=12, gpus=gpus)), name)


def test_idle_gpus_counts_only_gpus_without_work_or_memory() -> None:
    busy = node("busy", "healthy-busy")
    assert idle_gpus(busy, FleetThresholds()) == 0
    holding = node("holding", "idle-gpu-holding-memory")  # idle SM, but memory held: not free
    assert idle_gpus(holding, FleetThresholds()) < len(holding.gpu.devices)


def test_fragmentation_needs_idle_gpus_spread_over_nodes() -> None:
    a, b = node("a", "healthy-busy"), node("b", "healthy-busy")
    for gpu in a.gpu.devices[:1] + b.gpu.devices[:2]:  # 1 idle GPU on a, 2 on b
        gpu.sm_utilization_percent = gpu.sm_utilization_percent.model_copy(update={"max": 0.0})
        gpu.memory_used_percent = gpu.memory_used_percent.model_copy(update={"max": 0.0})
    findings = fragmentation_findings({"a": a, "b": b})
    assert [f.rule for f in findings] == [FRAGMENTED_RULE]
    assert findings[0].action.type is ActionType.CONSOLIDATE_GPU_WORKLOADS
    assert findings[0].action.parameters == {"gpuCount": 3}
    assert {s.unmasked for s in findings[0].sensitive} == {"a", "b"}
    assert fragmentation_findings({"b": b}) == []  # all on one node: nothing fragmented


def test_node_far_below_its_peers_is_flagged() -> None:
    tracker = FleetTracker(Policy())
    for name in ("n1", "n2", "n3"):
        summary = node(name, "healthy-busy")
        tracker.observe(summary, analyze(summary))
    # its own rules are disabled: the broken GPUs have no finding of their own
    blind = Policy(disabled_rules=[r for r in RULES if RULES[r].family == "gpu_health"])
    sick = node("n4", "ecc-xid-failing")
    tracker.observe(sick, analyze(sick, blind))
    assert tracker.peer_finding("n1") is None
    finding = tracker.peer_finding("n4")
    assert finding is not None and finding.rule == WORSE_RULE and finding.node_name == "n4"
    tracker.forget("n4")
    assert tracker.record("n4") is None and len(tracker) == 3


def test_a_node_whose_own_findings_explain_its_health_is_not_worse_than_peers() -> None:
    """A failing GPU is one recommendation, not that plus fleet.node-worse-than-peers."""
    tracker = FleetTracker(Policy())
    for name in ("n1", "n2", "n3"):
        summary = node(name, "healthy-busy")
        tracker.observe(summary, analyze(summary))
    sick = node("n4", "ecc-xid-failing")
    analysis = analyze(sick)
    assert analysis.scores.health <= 100 - FleetThresholds().health_gap  # far below its peers
    tracker.observe(sick, analysis)
    assert tracker.peer_finding("n4") is None


def test_eight_gpus_at_their_default_power_limit_are_not_worse_than_peers() -> None:
    tracker = FleetTracker(Policy())
    for name in ("n1", "n2", "n3"):
        summary = node(name, "healthy-busy")
        tracker.observe(summary, analyze(summary))
    capped = node("n4", "power-capped")
    analysis = analyze(capped)
    assert analysis.findings and analysis.scores.health >= 100 - FleetThresholds().health_gap
    tracker.observe(capped, analysis)
    assert tracker.peer_finding("n4") is None


def test_incremental_medians_agree_with_the_whole_fleet_computation() -> None:
    """Per report the tracker reads its GPU model's kept median; the answer is the all-nodes computation's."""
    import random

    from resource_agent.operator.fleet import NodeRecord, worse_than_peers_findings

    blind = Policy(disabled_rules=[r for r in RULES if RULES[r].family == "gpu_health"])
    kinds = [node("t", "healthy-busy"), node("t", "ecc-xid-failing"), node("t", "healthy-busy", gpus=4)]
    tracker = FleetTracker(Policy())
    latest = {}
    rng = random.Random(7)
    flagged = 0
    for step in range(120):
        name = f"n{rng.randrange(12)}"
        if step % 17 == 16:
            tracker.forget(name)
            latest.pop(name, None)
        else:
            summary = kinds[rng.randrange(len(kinds))].model_copy(update={"node_name": name})
            analysis = analyze(summary, blind)
            tracker.observe(summary, analysis)
            latest[name] = (summary, analysis)
        expected = worse_than_peers_findings(latest)
        flagged += len(expected)
        for other in latest:
            assert tracker.peer_finding(other) == expected.get(other)
    assert flagged > 0
    record = tracker.record(next(iter(latest)))
    assert isinstance(record, NodeRecord)
