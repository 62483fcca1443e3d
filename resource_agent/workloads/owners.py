"""A pod's owning workload through its owner references (pure), with a bounded cache.

ReplicaSet -> its Deployment (the ReplicaSet's own owner reference, from the operator's
ReplicaSet index; failing that, the `pod-template-hash` naming convention), StatefulSet (or the
LeaderWorkerSet whose label its pods carry), DaemonSet, Job, LeaderWorkerSet, or the bare Pod.
Owners of kinds outside that list (a custom controller) resolve to the pod itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from resource_agent.api.findings import TargetKind
from resource_agent.api.usage import WorkloadRef

GPU_RESOURCE = "nvidia.com/gpu"
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
TERMINATED_PHASES = frozenset({"Succeeded", "Failed"})
SPREAD_REQUIRED = "required"  # required pod anti-affinity, or a topology spread that must be met: the spread is deliberate
SPREAD_PREFERRED = "preferred"  # preferred anti-affinity, or a ScheduleAnyway topology spread: a scheduling wish
_DIRECT = {
    "Deployment": TargetKind.DEPLOYMENT,
    "StatefulSet": TargetKind.STATEFUL_SET,
    "DaemonSet": TargetKind.DAEMON_SET,
    "Job": TargetKind.JOB,
    "LeaderWorkerSet": TargetKind.LEADER_WORKER_SET,
}


@dataclass(frozen=True)
class OwnerRef:
    kind: str
    name: str
    controller: bool = False


@dataclass(frozen=True)
class PodInfo:
    """What the operator keeps of a pod that requests GPUs (its index value)."""

    namespace: str
    name: str
    uid: str
    node_name: str | None
    phase: str | None
    owners: tuple[OwnerRef, ...]
    gpus: int  # nvidia.com/gpu requested by its containers (limits where no request; GPUs are limit-only)
    pod_template_hash: str | None = None
    lws_name: str | None = None
    spread: str | None = None  # SPREAD_REQUIRED, SPREAD_PREFERRED or None: how the pod asks to be spread over nodes

    @property
    def holds_gpus(self) -> bool:
        """Scheduled, not terminated, with GPUs: it counts as allocated on its node."""
        return self.gpus > 0 and self.node_name is not None and self.phase not in TERMINATED_PHASES


def _quantity(value: Any) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def requested_gpus(spec: Mapping[str, Any], resource: str = GPU_RESOURCE) -> int:
    """nvidia.com/gpu of a pod spec: the sum over containers, or the largest init container (as the scheduler counts)."""
    def of(container: Mapping[str, Any]) -> int:
        resources = container.get("resources") or {}
        value = (resources.get("limits") or {}).get(resource, (resources.get("requests") or {}).get(resource))
        return _quantity(value) if value is not None else 0

    main = sum(of(container) for container in spec.get("containers") or [])
    init = max((of(container) for container in spec.get("initContainers") or []), default=0)
    return max(main, init)


def spread_of(spec: Mapping[str, Any]) -> str | None:
    """How a pod spec asks to be kept apart from other pods: required, preferred, or not at all."""
    anti = ((spec.get("affinity") or {}).get("podAntiAffinity")) or {}
    constraints = spec.get("topologySpreadConstraints") or []
    if anti.get("requiredDuringSchedulingIgnoredDuringExecution") or any(
        (constraint or {}).get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule" for constraint in constraints
    ):
        return SPREAD_REQUIRED
    if anti.get("preferredDuringSchedulingIgnoredDuringExecution") or constraints:
        return SPREAD_PREFERRED
    return None


def pod_info(body: Mapping[str, Any]) -> PodInfo:
    """A PodInfo from a pod object (the dict kopf or the API hands over)."""
    metadata = body.get("metadata") or {}
    spec = body.get("spec") or {}
    labels = metadata.get("labels") or {}
    owners = tuple(
        OwnerRef(kind=str(ref.get("kind", "")), name=str(ref.get("name", "")), controller=bool(ref.get("controller")))
        for ref in metadata.get("ownerReferences") or []
    )
    return PodInfo(
        namespace=str(metadata.get("namespace", "")), name=str(metadata.get("name", "")), uid=str(metadata.get("uid", "")),
        node_name=spec.get("nodeName"), phase=(body.get("status") or {}).get("phase"), owners=owners,
        gpus=requested_gpus(spec), pod_template_hash=labels.get(POD_TEMPLATE_HASH_LABEL), lws_name=labels.get(LWS_NAME_LABEL),
        spread=spread_of(spec),
    )


def controller_of(owners: tuple[OwnerRef, ...]) -> OwnerRef | None:
    """The managing controller's reference (controller: true), else the first one."""
    for owner in owners:
        if owner.controller:
            return owner
    return owners[0] if owners else None


ReplicaSetOwner = Callable[[str, str], OwnerRef | None]  # (namespace, ReplicaSet name) -> its controller, if known


def resolve_workload(pod: PodInfo, replicaset_owner: ReplicaSetOwner | None = None) -> WorkloadRef:
    """The workload that owns `pod`."""
    owner = controller_of(pod.owners)
    namespace = pod.namespace
    if owner is None:
        return WorkloadRef(kind=TargetKind.POD, namespace=namespace, name=pod.name)
    if owner.kind == "ReplicaSet":
        parent = replicaset_owner(namespace, owner.name) if replicaset_owner else None
        if parent is not None and parent.kind == "Deployment":
            return WorkloadRef(kind=TargetKind.DEPLOYMENT, namespace=namespace, name=parent.name)
        suffix = f"-{pod.pod_template_hash}" if pod.pod_template_hash else None
        if parent is None and suffix and owner.name.endswith(suffix) and len(owner.name) > len(suffix):
            return WorkloadRef(kind=TargetKind.DEPLOYMENT, namespace=namespace, name=owner.name[: -len(suffix)])
        return WorkloadRef(kind=TargetKind.REPLICA_SET, namespace=namespace, name=owner.name)
    if owner.kind == "StatefulSet" and pod.lws_name:  # LeaderWorkerSet runs its groups as StatefulSets
        return WorkloadRef(kind=TargetKind.LEADER_WORKER_SET, namespace=namespace, name=pod.lws_name)
    kind = _DIRECT.get(owner.kind)
    if kind is None:
        return WorkloadRef(kind=TargetKind.POD, namespace=namespace, name=pod.name)
    return WorkloadRef(kind=kind, namespace=namespace, name=owner.name)


class WorkloadCache:
    """pod UID -> workload, least recently used first out, at most `capacity` entries.

    A pod's owners never change, so an entry stays right for the pod's life; the bound keeps
    a churning cluster from growing it."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, WorkloadRef] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def resolve(self, pod: PodInfo, replicaset_owner: ReplicaSetOwner | None = None) -> WorkloadRef:
        cached = self._entries.get(pod.uid)
        if cached is not None:
            self._entries.move_to_end(pod.uid)
            self.hits += 1
            return cached
        self.misses += 1
        workload = resolve_workload(pod, replicaset_owner)
        if pod.uid:
            self._entries[pod.uid] = workload
            if len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return workload
