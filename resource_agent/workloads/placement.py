"""Workloads whose replicas keep whole GPU nodes fragmented (pure).

A Deployment or StatefulSet of small (say 1-GPU) pods spread over many nodes leaves each of them
partly used, so a job that needs a whole node (an 8-GPU training or tensor-parallel serving pod)
finds none, although the fleet has the GPUs. In the periodic workload pass (not per report), from
the operator's node index (allocatable GPUs, schedulable, GPU product per node) and GPU-pod index
(which pod, of which workload, holds how many GPUs on which node), `find_packings` asks of every
workload: moving its pods into free room on nodes that stay busy, how many nodes would be left
with no GPU pod at all? Each such node is a whole block of GPUs for a larger job, and the finding
`workload.gpu-fragmenting` recommends the scheduling change (`pack-workload-replicas`: a preferred
podAffinity to the workload's own pods on `kubernetes.io/hostname`, dropping a preferred spread,
the scheduler's MostAllocated scoring for nvidia.com/gpu) with the nodes and GPUs freed and the
GPU-hours per day that become usable by whole-node jobs.

It is conservative:
- only a node the workload alone holds GPUs on can be freed (another pod would keep it busy), and
  only one with more GPUs than the workload's largest pod (a block the workload itself does not
  need), that is schedulable;
- pods move only into free room on schedulable nodes that already run GPU pods and have the same
  GPU product (never onto an empty node: that would only move the hole);
- no finding for DaemonSets (a pod per node by design), Jobs (they end), LeaderWorkerSets (groups
  span nodes on purpose), bare pods, or a workload whose pods require their spread (required pod
  anti-affinity, a DoNotSchedule topology spread);
- the opportunity must stand for `persist_seconds` (a rollout or a scale-up spreads pods for a while).

Placement is greedy (the workload's nodes with the fewest of its GPUs are emptied first, each pod
into the fullest node it fits, its own workload's nodes first): it can miss a packing, never claim
one that does not fit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from resource_agent.api.findings import (
    Action,
    ActionType,
    Category,
    Evidence,
    Finding,
    Sensitive,
    Severity,
    Target,
    TargetKind,
)
from resource_agent.api.usage import WorkloadRef
from resource_agent.workloads.owners import SPREAD_PREFERRED, SPREAD_REQUIRED, TERMINATED_PHASES, PodInfo
from resource_agent.workloads.usage import HOURS_PER_DAY, WORKLOADS_NODE

PACK_RULE = "workload.gpu-fragmenting"
PACKABLE = frozenset({TargetKind.DEPLOYMENT, TargetKind.STATEFUL_SET, TargetKind.REPLICA_SET})
HOSTNAME_KEY = "kubernetes.io/hostname"
POD_AFFINITY_ADVICE = f"preferredDuringSchedulingIgnoredDuringExecution podAffinity to the workload's own pods, topologyKey {HOSTNAME_KEY}"
SPREAD_ADVICE = f"drop the preferred spread over {HOSTNAME_KEY} (ScheduleAnyway topologySpreadConstraints, preferred podAntiAffinity)"
SCORING_ADVICE = "kube-scheduler NodeResourcesFit scoringStrategy MostAllocated with nvidia.com/gpu weighted"

Resolve = Callable[[PodInfo], WorkloadRef]


@dataclass(frozen=True)
class NodeGpus:
    """What the operator's node index keeps of a node with GPUs."""

    allocatable: int
    schedulable: bool = True
    product: str | None = None  # nvidia.com/gpu.product (GPU feature discovery); pods move only between equal ones


@dataclass(frozen=True)
class Packing:
    """What packing one workload's pods would free."""

    ref: WorkloadRef
    nodes: tuple[str, ...]  # nodes its GPU pods are on now
    freed: tuple[str, ...]  # nodes left with no GPU pod once they are packed
    gpus_freed: int  # allocatable GPUs of the freed nodes
    pods_moved: int
    gpus_allocated: int  # GPUs its pods hold
    spread_preferred: bool  # some pod asks (preferred) to be spread: the advice says to drop that
    pending_whole_node_pods: int = 0  # unscheduled GPU pods that fit a freed node but no node's free room now


def _unique(pods: Iterable[PodInfo]) -> list[PodInfo]:
    """The index holds each pod twice (by name and by UID)."""
    seen: set[str] = set()
    unique = []
    for pod in pods:
        key = pod.uid or f"{pod.namespace}/{pod.name}"
        if key not in seen:
            seen.add(key)
            unique.append(pod)
    return unique


def find_packings(pods: Iterable[PodInfo], nodes: Mapping[str, NodeGpus], resolve: Resolve) -> list[Packing]:
    """Every workload whose pods, packed, would leave whole nodes with no GPU pod."""
    unique = _unique(pods)
    used: dict[str, int] = {}
    groups: dict[str, tuple[WorkloadRef, list[PodInfo]]] = {}
    for pod in unique:
        if not pod.holds_gpus or pod.node_name is None:
            continue
        used[pod.node_name] = used.get(pod.node_name, 0) + pod.gpus
        ref = resolve(pod)
        if ref.kind in PACKABLE:
            groups.setdefault(ref.key(), (ref, []))[1].append(pod)
    largest_room = max(
        (max(0, node.allocatable - used.get(name, 0)) for name, node in nodes.items() if node.schedulable), default=0
    )
    pending = [pod.gpus for pod in unique if pod.node_name is None and pod.phase not in TERMINATED_PHASES and pod.gpus > largest_room]
    packings = []
    for key in sorted(groups):
        ref, workload_pods = groups[key]
        packing = plan_packing(ref, workload_pods, nodes, used)
        if packing is not None:
            block = max(nodes[name].allocatable for name in packing.freed)
            waiting = sum(1 for gpus in pending if gpus <= block)
            packings.append(Packing(**{**packing.__dict__, "pending_whole_node_pods": waiting}))
    return packings


def plan_packing(ref: WorkloadRef, pods: list[PodInfo], nodes: Mapping[str, NodeGpus], used: Mapping[str, int]) -> Packing | None:
    """The nodes packing this workload's pods would free (None: none, or the workload may not be packed).

    `used`: GPUs allocated per node by all scheduled, unterminated pods (this workload's included)."""
    if ref.kind not in PACKABLE:
        return None
    held = [pod for pod in pods if pod.holds_gpus and pod.node_name in nodes]
    if not held or any(pod.spread == SPREAD_REQUIRED for pod in held):
        return None
    by_node: dict[str, list[PodInfo]] = {}
    for pod in held:
        assert pod.node_name is not None
        by_node.setdefault(pod.node_name, []).append(pod)
    if len(by_node) < 2:
        return None
    largest_pod = max(pod.gpus for pod in held)
    mine = {name: sum(pod.gpus for pod in on_node) for name, on_node in by_node.items()}
    busy = {name: used.get(name, 0) for name in nodes}
    room = {name: max(0, node.allocatable - busy[name]) if node.schedulable else 0 for name, node in nodes.items()}
    candidates = sorted(
        (name for name in by_node if busy[name] == mine[name] and nodes[name].schedulable and nodes[name].allocatable > largest_pod),
        key=lambda name: (mine[name], name),
    )
    freed: list[str] = []
    kept: set[str] = set()
    moved = 0
    for source in candidates:
        if source in kept:
            continue
        placement = _place(by_node[source], source, nodes, busy, room, set(by_node))
        if placement is None:
            continue
        for pod, target in placement:
            room[target] -= pod.gpus
            busy[target] += pod.gpus
            kept.add(target)
        busy[source] = 0
        room[source] = 0
        freed.append(source)
        moved += len(placement)
    if not freed:
        return None
    return Packing(
        ref=ref, nodes=tuple(sorted(by_node)), freed=tuple(sorted(freed)),
        gpus_freed=sum(nodes[name].allocatable for name in freed), pods_moved=moved,
        gpus_allocated=sum(mine.values()), spread_preferred=any(pod.spread == SPREAD_PREFERRED for pod in held),
    )


def _place(
    pods: list[PodInfo], source: str, nodes: Mapping[str, NodeGpus], busy: Mapping[str, int], room: Mapping[str, int],
    own: set[str],
) -> list[tuple[PodInfo, str]] | None:
    """Where each of `source`'s pods would go (None: not all fit). Never onto an empty node or another product."""
    product = nodes[source].product
    left = {
        name: free for name, free in room.items()
        if name != source and free > 0 and busy[name] > 0 and nodes[name].product == product
    }
    placement = []
    for pod in sorted(pods, key=lambda pod: (-pod.gpus, pod.name)):
        fits = [name for name, free in left.items() if free >= pod.gpus]
        if not fits:
            return None
        target = min(fits, key=lambda name: (name not in own, left[name], name))  # its own nodes first, then the fullest
        left[target] -= pod.gpus
        placement.append((pod, target))
    return placement


class PackingTracker:
    """Since when each workload's packing opportunity has stood; findings once it stood `persist_seconds`."""

    def __init__(self, persist_seconds: float = 3600.0) -> None:
        self.persist_seconds = persist_seconds
        self._since: dict[str, float] = {}

    def findings(self, packings: Iterable[Packing], now: float) -> list[Finding]:
        current = {packing.ref.key(): packing for packing in packings}
        self._since = {key: self._since.get(key, now) for key in current}  # a gap starts the clock again
        return [
            packing_finding(packing, now - self._since[key])
            for key, packing in sorted(current.items())
            if now - self._since[key] >= self.persist_seconds
        ]


def packing_finding(packing: Packing, stood_seconds: float) -> Finding:
    ref = packing.ref
    kept = len(packing.nodes) - len(packing.freed)
    freed = len(packing.freed)
    saved = packing.gpus_freed * HOURS_PER_DAY
    name = f"{ref.kind.value} {ref.namespace}/{ref.name}"
    waiting = (
        f"; {packing.pending_whole_node_pods} pending GPU pod(s) need such a node" if packing.pending_whole_node_pods else ""
    )
    parameters: dict[str, str | int | float | bool] = {
        "nodesFreed": freed, "gpusFreed": packing.gpus_freed, "currentNodes": len(packing.nodes), "targetNodes": kept,
        "podsToMove": packing.pods_moved, "vacateNodes": ",".join(packing.freed),
        "podAffinity": POD_AFFINITY_ADVICE, "schedulerScoring": SCORING_ADVICE,
    }
    if packing.spread_preferred:
        parameters["topologySpread"] = SPREAD_ADVICE
    return Finding(
        rule=PACK_RULE, category=Category.GPU,
        severity=Severity.WARNING if packing.pending_whole_node_pods else Severity.INFO,
        node_name=WORKLOADS_NODE, target=Target(kind=ref.kind, name=ref.name, namespace=ref.namespace),
        summary=(
            f"{name} holds {packing.gpus_allocated} GPU(s) spread over {len(packing.nodes)} nodes; packed onto {kept}, "
            f"it would leave {freed} whole node(s) ({packing.gpus_freed} GPUs) free for jobs that need a whole node{waiting}."
        ),
        evidence=[
            Evidence(metric="workload.nodes", statistic="count", observed=len(packing.nodes), threshold=kept, comparison=">",
                     window_seconds=round(stood_seconds)),
            Evidence(metric="workload.nodes_freed_by_packing", statistic="count", observed=freed, threshold=1,
                     window_seconds=round(stood_seconds)),
            Evidence(metric="workload.gpus_allocated", statistic="last", observed=packing.gpus_allocated, threshold=1),
            Evidence(metric="fleet.pending_whole_node_gpu_pods", statistic="count", observed=packing.pending_whole_node_pods,
                     threshold=1),
        ],
        action=Action(type=ActionType.PACK_WORKLOAD_REPLICAS, parameters=parameters),
        expected_impact=f"{packing.gpus_freed} GPUs on {freed} whole node(s) usable by whole-node jobs: ~{saved:.0f} GPU-hours per day.",
        gpu_hours_per_day_saved=round(saved, 1),
        sensitive=[
            Sensitive(unmasked=ref.name, masked="workload-0"), Sensitive(unmasked=ref.namespace, masked="namespace-0"),
            *(Sensitive(unmasked=node, masked=f"node-{index}") for index, node in enumerate(packing.nodes)),
        ],
    )
