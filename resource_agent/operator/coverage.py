"""No silent failure: GPU nodes without a ResourceReport, and reports that stopped coming (pure).

The operator's periodic fleet pass reads the Nodes' GPU capacity and the ResourceReports' times (kopf
indexes, kept from the watches) and turns
- a node with `nvidia.com/gpu` capacity and no report into `gpu-node-without-report`
  (no agent runs there: its labels match none of the agent's GPU node affinity terms,
  or a taint keeps it off), and
- a report older than `stale_after_seconds` into `report-stale` (the agent is gone, crash-looping or
  cannot reach the API server). An agent writes an unchanged report once per heartbeat (its
  `--report-heartbeat`) and a changed one at its next report interval, so a quiet healthy node's report
  is up to one heartbeat plus one report interval old: stale means older than `stale_heartbeats`
  heartbeats plus one report interval (default 2 x 5 min + 60 s = 11 min), one missed heartbeat of slack,
each a finding with its own recommendation (on the fleet pseudo-node, targeting the node).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from resource_agent.api.findings import Action, ActionType, Category, Evidence, Finding, Sensitive, Severity, Target, TargetKind

GPU_RESOURCE = "nvidia.com/gpu"
MISSING_RULE = "gpu-node-without-report"
STALE_RULE = "report-stale"
DEFAULT_REPORT_INTERVAL_SECONDS = 60.0
DEFAULT_REPORT_HEARTBEAT_SECONDS = 300.0
STALE_HEARTBEATS = 2.0


@dataclass(frozen=True)
class CoverageThresholds:
    report_interval_seconds: float = DEFAULT_REPORT_INTERVAL_SECONDS  # the agents' --report-interval
    report_heartbeat_seconds: float = DEFAULT_REPORT_HEARTBEAT_SECONDS  # the agents' --report-heartbeat
    stale_heartbeats: float = STALE_HEARTBEATS

    @property
    def stale_after_seconds(self) -> float:
        """Heartbeats without a write, plus the report interval a heartbeat write may wait for its summary."""
        return self.report_heartbeat_seconds * self.stale_heartbeats + self.report_interval_seconds


DEFAULT_THRESHOLDS = CoverageThresholds()


@dataclass(frozen=True)
class Coverage:
    missing: dict[str, int]  # node -> nvidia.com/gpu capacity, for GPU nodes without a report
    stale: dict[str, float]  # node -> age of its report in seconds, for reports older than the threshold
    ages: dict[str, float]  # node -> age of its report in seconds, every report with a time


def gpu_capacity(node: Mapping[str, Any]) -> int:
    """The node's nvidia.com/gpu capacity (0 when it has none or it is not a number)."""
    raw = (node.get("status") or {}).get("capacity", {}).get(GPU_RESOURCE)
    try:
        return int(str(raw)) if raw is not None else 0
    except ValueError:
        return 0


def report_time(report: Mapping[str, Any]) -> float | None:
    """Unix time the agent last wrote the report (status.reportedAt), None when unknown."""
    value = (report.get("status") or {}).get("reportedAt")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def assess(
    nodes: Mapping[str, int], reports: Mapping[str, float | None], now: float, thresholds: CoverageThresholds = DEFAULT_THRESHOLDS
) -> Coverage:
    """`nodes`: node -> GPU capacity (every node); `reports`: node -> unix time of its report."""
    missing = {name: gpus for name, gpus in sorted(nodes.items()) if gpus > 0 and name not in reports}
    ages = {name: max(0.0, now - at) for name, at in sorted(reports.items()) if at is not None}
    # a report of a node that no longer exists is the owner-reference GC's business, not stale
    stale = {name: age for name, age in ages.items() if name in nodes and age > thresholds.stale_after_seconds}
    return Coverage(missing=missing, stale=stale, ages=ages)


def coverage_findings(coverage: Coverage, fleet_node: str, thresholds: CoverageThresholds = DEFAULT_THRESHOLDS) -> list[Finding]:
    findings = [_missing(node, gpus, fleet_node) for node, gpus in coverage.missing.items()]
    findings += [_stale(node, age, fleet_node, thresholds) for node, age in coverage.stale.items()]
    return findings


def _missing(node: str, gpus: int, fleet_node: str) -> Finding:
    return Finding(
        rule=MISSING_RULE,
        category=Category.GPU,
        severity=Severity.WARNING,
        node_name=fleet_node,
        target=Target(kind=TargetKind.NODE, name=node),
        summary=f"Node {node} has {gpus} GPU(s) ({GPU_RESOURCE} capacity) but no ResourceReport: no agent runs there.",
        evidence=[Evidence(metric=f"node.status.capacity[{GPU_RESOURCE}]", statistic="last", observed=float(gpus), threshold=1.0, unit="GPUs")],
        action=Action(type=ActionType.INVESTIGATE, parameters={
            "hint": "label the node (e.g. nvidia.com/gpu.present=true) or let the operator label it "
                    "(operator.labelGpuCapacityNodes=true), extend agent.gpuNodeAffinity.nodeSelectorTerms "
                    "or agent.tolerations, or set agent.gpuNodeAffinity.enabled=false (all nodes)",
        }),
        expected_impact="The node's GPUs are measured and its faults reported.",
        sensitive=[Sensitive(unmasked=node, masked="node-1")],
    )


def _stale(node: str, age: float, fleet_node: str, thresholds: CoverageThresholds) -> Finding:
    return Finding(
        rule=STALE_RULE,
        category=Category.GPU,
        severity=Severity.WARNING,
        node_name=fleet_node,
        target=Target(kind=TargetKind.NODE, name=node),
        summary=(
            f"The ResourceReport of {node} has not been written for more than {thresholds.stale_after_seconds:g} s "
            f"({thresholds.stale_heartbeats:g} report heartbeats and a report interval): its agent is gone, failing "
            "or cut off from the API server."
        ),
        evidence=[Evidence(metric="status.reportedAt", statistic="age", observed=round(age, 1),
                           threshold=thresholds.stale_after_seconds, unit="seconds")],
        action=Action(type=ActionType.INVESTIGATE, parameters={
            "hint": "check the agent pod on the node: kubectl get pods -o wide --field-selector spec.nodeName=<node>, then its log",
        }),
        expected_impact="Fresh reports again; the node's recommendations describe its current state.",
        sensitive=[Sensitive(unmasked=node, masked="node-1")],
    )
