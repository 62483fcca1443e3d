from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from resource_agent.analysis.engine import analyze
from resource_agent.analysis.policy import Policy
from resource_agent.api.findings import Severity
from resource_agent.api.resources import Phase
from resource_agent.api.summary import GpuFault, GpuFaultKind, GpuSection, LostGpuSummary
from resource_agent.operator.planning import (
    ExistingRecommendation,
    PlanSettings,
    material_digest,
    plan_reconcile,
    spec_for,
    standing_faults,
)
from tests.analysis.analysis_builders import gpu, node

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SETTINGS = PlanSettings(evidence_refresh_seconds=300, resolved_ttl_seconds=3600)


def existing_for(finding, *, phase=Phase.OPEN, last_seen=NOW, resolved_at=None, digest=None):
    return ExistingRecommendation(
        name=finding.resource_name(),
        node_name=finding.node_name,
        material_digest=digest or material_digest(spec_for(finding)),
        phase=phase,
        last_seen=last_seen,
        resolved_at=resolved_at,
    )


def test_new_finding_creates(finding_factory):
    plan = plan_reconcile([finding_factory()], [], now=NOW, settings=SETTINGS)
    assert [u.created for u in plan.upserts] == [True]
    assert plan.upserts[0].name == finding_factory().resource_name()


def test_unchanged_finding_costs_no_write(finding_factory):
    finding = finding_factory(observed=3.0)
    jittered = finding_factory(observed=4.0)  # numbers move, the finding is the same
    plan = plan_reconcile([jittered], [existing_for(finding)], now=NOW + timedelta(seconds=60), settings=SETTINGS)
    assert plan.writes == 0
    assert plan.unchanged == [finding.resource_name()]


def test_unchanged_finding_refreshes_evidence_after_interval(finding_factory):
    finding = finding_factory()
    plan = plan_reconcile([finding], [existing_for(finding)], now=NOW + timedelta(seconds=301), settings=SETTINGS)
    assert [u.created for u in plan.upserts] == [False]


def test_material_change_updates(finding_factory):
    old = finding_factory(severity=Severity.WARNING)
    new = finding_factory(severity=Severity.CRITICAL)
    plan = plan_reconcile([new], [existing_for(old)], now=NOW + timedelta(seconds=5), settings=SETTINGS)
    assert len(plan.upserts) == 1 and not plan.upserts[0].created


def test_cleared_finding_resolves_once_then_deleted_after_ttl(finding_factory):
    finding = finding_factory()
    plan = plan_reconcile([], [existing_for(finding)], now=NOW, settings=SETTINGS)
    assert [r.name for r in plan.resolves] == [finding.resource_name()]
    resolved = existing_for(finding, phase=Phase.RESOLVED, resolved_at=NOW)
    assert plan_reconcile([], [resolved], now=NOW + timedelta(minutes=59), settings=SETTINGS).writes == 0
    later = plan_reconcile([], [resolved], now=NOW + timedelta(minutes=61), settings=SETTINGS)
    assert [d.name for d in later.deletes] == [finding.resource_name()]


def test_resolved_finding_that_returns_reopens(finding_factory):
    finding = finding_factory()
    resolved = existing_for(finding, phase=Phase.RESOLVED, resolved_at=NOW)
    plan = plan_reconcile([finding], [resolved], now=NOW, settings=SETTINGS)
    assert plan.upserts[0].reopened


def test_duplicate_findings_collapse_to_one_name(finding_factory):
    plan = plan_reconcile([finding_factory(), finding_factory()], [], now=NOW, settings=SETTINGS)
    assert len(plan.upserts) == 1


def test_evidence_rounded_to_three_significant_digits(finding_factory):
    spec = spec_for(finding_factory(observed=3.14159))
    assert spec.evidence[0].observed == 3.14


def test_decision_is_never_part_of_the_written_spec(finding_factory):
    wire = spec_for(finding_factory()).to_wire()
    assert "decision" not in wire and "snoozeUntil" not in wire


def test_names_are_deterministic_and_distinct(finding_factory):
    assert finding_factory(gpu=0).resource_name() == finding_factory(gpu=0).resource_name()
    assert finding_factory(gpu=0).resource_name() != finding_factory(gpu=1).resource_name()
    assert finding_factory(node="a").resource_name() != finding_factory(node="b").resource_name()


# --- hardware faults stand: their recommendations are not resolved while the report shows them


def _faulty_report(*, fault_standing: bool, lost: bool = False):
    faults = [GpuFault(kind=GpuFaultKind.FATAL_XID, since=900.0, detail="XID 79", xid=79)] if fault_standing else []
    devices = [gpu(0), gpu(1, faults=faults)]
    lost_gpus = [LostGpuSummary(index=2, uuid=gpu(2).uuid, error="GPU is lost", since=900.0)] if lost else []
    return node(gpu=GpuSection(available=True, devices=devices, lost=lost_gpus, expected_count=3 if lost else None))


def _window_finding(rule: str, index: int):
    """The finding the window raised when the fault happened (same identity as the standing one)."""
    xid = {"gpu-xid-off-bus": "79", "gpu-xid-reset": "95"}[rule]
    summary = node(gpus=[gpu(0), gpu(index, xid_counts={xid: 1})])
    return next(f for f in analyze(summary).findings if f.rule == rule)


def test_a_standing_fault_keeps_its_recommendation_when_the_window_does_not_raise_it():
    raised = _window_finding("gpu-xid-off-bus", 1)
    existing = [existing_for(raised, last_seen=NOW)]
    quiet = _faulty_report(fault_standing=True)
    # this window's findings lack it (e.g. an analysis that only reads window events) ...
    plan = plan_reconcile([], existing, now=NOW + timedelta(seconds=60), settings=SETTINGS,
                          standing=standing_faults(quiet, Policy()))
    # ... yet the report still shows XID 79 standing: no Resolve, no write
    assert plan.resolves == [] and plan.writes == 0
    assert plan.unchanged == [raised.resource_name()]


def test_a_standing_fault_reopens_a_recommendation_resolved_by_mistake():
    raised = _window_finding("gpu-xid-off-bus", 1)
    resolved = existing_for(raised, phase=Phase.RESOLVED, resolved_at=NOW)
    plan = plan_reconcile([], [resolved], now=NOW, settings=SETTINGS,
                          standing=standing_faults(_faulty_report(fault_standing=True), Policy()))
    assert [(u.name, u.reopened) for u in plan.upserts] == [(raised.resource_name(), True)]


def test_a_cleared_fault_resolves_its_recommendation():
    raised = _window_finding("gpu-xid-off-bus", 1)
    cleared = _faulty_report(fault_standing=False)  # the GPU was reset / the node rebooted
    plan = plan_reconcile([], [existing_for(raised)], now=NOW, settings=SETTINGS, standing=standing_faults(cleared, Policy()))
    assert [r.name for r in plan.resolves] == [raised.resource_name()]


def test_hardware_recommendations_of_a_lost_gpu_are_held():
    before_lost = _window_finding("gpu-xid-reset", 2)  # XID 95 on GPU 2, then NVML lost it
    known = replace(existing_for(before_lost), rule=before_lost.rule, category=before_lost.category.value,
                    gpu_uuid=before_lost.target.gpu_uuid)
    seen = _window_finding("gpu-xid-reset", 1)  # XID 95 on GPU 1, which is still there
    other = replace(existing_for(seen), rule=seen.rule, category="hardware", gpu_uuid=seen.target.gpu_uuid)
    standing = standing_faults(_faulty_report(fault_standing=False, lost=True), Policy())
    assert [f.rule for f in standing.findings] == ["gpu-lost"]
    plan = plan_reconcile([], [known, other], now=NOW, settings=SETTINGS, standing=standing)
    assert plan.held == [before_lost.resource_name()]
    assert [r.name for r in plan.resolves] == [seen.resource_name()]
    assert [u.spec.rule for u in plan.upserts] == ["gpu-lost"]


def test_the_window_finding_wins_over_the_standing_one():
    report = _faulty_report(fault_standing=True)
    standing = standing_faults(report, Policy.from_mapping({"rules": {"gpu-xid-off-bus": {"severity": "warning"}}}))
    assert [f.severity for f in standing.findings] == [Severity.WARNING]  # the policy's override applies
    plan = plan_reconcile(list(standing.findings), [], now=NOW, settings=SETTINGS, standing=standing)
    assert len(plan.upserts) == 1
