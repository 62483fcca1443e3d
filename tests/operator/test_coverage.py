"""No silent failure: GPU nodes without a report and stale reports become findings (pure logic)."""

from __future__ import annotations

from resource_agent.api.findings import ActionType, TargetKind
from resource_agent.operator.coverage import (
    MISSING_RULE,
    STALE_RULE,
    CoverageThresholds,
    assess,
    coverage_findings,
    gpu_capacity,
    report_time,
)
from resource_agent.operator.fleet import FLEET_NODE

NOW = 1_700_000_000.0


def test_gpu_capacity_and_report_time_read_the_objects() -> None:
    assert gpu_capacity({"status": {"capacity": {"nvidia.com/gpu": "8", "cpu": "64"}}}) == 8
    assert gpu_capacity({"status": {"capacity": {"cpu": "64"}}}) == 0
    assert gpu_capacity({"status": {"capacity": {"nvidia.com/gpu": "lots"}}}) == 0
    assert gpu_capacity({}) == 0
    assert report_time({"status": {"reportedAt": "2023-11-14T22:13:20Z"}}) == NOW
    assert report_time({"status": {}}) is None and report_time({}) is None


def test_gpu_node_without_report_is_a_finding_cpu_node_is_not() -> None:
    coverage = assess({"gpu-a": 8, "gpu-b": 8, "cpu-a": 0}, {"gpu-a": NOW - 10}, NOW)
    assert coverage.missing == {"gpu-b": 8} and not coverage.stale
    [finding] = coverage_findings(coverage, FLEET_NODE)
    assert finding.rule == MISSING_RULE and finding.node_name == FLEET_NODE
    assert finding.target.kind is TargetKind.NODE and finding.target.name == "gpu-b"
    assert finding.action.type is ActionType.INVESTIGATE and "gpuNodeAffinity" in str(finding.action.parameters["hint"])
    assert finding.sensitive and finding.sensitive[0].unmasked == "gpu-b"


def test_report_older_than_two_heartbeats_and_an_interval_is_stale() -> None:
    """A quiet node writes once per heartbeat (5 min): its report is up to a heartbeat and an interval old and
    never stale; an agent that stopped misses two heartbeats and is."""
    thresholds = CoverageThresholds(report_interval_seconds=60.0, report_heartbeat_seconds=300.0)
    assert thresholds.stale_after_seconds == 660
    reports = {"quiet": NOW - 360, "edge": NOW - 660, "stopped": NOW - 661, "gone-node": NOW - 9999}
    coverage = assess({"quiet": 8, "edge": 8, "stopped": 8}, reports, NOW, thresholds)
    assert set(coverage.stale) == {"stopped"}, "a heartbeat late is not stale; exactly the threshold is not yet; a deleted node is not stale"
    assert coverage.ages["quiet"] == 360 and coverage.ages["gone-node"] == 9999
    [finding] = coverage_findings(coverage, FLEET_NODE, thresholds)
    assert finding.rule == STALE_RULE and finding.target.name == "stopped"
    assert finding.evidence[0].observed == 661 and finding.evidence[0].threshold == 660
    assert "660 s" in finding.summary and "2 report heartbeats" in finding.summary


def test_a_cpu_node_with_an_agent_is_judged_by_its_report_only() -> None:
    coverage = assess({"cpu-a": 0}, {"cpu-a": NOW - 1000}, NOW)
    assert not coverage.missing and set(coverage.stale) == {"cpu-a"}


def test_findings_are_identified_per_node_so_they_never_duplicate() -> None:
    coverage = assess({"a": 1, "b": 2}, {}, NOW)
    findings = coverage_findings(coverage, FLEET_NODE)
    assert len({(f.node_name, f.rule, f.target.name) for f in findings}) == 2
    assert coverage_findings(assess({"a": 1, "b": 2}, {}, NOW + 60), FLEET_NODE) == findings
