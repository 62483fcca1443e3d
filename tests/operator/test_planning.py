from __future__ import annotations

from datetime import UTC, datetime, timedelta

from resource_agent.api.findings import Severity
from resource_agent.api.resources import Phase
from resource_agent.operator.planning import (
    ExistingRecommendation,
    PlanSettings,
    material_digest,
    plan_reconcile,
    spec_for,
)

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
