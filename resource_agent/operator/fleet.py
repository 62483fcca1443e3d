"""Cross-node findings: what only shows when comparing nodes (pure core + a tracker).

- fleet.gpu-capacity-fragmented: idle GPUs are spread over several nodes, so a
  job needing that many GPUs on one node cannot be placed although the fleet
  has them.
- fleet.node-worse-than-peers: a node's health score is far below the median
  of the nodes with the same GPU model, and the node's own findings do not explain
  it (they carry their own recommendations: a failing GPU is one recommendation,
  not that plus "worse than peers").
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from resource_agent.analysis.policy import Policy
from resource_agent.analysis.scores import unexplained_health
from resource_agent.api.findings import (
    Action,
    ActionType,
    Analysis,
    Category,
    Evidence,
    Finding,
    Sensitive,
    Severity,
    Target,
    TargetKind,
)
from resource_agent.api.summary import GpuSummary, NodeSummary
from resource_agent.workloads.owners import PodInfo
from resource_agent.workloads.usage import allocated_idle_gpus

FLEET_NODE = "fleet"
FRAGMENTED_RULE = "fleet.gpu-capacity-fragmented"
WORSE_RULE = "fleet.node-worse-than-peers"


@dataclass(frozen=True)
class FleetThresholds:
    idle_sm_percent: float = 5.0
    idle_memory_percent: float = 5.0
    min_free_gpus: int = 2
    min_peers: int = 3
    health_gap: float = 25.0


def idle_gpus(summary: NodeSummary, thresholds: FleetThresholds) -> int:
    """GPUs with no work and no memory held over the whole window, and allocated to no pod."""
    return sum(1 for gpu in summary.gpu.devices if _is_idle(gpu, thresholds))


def _is_idle(gpu: GpuSummary, thresholds: FleetThresholds) -> bool:
    if gpu.sm_utilization_percent is None or gpu.memory_used_percent is None or gpu.allocated_to:
        return False  # a GPU a pod holds is not free, however idle (it counts as allocated-but-idle)
    return (
        gpu.sm_utilization_percent.max < thresholds.idle_sm_percent
        and gpu.memory_used_percent.max < thresholds.idle_memory_percent
    )


def fragmentation_findings(
    nodes: Mapping[str, NodeSummary], thresholds: FleetThresholds = FleetThresholds()
) -> list[Finding]:
    free = {name: idle_gpus(summary, thresholds) for name, summary in nodes.items()}
    holders = {name: count for name, count in free.items() if count > 0}
    total = sum(holders.values())
    largest = max(holders.values(), default=0)
    if len(holders) < 2 or total < thresholds.min_free_gpus or largest >= total:
        return []
    return [
        Finding(
            rule=FRAGMENTED_RULE,
            category=Category.GPU,
            severity=Severity.INFO,
            node_name=FLEET_NODE,
            target=Target(kind=TargetKind.NODE, name=FLEET_NODE),
            summary=(
                f"{total} idle GPUs are spread over {len(holders)} nodes; the largest block on one node is "
                f"{largest}, so a {total}-GPU job cannot be placed."
            ),
            evidence=[
                Evidence(metric="fleet.idle_gpus", statistic="count", observed=total,
                         threshold=thresholds.min_free_gpus),
                Evidence(metric="fleet.largest_idle_block", statistic="count", observed=largest,
                         threshold=total, comparison="<"),
            ],
            action=Action(type=ActionType.CONSOLIDATE_GPU_WORKLOADS, parameters={"gpuCount": total}),
            expected_impact=f"Packing work frees whole nodes: up to {total} GPUs usable by one job.",
            sensitive=[Sensitive(unmasked=name, masked=f"node-{i}") for i, name in enumerate(sorted(holders))],
        )
    ]


def worse_than_peers_findings(
    analyses: Mapping[str, tuple[NodeSummary, Analysis]], thresholds: FleetThresholds = FleetThresholds()
) -> dict[str, Finding]:
    """node name -> finding, for nodes far below their GPU-model peers' median health."""
    groups: dict[str, list[str]] = {}
    for name, (summary, _) in analyses.items():
        if summary.gpu.devices:
            groups.setdefault(summary.gpu.devices[0].name, []).append(name)
    findings = {}
    for model, names in groups.items():
        if len(names) < thresholds.min_peers:
            continue
        median = statistics.median(analyses[name][1].scores.health for name in names)
        for name in names:
            summary, analysis = analyses[name]
            health = analysis.scores.health
            if median - health < thresholds.health_gap:
                continue
            unexplained = unexplained_health(summary, analysis.findings)
            if median - unexplained < thresholds.health_gap:
                continue  # its own findings explain the gap and already say what to do
            findings[name] = Finding(
                rule=WORSE_RULE,
                category=Category.HARDWARE,
                severity=Severity.WARNING,
                node_name=name,
                target=Target(kind=TargetKind.NODE, name=name),
                summary=f"Health {health:.0f} is {median - health:.0f} points below the median of {len(names)} {model} nodes, "
                f"{median - unexplained:.0f} of them not explained by the node's findings.",
                evidence=[Evidence(metric="node.health_score", statistic="last", observed=health,
                                   threshold=median - thresholds.health_gap, comparison="<"),
                          Evidence(metric="node.unexplained_health_score", statistic="last", observed=unexplained,
                                   threshold=median - thresholds.health_gap, comparison="<")],
                action=Action(type=ActionType.INVESTIGATE,
                              parameters={"hint": "compare with peer nodes of the same GPU model"}),
                expected_impact="Finds a node-specific fault before it costs capacity.",
                sensitive=[Sensitive(unmasked=name, masked="node-0")],
            )
    return findings


@dataclass(frozen=True)
class GpuAccounting:
    """The fleet's GPUs: free = allocatable - allocated (from pods); allocated-but-idle counted apart."""

    allocatable: int
    allocated: int
    free: int
    allocated_idle: int


def gpu_accounting(
    allocatable: Mapping[str, int], pods: Iterable[PodInfo], summaries: Iterable[NodeSummary], busy_sm_percent: float = 5.0
) -> GpuAccounting:
    """Per node, free = allocatable minus what scheduled, unterminated pods request (never below zero)."""
    allocated: dict[str, int] = {}
    seen: set[str] = set()
    for pod in pods:
        if pod.holds_gpus and pod.uid not in seen and pod.node_name is not None:
            seen.add(pod.uid)
            allocated[pod.node_name] = allocated.get(pod.node_name, 0) + pod.gpus
    free = sum(max(0, count - allocated.get(node, 0)) for node, count in allocatable.items())
    return GpuAccounting(
        allocatable=sum(allocatable.values()), allocated=sum(allocated.values()), free=free,
        allocated_idle=allocated_idle_gpus(summaries, busy_sm_percent),
    )


class FleetTracker:
    """The latest summary and analysis of every node, for cross-node rules."""

    def __init__(self, policy: Policy, thresholds: FleetThresholds = FleetThresholds()) -> None:
        self.policy = policy
        self.thresholds = thresholds
        self._latest: dict[str, tuple[NodeSummary, Analysis]] = {}

    def observe(self, summary: NodeSummary, analysis: Analysis) -> None:
        self._latest[summary.node_name] = (summary, analysis)

    def forget(self, node_name: str) -> None:
        self._latest.pop(node_name, None)

    def summary(self, node_name: str) -> NodeSummary | None:
        entry = self._latest.get(node_name)
        return entry[0] if entry else None

    def peer_finding(self, node_name: str) -> Finding | None:
        return worse_than_peers_findings(self._latest, self.thresholds).get(node_name)

    def summaries(self) -> list[NodeSummary]:
        return [entry[0] for entry in self._latest.values()]

    def fleet_findings(self) -> list[Finding]:
        return fragmentation_findings({name: entry[0] for name, entry in self._latest.items()}, self.thresholds)
