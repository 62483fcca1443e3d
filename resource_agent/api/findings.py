"""Findings: what the analysis concludes, and the closed set of actions.

A finding is identified by (node, rule, target). That identity names the
ResourceRecommendation deterministically, so a restart, a second operator
replica or a replayed event never duplicates one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

from pydantic import Field, model_validator

from resource_agent.api.base import ApiModel


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "critical": 2}[self.value]


class Category(StrEnum):
    GPU = "gpu"
    CPU = "cpu"
    MEMORY = "memory"
    DISK = "disk"
    NETWORK = "network"
    CACHE = "cache"
    HARDWARE = "hardware"
    SERVING = "serving"  # the serving engine's own work: queue, KV cache, latency


class ActionType(StrEnum):
    """The closed set of actions a recommendation may carry."""

    INVESTIGATE = "investigate"
    RECLAIM_GPU_MEMORY = "reclaim-gpu-memory"
    CONSOLIDATE_GPU_WORKLOADS = "consolidate-gpu-workloads"
    REBALANCE_GPU_WORKLOADS = "rebalance-gpu-workloads"
    REDUCE_GPU_MEMORY_USAGE = "reduce-gpu-memory-usage"
    CHECK_COOLING = "check-cooling"
    REVIEW_POWER_LIMIT = "review-power-limit"
    RESET_APPLICATION_CLOCKS = "reset-application-clocks"
    RESTART_WORKLOAD = "restart-workload"
    RESET_GPU = "reset-gpu"
    DRAIN_NODE = "drain-node"
    DRAIN_AND_REBOOT_NODE = "drain-and-reboot-node"
    RUN_ECC_WORKFLOW = "run-ecc-workflow"
    CHECK_NVLINK = "check-nvlink"
    CHECK_PCIE_LINK = "check-pcie-link"
    ADD_CPU_CAPACITY = "add-cpu-capacity"
    ADD_MEMORY_CAPACITY = "add-memory-capacity"
    FREE_DISK_SPACE = "free-disk-space"
    REDUCE_DISK_IO = "reduce-disk-io"
    CHECK_NETWORK = "check-network"
    MIGRATE_WORKLOAD = "migrate-workload"
    SET_LMCACHE_CONFIG = "set-lmcache-config"
    DISABLE_LMCACHE = "disable-lmcache"
    CHECK_LMCACHE_BACKEND = "check-lmcache-backend"
    SCALE_SERVING_REPLICAS = "scale-serving-replicas"
    TUNE_SERVING_ENGINE = "tune-serving-engine"
    # workload right-sizing (the operator never changes the workload; people carry these out)
    SCALE_DOWN_WORKLOAD = "scale-down-workload"
    REDUCE_GPU_REQUEST = "reduce-gpu-request"
    SHARE_GPU = "share-gpu"
    PACK_WORKLOAD_REPLICAS = "pack-workload-replicas"


# How disruptive, and so how strong, each action is: strongest first. When findings that
# share a root cause are correlated into one, its action is the strongest of theirs
# (analysis.correlate). Every action type is listed exactly once (a test checks it).
ACTION_STRENGTH_ORDER: tuple[ActionType, ...] = (
    # take the node out of service
    ActionType.DRAIN_AND_REBOOT_NODE,
    ActionType.DRAIN_NODE,
    # take one GPU out of service
    ActionType.RUN_ECC_WORKFLOW,  # a GPU reset to remap rows, an RMA when that fails
    ActionType.RESET_GPU,
    # physical checks (hands on the machine)
    ActionType.CHECK_PCIE_LINK,
    ActionType.CHECK_NVLINK,
    ActionType.CHECK_COOLING,
    # move or restart the application
    ActionType.MIGRATE_WORKLOAD,
    ActionType.RESTART_WORKLOAD,
    # change capacity, placement or settings
    ActionType.ADD_CPU_CAPACITY,
    ActionType.ADD_MEMORY_CAPACITY,
    ActionType.FREE_DISK_SPACE,
    ActionType.REDUCE_DISK_IO,
    ActionType.CHECK_NETWORK,
    ActionType.CHECK_LMCACHE_BACKEND,
    ActionType.SCALE_SERVING_REPLICAS,
    ActionType.REVIEW_POWER_LIMIT,
    ActionType.RESET_APPLICATION_CLOCKS,
    ActionType.REDUCE_GPU_MEMORY_USAGE,
    ActionType.RECLAIM_GPU_MEMORY,
    ActionType.SCALE_DOWN_WORKLOAD,
    ActionType.REDUCE_GPU_REQUEST,
    ActionType.SHARE_GPU,
    ActionType.PACK_WORKLOAD_REPLICAS,
    ActionType.REBALANCE_GPU_WORKLOADS,
    ActionType.CONSOLIDATE_GPU_WORKLOADS,
    ActionType.TUNE_SERVING_ENGINE,
    ActionType.SET_LMCACHE_CONFIG,
    ActionType.DISABLE_LMCACHE,
    # look into it
    ActionType.INVESTIGATE,
)


def action_strength(kind: ActionType) -> int:
    """Higher is stronger (more disruptive); see ACTION_STRENGTH_ORDER."""
    return len(ACTION_STRENGTH_ORDER) - ACTION_STRENGTH_ORDER.index(kind)


ParamValue = str | int | float | bool


@dataclass(frozen=True)
class ActionSpec:
    """What an action type takes, and whether the operator can carry it out."""

    required: dict[str, type]
    optional: dict[str, type]
    operator_applies: bool
    description: str


_GPU: dict[str, type] = {"gpuIndex": int}
ACTION_CATALOG: dict[ActionType, ActionSpec] = {
    ActionType.INVESTIGATE: ActionSpec({}, {"hint": str}, False, "Look into it; no automatic change."),
    ActionType.RECLAIM_GPU_MEMORY: ActionSpec(_GPU, {"memoryBytes": int}, False, "Free GPU memory held by idle work."),
    ActionType.CONSOLIDATE_GPU_WORKLOADS: ActionSpec({}, {"gpuIndex": int, "gpuCount": int}, False, "Pack work onto fewer GPUs or share them (MIG, time-slicing)."),
    ActionType.REBALANCE_GPU_WORKLOADS: ActionSpec({}, {"fromGpuIndex": int, "toGpuIndex": int}, False, "Spread work evenly across the node's GPUs."),
    ActionType.REDUCE_GPU_MEMORY_USAGE: ActionSpec(_GPU, {"targetPercent": float}, False, "Lower memory use (e.g. vLLM gpu_memory_utilization, batch size)."),
    ActionType.CHECK_COOLING: ActionSpec(_GPU, {}, False, "Check airflow, fans and inlet temperature."),
    ActionType.REVIEW_POWER_LIMIT: ActionSpec(_GPU, {"currentLimitWatts": float}, False, "Review the power cap set on the GPU."),
    ActionType.RESET_APPLICATION_CLOCKS: ActionSpec(_GPU, {}, False, "Reset application clocks or find what holds them low."),
    ActionType.RESTART_WORKLOAD: ActionSpec({}, {"gpuIndex": int, "pid": int, "podUid": str}, False, "Restart the application using the GPU."),
    ActionType.RESET_GPU: ActionSpec(_GPU, {}, False, "Reset the GPU (nvidia-smi -r) once nothing uses it."),
    ActionType.DRAIN_NODE: ActionSpec({}, {"reason": str}, False, "Cordon and drain the node for service."),
    ActionType.DRAIN_AND_REBOOT_NODE: ActionSpec({}, {"reason": str}, False, "Drain the node and reboot it."),
    ActionType.RUN_ECC_WORKFLOW: ActionSpec(_GPU, {}, False, "Follow NVIDIA's ECC/row-remap workflow (reset to remap, then RMA if it fails)."),
    ActionType.CHECK_NVLINK: ActionSpec(_GPU, {}, False, "Check NVLink/NVSwitch health and fabric manager."),
    ActionType.CHECK_PCIE_LINK: ActionSpec(_GPU, {"expectedGeneration": int, "expectedWidth": int}, False, "Reseat the GPU or check the riser, slot and BIOS link settings."),
    ActionType.ADD_CPU_CAPACITY: ActionSpec({}, {"reason": str}, False, "Give the GPU workloads more CPU (requests, cores, fewer co-tenants)."),
    ActionType.ADD_MEMORY_CAPACITY: ActionSpec({}, {"reason": str}, False, "Relieve memory pressure (limits, fewer co-tenants, more RAM)."),
    ActionType.FREE_DISK_SPACE: ActionSpec({"device": str}, {"mountpoint": str}, False, "Free or grow the filesystem."),
    ActionType.REDUCE_DISK_IO: ActionSpec({"device": str}, {}, False, "Move I/O-heavy work elsewhere or use faster storage."),
    ActionType.CHECK_NETWORK: ActionSpec({"interface": str}, {}, False, "Check cabling, NIC firmware and switch ports."),
    ActionType.MIGRATE_WORKLOAD: ActionSpec({}, {"reason": str}, False, "Move the workload off this (virtual) host."),
    ActionType.SET_LMCACHE_CONFIG: ActionSpec({"instance": str, "key": str, "value": str}, {"previous": str, "runtimeEffective": bool}, True, "Change one LMCache setting."),
    ActionType.DISABLE_LMCACHE: ActionSpec({"instance": str}, {}, False, "Turn the cache off to free its memory."),
    ActionType.CHECK_LMCACHE_BACKEND: ActionSpec({"instance": str}, {"backend": str}, False, "Check the remote cache backend."),
    ActionType.SCALE_SERVING_REPLICAS: ActionSpec({"instance": str, "direction": str}, {"model": str, "reason": str}, False, "Add replicas of a serving engine (direction up), or consolidate / scale it to zero (down, zero)."),
    ActionType.TUNE_SERVING_ENGINE: ActionSpec({"instance": str, "setting": str}, {"value": str, "previous": str, "alternatives": str, "reason": str}, False, "Change a serving engine setting (vLLM gpu_memory_utilization, max_num_seqs, max_num_batched_tokens, max_model_len; SGLang --mem-fraction-static, --max-running-requests), or the engine's CPU or routing."),
    ActionType.SCALE_DOWN_WORKLOAD: ActionSpec({"replicas": int}, {"currentReplicas": int}, False, "Reduce the workload's replicas (0: scale to zero) to free GPUs it holds idle."),
    ActionType.REDUCE_GPU_REQUEST: ActionSpec({"gpuCount": int}, {"currentGpuCount": int}, False, "Lower the nvidia.com/gpu request per pod to what it uses."),
    ActionType.SHARE_GPU: ActionSpec({}, {"mode": str, "currentGpuCount": int}, False, "Run the workload on a shared GPU (MIG slice or time-slicing) instead of whole GPUs."),
    ActionType.PACK_WORKLOAD_REPLICAS: ActionSpec(
        {"nodesFreed": int},
        {"gpusFreed": int, "currentNodes": int, "targetNodes": int, "podsToMove": int, "vacateNodes": str,
         "podAffinity": str, "topologySpread": str, "schedulerScoring": str},
        False, "Schedule the workload's replicas onto fewer nodes (podAffinity, no hostname spread, MostAllocated scoring) so whole nodes stay free.",
    ),
}


class Action(ApiModel):
    type: ActionType
    """What to do, from a closed set of action types."""
    parameters: dict[str, ParamValue] = Field(default_factory=dict)
    """Validated parameters of the action (e.g. gpuIndex, instance, key, value)."""

    @model_validator(mode="after")
    def _parameters_match_catalog(self) -> Action:
        spec = ACTION_CATALOG[self.type]
        missing = sorted(set(spec.required) - set(self.parameters))
        if missing:
            raise ValueError(f"action {self.type.value} needs parameters {missing}")
        allowed = spec.required | spec.optional
        for name, value in self.parameters.items():
            expected = allowed.get(name)
            if expected is None:
                raise ValueError(f"action {self.type.value} takes no parameter {name!r}")
            if not _is_instance(value, expected):
                raise ValueError(f"action {self.type.value} parameter {name!r} must be {expected.__name__}")
        return self

    @property
    def operator_applies(self) -> bool:
        return ACTION_CATALOG[self.type].operator_applies


def _is_instance(value: ParamValue, expected: type) -> bool:
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


class TargetKind(StrEnum):
    NODE = "Node"
    GPU = "GPU"
    PROCESS = "Process"
    DISK = "Disk"
    NETWORK_INTERFACE = "NetworkInterface"
    LMCACHE_INSTANCE = "LMCacheInstance"
    SERVING_INSTANCE = "ServingInstance"
    # workloads (namespaced; resource_agent.workloads.owners resolves a pod to one of these)
    DEPLOYMENT = "Deployment"
    REPLICA_SET = "ReplicaSet"  # a ReplicaSet no Deployment owns
    STATEFUL_SET = "StatefulSet"
    DAEMON_SET = "DaemonSet"
    JOB = "Job"
    LEADER_WORKER_SET = "LeaderWorkerSet"
    POD = "Pod"


class Target(ApiModel):
    kind: TargetKind
    """What the recommendation is about: Node, GPU, Process, Disk, NetworkInterface or LMCacheInstance."""
    name: str
    """Name of the target (node, GPU, pod, LMCache instance, disk or interface)."""
    namespace: str | None = None
    """Namespace of the target, for namespaced targets."""
    gpu_index: int | None = None
    """NVML index of the GPU, for GPU targets."""
    gpu_uuid: str | None = None
    """UUID of the GPU, for GPU targets."""
    pid: int | None = None
    """Process id, for process targets."""
    pod_uid: str | None = None
    """UID of the pod, for pod targets."""
    lmcache_instance: str | None = None
    """The LMCache instance, for cache targets."""
    serving_instance: str | None = None
    """The serving engine (endpoint | model | engine index), for serving targets."""

    def key(self) -> str:
        """A stable identity string: kind/namespace/name (+ GPU uuid, + serving engine and model)."""
        parts = [self.kind.value, self.namespace or "", self.name]
        if self.gpu_uuid:
            parts.append(self.gpu_uuid)
        if self.serving_instance:
            parts.append(self.serving_instance)
        return "/".join(parts)


class Evidence(ApiModel):
    metric: str
    """The summary field the rule read, e.g. gpu.smUtilizationPercent."""
    statistic: str
    """Which window statistic: mean, p95, max, min, last, increase, share or count."""
    observed: float
    """The value observed."""
    threshold: float
    """The rule's threshold."""
    comparison: str = ">="
    """How observed relates to threshold when the rule fires (>=, <=, ...)."""
    window_seconds: float | None = None
    """Length of the window the statistic covers, in seconds."""
    unit: str | None = None
    """Unit of observed and threshold."""
    samples: int | None = None
    """How many observations the statistic is over (workload usage histograms)."""


class Sensitive(ApiModel):
    """A value in a finding that must be masked before leaving the cluster."""

    unmasked: str
    masked: str


class CorrelatedFinding(ApiModel):
    """A finding folded into another one because they share a root cause (analysis.correlate)."""

    rule: str = Field(min_length=1, max_length=128)
    """The rule of the folded-in finding."""
    severity: Severity
    """Its severity."""
    summary: str = Field(max_length=1024)
    """Its summary."""
    action: ActionType
    """The action it alone would have recommended."""
    evidence: list[Evidence] = Field(default_factory=list, max_length=16)
    """Its evidence."""


class Finding(ApiModel):
    rule: str
    category: Category
    severity: Severity
    node_name: str
    target: Target
    summary: str
    evidence: list[Evidence] = Field(default_factory=list)
    action: Action
    expected_impact: str
    sensitive: list[Sensitive] = Field(default_factory=list)
    # the other findings on the same target with the same root cause; this finding carries
    # the strongest action of them all
    correlated: list[CorrelatedFinding] = Field(default_factory=list, max_length=16)
    gpu_hours_per_day_saved: float | None = None  # estimated saving of a workload right-sizing finding

    def rules(self) -> list[str]:
        """This finding's rule and those folded into it."""
        return [self.rule, *(item.rule for item in self.correlated)]

    def identity(self) -> tuple[str, str, str]:
        return (self.node_name, self.rule, self.target.key())

    def resource_name(self) -> str:
        return recommendation_name(self.node_name, self.rule, self.target.key())


_DNS_INVALID = re.compile(r"[^a-z0-9-]+")


def recommendation_name(node: str, rule: str, target_key: str) -> str:
    """Deterministic DNS-1123 name for (node, rule, target); at most 253 chars."""
    digest = hashlib.sha256(f"{node}\0{rule}\0{target_key}".encode()).hexdigest()[:10]
    readable = _DNS_INVALID.sub("-", f"{node}-{rule}".lower()).strip("-")[:200].strip("-")
    return f"{readable}-{digest}"


class Scores(ApiModel):
    """Per-resource efficiency and saturation and overall node health, each 0-100 (see docs/scores.md)."""

    efficiency: dict[str, float] = Field(default_factory=dict)  # "gpu", "cpu", "memory", "cache": high = well used
    saturation: dict[str, float] = Field(default_factory=dict)  # "cpu", "memory": high = work waits for it
    health: float


class Analysis(ApiModel):
    """The analysis of one node's summary: ranked findings and scores."""

    node_name: str
    findings: list[Finding] = Field(default_factory=list)
    scores: Scores
