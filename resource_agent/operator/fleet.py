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

import bisect
import statistics
import sys
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
    return fragmentation_from_counts({name: idle_gpus(summary, thresholds) for name, summary in nodes.items()}, thresholds)


def fragmentation_from_counts(free: Mapping[str, int], thresholds: FleetThresholds = FleetThresholds()) -> list[Finding]:
    """`free`: node -> idle GPUs (`idle_gpus`), as the fleet tracker keeps it per node."""
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
    """node name -> finding, for nodes far below their GPU-model peers' median health (every node at once;
    the operator keeps `FleetTracker`'s incremental medians and asks for one node per report)."""
    records = {name: NodeRecord.of(summary, analysis, thresholds) for name, (summary, analysis) in analyses.items()}
    groups: dict[str, list[float]] = {}
    for record in records.values():
        if record.gpu_model is not None:
            groups.setdefault(record.gpu_model, []).append(record.health)
    findings = {}
    for name, record in records.items():
        peers = groups.get(record.gpu_model or "", [])
        if len(peers) >= thresholds.min_peers:
            finding = peer_finding(name, record, statistics.median(peers), len(peers), thresholds)
            if finding is not None:
                findings[name] = finding
    return findings


def peer_finding(
    name: str, record: NodeRecord, median: float, peers: int, thresholds: FleetThresholds = FleetThresholds()
) -> Finding | None:
    """fleet.node-worse-than-peers for one node, given its GPU model's median health over `peers` nodes."""
    health, unexplained = record.health, record.unexplained_health
    if median - health < thresholds.health_gap or median - unexplained < thresholds.health_gap:
        return None  # close to its peers, or its own findings explain the gap and already say what to do
    return Finding(
        rule=WORSE_RULE,
        category=Category.HARDWARE,
        severity=Severity.WARNING,
        node_name=name,
        target=Target(kind=TargetKind.NODE, name=name),
        summary=f"Health {health:.0f} is {median - health:.0f} points below the median of {peers} {record.gpu_model} nodes, "
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


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """What the fleet keeps of a node's latest report: what the cross-node rules and the fleet pass read
    (a few hundred bytes, not the summary and its analysis)."""

    gpu_model: str | None  # the first GPU's name; None without GPUs (no peers)
    health: float
    unexplained_health: float  # health counting only what the node's own findings do not explain
    idle_gpus: int  # free for a job (fragmentation)
    allocated_idle_gpus: int  # held by a pod, no work (fleet GPU accounting)

    @classmethod
    def of(cls, summary: NodeSummary, analysis: Analysis, thresholds: FleetThresholds = FleetThresholds(),
           busy_sm_percent: float = 5.0) -> NodeRecord:
        devices = summary.gpu.devices
        return cls(
            gpu_model=sys.intern(devices[0].name) if devices else None,
            health=analysis.scores.health,
            unexplained_health=unexplained_health(summary, analysis.findings),
            idle_gpus=idle_gpus(summary, thresholds),
            allocated_idle_gpus=allocated_idle_gpus([summary], busy_sm_percent),
        )


@dataclass(frozen=True)
class GpuAccounting:
    """The fleet's GPUs: free = allocatable - allocated (from pods); allocated-but-idle counted apart."""

    allocatable: int
    allocated: int
    free: int
    allocated_idle: int


def gpu_accounting(
    allocatable: Mapping[str, int], pods: Iterable[PodInfo], allocated_idle: int
) -> GpuAccounting:
    """Per node, free = allocatable minus what scheduled, unterminated pods request (never below zero);
    `allocated_idle`: GPUs held by a pod that did no work (`NodeRecord.allocated_idle_gpus`, summed)."""
    allocated: dict[str, int] = {}
    seen: set[str] = set()
    for pod in pods:
        if pod.holds_gpus and pod.uid not in seen and pod.node_name is not None:
            seen.add(pod.uid)
            allocated[pod.node_name] = allocated.get(pod.node_name, 0) + pod.gpus
    free = sum(max(0, count - allocated.get(node, 0)) for node, count in allocatable.items())
    return GpuAccounting(
        allocatable=sum(allocatable.values()), allocated=sum(allocated.values()), free=free, allocated_idle=allocated_idle,
    )


class FleetTracker:
    """A slim record of every node's latest report, and per GPU model the sorted health of its nodes:
    a report costs O(log n) lookups plus a list insert, whatever the fleet's size (the median is read,
    not recomputed); whole-fleet sums run only in the periodic fleet pass."""

    def __init__(self, policy: Policy, thresholds: FleetThresholds = FleetThresholds(), busy_sm_percent: float = 5.0) -> None:
        self.policy = policy
        self.thresholds = thresholds
        self.busy_sm_percent = busy_sm_percent
        self._records: dict[str, NodeRecord] = {}
        self._health: dict[str, list[float]] = {}  # GPU model -> sorted health of its nodes

    def __len__(self) -> int:
        return len(self._records)

    def observe(self, summary: NodeSummary, analysis: Analysis) -> NodeRecord:
        record = NodeRecord.of(summary, analysis, self.thresholds, self.busy_sm_percent)
        self.forget(summary.node_name)
        self._records[summary.node_name] = record
        if record.gpu_model is not None:
            bisect.insort(self._health.setdefault(record.gpu_model, []), record.health)
        return record

    def forget(self, node_name: str) -> None:
        record = self._records.pop(node_name, None)
        if record is None or record.gpu_model is None:
            return
        healths = self._health[record.gpu_model]
        del healths[bisect.bisect_left(healths, record.health)]
        if not healths:
            del self._health[record.gpu_model]

    def record(self, node_name: str) -> NodeRecord | None:
        return self._records.get(node_name)

    def median_health(self, gpu_model: str) -> tuple[float, int]:
        """The median health of the nodes with this GPU model, and how many there are."""
        healths = self._health.get(gpu_model, [])
        count = len(healths)
        if not count:
            return float("nan"), 0
        middle = count // 2
        return (healths[middle] if count % 2 else (healths[middle - 1] + healths[middle]) / 2), count

    def peer_finding(self, node_name: str) -> Finding | None:
        record = self._records.get(node_name)
        if record is None or record.gpu_model is None:
            return None
        median, peers = self.median_health(record.gpu_model)
        if peers < self.thresholds.min_peers:
            return None
        return peer_finding(node_name, record, median, peers, self.thresholds)

    def allocated_idle_gpus(self) -> int:
        return sum(record.allocated_idle_gpus for record in self._records.values())

    def fleet_findings(self) -> list[Finding]:
        return fragmentation_from_counts({name: r.idle_gpus for name, r in self._records.items()}, self.thresholds)
