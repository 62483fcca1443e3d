"""Long-horizon GPU usage per workload: the checkpoint custom resource (like VPA's VerticalPodAutoscalerCheckpoint).

The operator keeps, per workload, decaying usage histograms (`resource_agent.workloads.histogram`)
in memory and checkpoints them into one `WorkloadUsageCheckpoint` per workload, in the workload's
namespace, so a restart (or a new active replica) loses no history. The checkpoint has no status
subresource: the operator writes it whole with one server-side apply.
"""

from __future__ import annotations

from pydantic import Field

from resource_agent.api.base import ApiModel
from resource_agent.api.findings import TargetKind
from resource_agent.api.timestamps import Timestamp

CHECKPOINT_PLURAL = "workloadusagecheckpoints"
CHECKPOINT_KIND = "WorkloadUsageCheckpoint"
MAX_CHECKPOINT_WEIGHT = 10_000  # bucket weights are stored scaled so the largest is this (as VPA does)


class WorkloadRef(ApiModel):
    """A workload: what a pod's owner references resolve to (or the pod itself)."""

    kind: TargetKind
    """The workload's kind (Deployment, StatefulSet, DaemonSet, Job, LeaderWorkerSet, ReplicaSet or Pod)."""
    namespace: str = Field(min_length=1, max_length=63)
    """The workload's namespace."""
    name: str = Field(min_length=1, max_length=253)
    """The workload's name."""

    def key(self) -> str:
        return f"{self.kind.value}/{self.namespace}/{self.name}"


class HistogramCheckpoint(ApiModel):
    """A decaying histogram on the wire: sparse bucket weights scaled to at most MAX_CHECKPOINT_WEIGHT."""

    reference_timestamp: float
    """Unix seconds; weights are relative to 2^((t - reference) / half-life)."""
    total_weight: float = Field(ge=0)
    """Sum of the bucket weights before scaling."""
    bucket_weights: dict[str, int] = Field(default_factory=dict)
    """Bucket index -> scaled weight (0 omitted)."""


class WorkloadUsage(ApiModel):
    """A workload's usage over the horizon."""

    first_seen: float
    """Unix seconds of the first observation kept."""
    last_seen: float
    """Unix seconds of the latest observation."""
    last_busy: float | None = None
    """Last observation with a GPU at or above the busy floor."""
    samples: int = Field(default=0, ge=0)
    """GPU-window observations added."""
    gpus_per_pod: int = Field(default=0, ge=0)
    """GPUs (nvidia.com/gpu) requested per pod, as last seen."""
    replicas: int = Field(default=0, ge=0)
    """Pods holding GPUs, as last seen."""
    sm_utilization_percent: HistogramCheckpoint
    """Per GPU and report window: mean SM activity."""
    memory_used_percent: HistogramCheckpoint
    """Per GPU and report window: max memory used, % of the GPU's."""
    gpus_used_per_pod: HistogramCheckpoint
    """Per pod and report window: GPUs that did any work."""
    last_requests: float | None = None
    """Unix seconds of the latest report in which a serving engine of the workload had requests (running, waiting or finished)."""
    serving_samples: int | None = Field(default=None, ge=0)
    """Serving-engine window observations added (absent: no engine seen)."""
    requests_waiting: HistogramCheckpoint | None = None
    """Per serving engine and report window: p95 of the requests waiting in the engine's queue (absent: no engine seen)."""
    kv_cache_usage_percent: HistogramCheckpoint | None = None
    """Per serving engine and report window: p95 of the engine's KV-cache use, percent (absent: no engine seen)."""


class WorkloadUsageCheckpointSpec(ApiModel):
    """Which workload the checkpoint is for, and the horizon its histograms decay over."""

    target: WorkloadRef
    """The workload this history belongs to."""
    horizon_seconds: float = Field(gt=0)
    """How much history a recommendation needs and keeps."""
    half_life_seconds: float = Field(gt=0)
    """Half-life of the decaying histograms, in seconds."""


class WorkloadUsageCheckpointStatus(ApiModel):
    """The checkpointed usage (written whole by the operator)."""

    checkpointed_at: Timestamp
    """When the operator wrote this checkpoint."""
    usage: WorkloadUsage
    """The workload's usage histograms over the horizon."""
