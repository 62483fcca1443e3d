"""Cross-node findings (pure)."""

from __future__ import annotations

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
    sick = node("n4", "ecc-xid-failing")
    tracker.observe(sick, analyze(sick))
    assert tracker.peer_finding("n1") is None
    finding = tracker.peer_finding("n4")
    assert finding is not None and finding.rule == WORSE_RULE and finding.node_name == "n4"
    tracker.forget("n4")
    assert tracker.summary("n4") is None
