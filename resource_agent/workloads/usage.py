"""Long-horizon GPU usage per workload, and the right-sizing findings it supports (pure).

Every report adds, for each GPU it attributes to a pod, one observation to the histograms of the
pod's workload: the window's mean SM activity and its highest memory use, weighted by the seconds
of the window not seen before for that GPU (reports overlap: a 5-minute window every minute), and
split between the pods sharing the GPU. Per pod it adds how many of its GPUs did any work. For each
serving engine (vLLM, SGLang) the report names by pod, the engine's pod is resolved to its workload
the same way, and the window's p95 of requests waiting and of KV-cache use go into two more
histograms (created only for workloads that run an engine), with the time the engine last had
requests. The histograms decay (half-life = horizon / 7 by default: one day for the default week),
so what counts is the recent horizon, in bounded memory: a workload is three (five with a serving
engine) fixed histograms, a few numbers, and the names of its (at most `max_pods_per_workload`)
recent pods.

Findings, once a workload's history covers the horizon:
- workload.gpu-idle: its GPUs did no work for the whole horizon -> scale to zero (nothing loaded),
  fewer replicas (a model loaded on several), or a shared GPU (MIG or time-slicing). Never while
  the workload's serving engine had requests within the horizon.
- workload.gpu-over-requested: its pods request more GPUs than they use at p95 -> a lower request.
  Not while its engine's queue (requests waiting, p95 >= 1) or KV cache (p95 above what fewer GPUs
  would hold) shows demand.
Each carries its evidence (horizon, p95, samples) and the GPU-hours per day it would free.
Nothing here changes a workload; people decide (the usual decision flow).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

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
from resource_agent.api.samples import GpuAllocation
from resource_agent.api.summary import GpuSummary, NodeSummary, ServingInstanceSummary
from resource_agent.api.usage import HistogramCheckpoint, WorkloadRef, WorkloadUsage, WorkloadUsageCheckpointSpec
from resource_agent.workloads.histogram import GPU_COUNT_BUCKETS, PERCENT_BUCKETS, QUEUE_BUCKETS, Buckets, DecayingHistogram
from resource_agent.workloads.owners import PodInfo

WORKLOADS_NODE = "workloads"  # the pseudo-node of workload recommendations (like the fleet's "fleet")
IDLE_RULE = "workload.gpu-idle"
OVER_REQUESTED_RULE = "workload.gpu-over-requested"
HOURS_PER_DAY = 24.0
MIG_SLICES = 7  # the smallest MIG profile is 1/7 of an A100/H100/H200/B200
MIG_MODELS = ("A100", "A30", "H100", "H200", "H800", "B200", "GB200", "B100")
SCALABLE = frozenset({TargetKind.DEPLOYMENT, TargetKind.STATEFUL_SET, TargetKind.REPLICA_SET, TargetKind.LEADER_WORKER_SET})
DEFAULT_HORIZON_SECONDS = 7 * 86400.0
DEFAULT_PACKING_AFTER_SECONDS = 3600.0


@dataclass(frozen=True)
class UsageSettings:
    horizon_seconds: float = DEFAULT_HORIZON_SECONDS
    half_life_seconds: float | None = None  # default: horizon / 7
    busy_sm_percent: float = 5.0  # a GPU whose window max SM activity reaches this did work
    idle_memory_percent: float = 5.0  # below this (p95) nothing is loaded on the GPUs
    percentile: float = 0.95
    stale_seconds: float = 900.0  # a workload not seen for this long gets no finding (its pods are gone)
    kv_cache_full_percent: float = 90.0  # KV-cache use (p95) that fewer GPUs' share of it may not exceed
    packing_persist_seconds: float = DEFAULT_PACKING_AFTER_SECONDS  # workload.gpu-fragmenting: how long the spread must stand
    replica_window_seconds: float = 300.0  # pods seen within this of the workload's last observation are its replicas
    max_pods_per_workload: int = 256
    max_workloads: int = 10_000

    @property
    def half_life(self) -> float:
        return self.half_life_seconds if self.half_life_seconds else self.horizon_seconds / 7.0


class WorkloadState:
    """One workload's usage: three bounded histograms and a few numbers."""

    __slots__ = ("dirty", "first_seen", "gpu_model", "gpus_per_pod", "gpus_used", "kv_cache", "last_busy", "last_requests",
                 "last_seen", "memory", "pods", "ref", "samples", "serving_samples", "sm", "waiting")

    def __init__(self, ref: WorkloadRef, now: float, settings: UsageSettings) -> None:
        self.ref = ref
        self.first_seen = now
        self.last_seen = now
        self.last_busy: float | None = None
        self.samples = 0
        self.gpus_per_pod = 0
        self.gpu_model: str | None = None
        half_life = settings.half_life
        self.sm = DecayingHistogram(PERCENT_BUCKETS, half_life, now)
        self.memory = DecayingHistogram(PERCENT_BUCKETS, half_life, now)
        self.gpus_used = DecayingHistogram(GPU_COUNT_BUCKETS, half_life, now)
        # serving-engine demand: created when the workload's first engine is seen (most workloads run none)
        self.waiting: DecayingHistogram | None = None
        self.kv_cache: DecayingHistogram | None = None
        self.last_requests: float | None = None
        self.serving_samples = 0
        self.pods: dict[str, float] = {}  # pod name -> last seen
        self.dirty = True

    def replicas(self, settings: UsageSettings) -> int:
        return sum(1 for seen in self.pods.values() if self.last_seen - seen <= settings.replica_window_seconds)

    def see_pod(self, name: str, now: float, settings: UsageSettings) -> None:
        self.pods[name] = now
        if len(self.pods) > settings.max_pods_per_workload:
            oldest = min(self.pods, key=self.pods.__getitem__)
            del self.pods[oldest]

    # --- checkpoints -------------------------------------------------------------------

    def usage(self, settings: UsageSettings) -> WorkloadUsage:
        return WorkloadUsage(
            first_seen=self.first_seen, last_seen=self.last_seen, last_busy=self.last_busy, samples=self.samples,
            gpus_per_pod=self.gpus_per_pod, replicas=self.replicas(settings),
            sm_utilization_percent=self.sm.checkpoint(), memory_used_percent=self.memory.checkpoint(),
            gpus_used_per_pod=self.gpus_used.checkpoint(),
            last_requests=self.last_requests, serving_samples=self.serving_samples or None,
            requests_waiting=self.waiting.checkpoint() if self.waiting is not None else None,
            kv_cache_usage_percent=self.kv_cache.checkpoint() if self.kv_cache is not None else None,
        )

    def observe_serving(self, engine: ServingInstanceSummary, weight: float, now: float, settings: UsageSettings) -> None:
        """One serving engine's window: its queue and KV-cache p95, and whether it had requests."""
        if self.waiting is None or self.kv_cache is None:
            self.waiting = DecayingHistogram(QUEUE_BUCKETS, settings.half_life, now)
            self.kv_cache = DecayingHistogram(PERCENT_BUCKETS, settings.half_life, now)
        if engine.requests_waiting is not None:
            self.waiting.add(engine.requests_waiting.p95, weight, now)
        if engine.kv_cache_usage_percent is not None:
            self.kv_cache.add(engine.kv_cache_usage_percent.p95, weight, now)
        if had_requests(engine):
            self.last_requests = now if self.last_requests is None else max(self.last_requests, now)
        self.serving_samples += 1
        self.last_seen = max(self.last_seen, now)
        self.dirty = True

    def spec(self, settings: UsageSettings) -> WorkloadUsageCheckpointSpec:
        return WorkloadUsageCheckpointSpec(target=self.ref, horizon_seconds=settings.horizon_seconds, half_life_seconds=settings.half_life)

    @classmethod
    def restore(cls, ref: WorkloadRef, usage: WorkloadUsage, settings: UsageSettings) -> WorkloadState:
        state = cls(ref, usage.first_seen, settings)
        state.last_seen = usage.last_seen
        state.last_busy = usage.last_busy
        state.samples = usage.samples
        state.gpus_per_pod = usage.gpus_per_pod
        half_life = settings.half_life
        state.sm = DecayingHistogram.from_checkpoint(usage.sm_utilization_percent, PERCENT_BUCKETS, half_life)
        state.memory = DecayingHistogram.from_checkpoint(usage.memory_used_percent, PERCENT_BUCKETS, half_life)
        state.gpus_used = DecayingHistogram.from_checkpoint(usage.gpus_used_per_pod, GPU_COUNT_BUCKETS, half_life)
        state.waiting = _restored(usage.requests_waiting, QUEUE_BUCKETS, half_life)
        state.kv_cache = _restored(usage.kv_cache_usage_percent, PERCENT_BUCKETS, half_life)
        state.last_requests = usage.last_requests
        state.serving_samples = usage.serving_samples or 0
        # the pods are not checkpointed: the last replica count stands for them until new reports come
        for index in range(usage.replicas):
            state.pods[f"restored-{index}"] = usage.last_seen
        state.dirty = False
        return state


def _restored(checkpoint: HistogramCheckpoint | None, buckets: Buckets, half_life: float) -> DecayingHistogram | None:
    return DecayingHistogram.from_checkpoint(checkpoint, buckets, half_life) if checkpoint is not None else None


def had_requests(engine: ServingInstanceSummary) -> bool:
    """Whether the engine had any request in the window: running, waiting or finished."""
    return any(
        value is not None and value > 0
        for value in (
            engine.requests_running.max if engine.requests_running else None,
            engine.requests_waiting.max if engine.requests_waiting else None,
            engine.requests_finished,
        )
    )


class PodKey(Protocol):
    """What names a pod in a report: a GPU's holder (GpuAllocation) or a serving engine (ServingInstanceSummary)."""

    @property
    def namespace(self) -> str | None: ...

    @property
    def pod(self) -> str | None: ...

    @property
    def pod_uid(self) -> str | None: ...


PodLookup = Callable[[PodKey], PodInfo | None]
Resolve = Callable[[PodInfo], WorkloadRef]


class UsageTracker:
    """Usage per workload, fed by reports; bounded in workloads (oldest dropped) and per workload."""

    def __init__(self, settings: UsageSettings = UsageSettings()) -> None:
        self.settings = settings
        self.workloads: dict[str, WorkloadState] = {}
        self._gpu_seen_until: dict[str, float] = {}  # GPU uuid -> end of the last window observed
        self._engine_seen_until: dict[str, float] = {}  # serving engine key -> end of the last window observed

    def __len__(self) -> int:
        return len(self.workloads)

    def workload(self, ref: WorkloadRef) -> WorkloadState | None:
        return self.workloads.get(ref.key())

    def restore(self, ref: WorkloadRef, usage: WorkloadUsage) -> None:
        """Load a checkpoint (at start); a workload already observed in this run keeps its state."""
        self.workloads.setdefault(ref.key(), WorkloadState.restore(ref, usage, self.settings))

    def observe(self, summary: NodeSummary, lookup: PodLookup, resolve: Resolve) -> int:
        """Add a report's GPU observations; returns how many were added."""
        end, start = summary.window.end, summary.window.start
        added = 0
        per_pod: dict[tuple[str, str], tuple[WorkloadState, int, int, float, PodInfo | None]] = {}
        for gpu in summary.gpu.devices:
            if not gpu.allocated_to or gpu.sm_utilization_percent is None:
                continue
            seen_until = self._gpu_seen_until.get(gpu.uuid, float("-inf"))
            weight = end - max(start, seen_until)
            if weight <= 0 and seen_until >= end:
                continue  # this window was observed already
            weight = max(weight, summary.window.interval_seconds, 1.0)
            self._gpu_seen_until[gpu.uuid] = end
            holders = [(allocation, lookup(allocation)) for allocation in gpu.allocated_to]
            share = weight / len(holders)
            busy = gpu.sm_utilization_percent.max >= self.settings.busy_sm_percent
            for allocation, pod in holders:
                ref = resolve(pod) if pod is not None else _bare_pod(allocation)
                if ref is None:
                    continue
                state = self._state(ref, end)
                self._add(state, gpu, share, end, busy)
                added += 1
                pod_name = pod.name if pod is not None else (allocation.pod or allocation.pod_uid or "")
                key = (ref.key(), pod_name)
                _, used, held, pod_weight, _ = per_pod.get(key, (state, 0, 0, 0.0, pod))
                per_pod[key] = (state, used + int(busy), held + 1, max(pod_weight, weight), pod)
        for (_, pod_name), (state, used, held, pod_weight, pod) in per_pod.items():
            state.gpus_used.add(used, pod_weight, end)
            state.gpus_per_pod = pod.gpus if pod is not None and pod.gpus > 0 else held
            state.see_pod(pod_name, end, self.settings)
        added += self._observe_serving(summary, lookup, resolve)
        self._bound()
        return added

    def _observe_serving(self, summary: NodeSummary, lookup: PodLookup, resolve: Resolve) -> int:
        """Serving-engine demand: each engine named by its pod, into its workload's queue and KV-cache histograms."""
        end, start = summary.window.end, summary.window.start
        added = 0
        for engine in summary.serving.instances:
            if not engine.reachable or engine.samples <= 0 or not (engine.pod or engine.pod_uid):
                continue
            key = engine.key()
            seen_until = self._engine_seen_until.get(key, float("-inf"))
            if seen_until >= end:
                continue  # this window was observed already
            weight = max(end - max(start, seen_until), summary.window.interval_seconds, 1.0)
            pod = lookup(engine)
            ref = resolve(pod) if pod is not None else _holder_of(engine, summary)
            if ref is None:
                continue  # an engine whose pod holds no GPU the operator knows of: no workload to charge
            self._engine_seen_until[key] = end
            state = self._state(ref, end)
            state.observe_serving(engine, weight, end, self.settings)
            added += 1
        return added

    def _state(self, ref: WorkloadRef, now: float) -> WorkloadState:
        key = ref.key()
        state = self.workloads.get(key)
        if state is None:
            state = self.workloads[key] = WorkloadState(ref, now, self.settings)
        return state

    def _add(self, state: WorkloadState, gpu: GpuSummary, weight: float, now: float, busy: bool) -> None:
        assert gpu.sm_utilization_percent is not None
        state.sm.add(gpu.sm_utilization_percent.mean, weight, now)
        if gpu.memory_used_percent is not None:
            state.memory.add(gpu.memory_used_percent.max, weight, now)
        state.samples += 1
        state.last_seen = max(state.last_seen, now)
        state.gpu_model = gpu.name
        if busy:
            state.last_busy = now if state.last_busy is None else max(state.last_busy, now)
        state.dirty = True

    def _bound(self) -> None:
        excess = len(self.workloads) - self.settings.max_workloads
        if excess > 0:
            for key in sorted(self.workloads, key=lambda k: self.workloads[k].last_seen)[:excess]:
                del self.workloads[key]

    def forget_stale(self, now: float) -> list[WorkloadRef]:
        """Drop workloads not seen for a whole horizon (their checkpoints can go too), and engines long gone."""
        self._engine_seen_until = {
            key: until for key, until in self._engine_seen_until.items() if now - until <= self.settings.stale_seconds
        }
        gone = [key for key, state in self.workloads.items() if now - state.last_seen > self.settings.horizon_seconds]
        return [self.workloads.pop(key).ref for key in gone]

    def dirty(self) -> list[WorkloadState]:
        return [state for state in self.workloads.values() if state.dirty]

    def findings(self, now: float) -> list[Finding]:
        return [finding for state in self.workloads.values() for finding in workload_findings(state, self.settings, now)]


def _holder_of(engine: ServingInstanceSummary, summary: NodeSummary) -> WorkloadRef | None:
    """An engine whose pod the index does not know: the bare pod, if it holds one of the report's GPUs."""
    for gpu in summary.gpu.devices:
        for allocation in gpu.allocated_to:
            same_pod = engine.pod is not None and (allocation.namespace, allocation.pod) == (engine.namespace, engine.pod)
            same_uid = engine.pod_uid is not None and allocation.pod_uid == engine.pod_uid
            if same_pod or same_uid or (gpu.index in engine.gpu_indices and len(gpu.allocated_to) == 1):
                return _bare_pod(allocation)
    return None


def _bare_pod(allocation: GpuAllocation) -> WorkloadRef | None:
    """A holder the operator's pod index does not know (just deleted, or not requesting nvidia.com/gpu)."""
    if allocation.namespace and allocation.pod:
        return WorkloadRef(kind=TargetKind.POD, namespace=allocation.namespace, name=allocation.pod)
    return None  # a cgroup-only holder (pod UID) that no indexed pod has: nothing to name


# --- findings ----------------------------------------------------------------------------


def workload_findings(state: WorkloadState, settings: UsageSettings, now: float) -> list[Finding]:
    """The right-sizing finding of one workload, if its history covers the horizon."""
    horizon = settings.horizon_seconds
    if now - state.first_seen < horizon or now - state.last_seen > settings.stale_seconds or state.sm.empty:
        return []
    replicas = max(state.replicas(settings), 1)
    per_pod = max(state.gpus_per_pod, 1)
    allocated = replicas * per_pod
    sm_p95 = state.sm.percentile(settings.percentile)
    memory_p95 = state.memory.percentile(settings.percentile) if not state.memory.empty else 0.0
    served = state.last_requests is not None and now - state.last_requests < horizon  # its engine had requests
    idle = (state.last_busy is None or now - state.last_busy >= horizon) and sm_p95 <= settings.busy_sm_percent and not served
    evidence = [
        Evidence(metric="workload.gpu.sm_utilization_percent", statistic="p95", observed=sm_p95,
                 threshold=settings.busy_sm_percent, comparison="<=", window_seconds=horizon, unit="percent", samples=state.samples),
        Evidence(metric="workload.gpu.memory_used_percent", statistic="p95", observed=memory_p95,
                 threshold=settings.idle_memory_percent, comparison="<" if memory_p95 < settings.idle_memory_percent else ">=",
                 window_seconds=horizon, unit="percent", samples=state.samples),
        Evidence(metric="workload.gpus_allocated", statistic="last", observed=allocated, threshold=1, window_seconds=horizon),
    ]
    if state.serving_samples:
        evidence.append(Evidence(
            metric="workload.serving.seconds_since_requests", statistic="last",
            observed=round(now - state.last_requests) if state.last_requests is not None else horizon,
            threshold=horizon, comparison=">=", window_seconds=horizon, unit="seconds", samples=state.serving_samples,
        ))
    if idle:
        return [_idle_finding(state, settings, evidence, replicas, per_pod, allocated, sm_p95, memory_p95)]
    used_p95 = state.gpus_used.percentile(settings.percentile) - GPU_COUNT_BUCKETS.width  # bucket i holds exactly i GPUs
    needed = max(1, math.ceil(used_p95))
    if per_pod > needed and not _serving_demand(state, settings, needed / per_pod, evidence):
        evidence.insert(0, Evidence(metric="workload.gpus_used_per_pod", statistic="p95", observed=used_p95, threshold=per_pod,
                                    comparison="<", window_seconds=horizon, samples=state.samples))
        saved = (per_pod - needed) * replicas * HOURS_PER_DAY
        return [_finding(
            state, OVER_REQUESTED_RULE, Severity.INFO,
            f"{_name(state.ref)} requests {per_pod} GPUs per pod but its pods used at most {used_p95:.0f} at p95 over "
            f"{_days(horizon)}; {needed} per pod would do.",
            evidence, Action(type=ActionType.REDUCE_GPU_REQUEST, parameters={"gpuCount": needed, "currentGpuCount": per_pod}),
            saved, f"Frees {(per_pod - needed) * replicas} GPUs: ~{saved:.0f} GPU-hours per day.",
        )]
    return []


def _serving_demand(state: WorkloadState, settings: UsageSettings, kept_share: float, evidence: list[Evidence]) -> bool:
    """Whether the workload's serving engine shows demand that fewer GPUs would not carry: requests waiting
    at p95, or a KV cache fuller (p95) than `kept_share` of it could hold. Adds the serving evidence."""
    if state.waiting is None or state.kv_cache is None:
        return False
    horizon, samples = settings.horizon_seconds, state.serving_samples
    waiting_p95 = state.waiting.percentile(settings.percentile) if not state.waiting.empty else 0.0
    kv_p95 = state.kv_cache.percentile(settings.percentile) if not state.kv_cache.empty else 0.0
    queue_floor = QUEUE_BUCKETS.upper(0)  # p95 above the "nothing waiting" bucket: requests queue
    kv_limit = settings.kv_cache_full_percent * kept_share
    evidence += [
        Evidence(metric="workload.serving.requests_waiting", statistic="p95", observed=waiting_p95, threshold=queue_floor,
                 comparison="<=", window_seconds=horizon, samples=samples),
        Evidence(metric="workload.serving.kv_cache_usage_percent", statistic="p95", observed=kv_p95, threshold=round(kv_limit, 1),
                 comparison="<=", window_seconds=horizon, unit="percent", samples=samples),
    ]
    return waiting_p95 > queue_floor or kv_p95 > kv_limit


def _idle_finding(
    state: WorkloadState, settings: UsageSettings, evidence: list[Evidence], replicas: int, per_pod: int, allocated: int,
    sm_p95: float, memory_p95: float,
) -> Finding:
    horizon = _days(settings.horizon_seconds)
    scalable = state.ref.kind in SCALABLE or state.ref.kind in (TargetKind.POD, TargetKind.JOB)
    if memory_p95 < settings.idle_memory_percent and scalable:
        saved = allocated * HOURS_PER_DAY
        return _finding(
            state, IDLE_RULE, Severity.WARNING,
            f"{_name(state.ref)} holds {allocated} GPU(s) that did no work and held no memory for {horizon}; scale it to zero.",
            evidence, Action(type=ActionType.SCALE_DOWN_WORKLOAD, parameters={"replicas": 0, "currentReplicas": replicas}),
            saved, f"Frees {allocated} GPU(s): ~{saved:.0f} GPU-hours per day.",
        )
    if replicas > 1 and state.ref.kind in SCALABLE:
        saved = (replicas - 1) * per_pod * HOURS_PER_DAY
        return _finding(
            state, IDLE_RULE, Severity.WARNING,
            f"{_name(state.ref)} keeps {replicas} replicas on {allocated} GPU(s) that did no work for {horizon} "
            f"(memory held at p95 {memory_p95:.0f}%); one replica would do.",
            evidence, Action(type=ActionType.SCALE_DOWN_WORKLOAD, parameters={"replicas": 1, "currentReplicas": replicas}),
            saved, f"Frees {(replicas - 1) * per_pod} GPU(s): ~{saved:.0f} GPU-hours per day.",
        )
    mig = any(model in (state.gpu_model or "") for model in MIG_MODELS)
    needed = max(sm_p95, memory_p95, 1.0) / 100.0
    fraction = math.ceil(needed * MIG_SLICES) / MIG_SLICES if mig else math.ceil(needed * 4) / 4
    fraction = min(fraction, 1.0)
    saved = allocated * (1.0 - fraction) * HOURS_PER_DAY
    mode = "mig" if mig else "time-slicing"
    return _finding(
        state, IDLE_RULE, Severity.WARNING,
        f"{_name(state.ref)} holds {allocated} whole GPU(s) that did no work for {horizon} (memory held at p95 {memory_p95:.0f}%); "
        f"a shared GPU ({'a MIG slice' if mig else 'time-slicing'}, {fraction:.2f} of a GPU) would do.",
        evidence, Action(type=ActionType.SHARE_GPU, parameters={"mode": mode, "currentGpuCount": allocated}),
        saved, f"Frees ~{allocated * (1.0 - fraction):.2f} GPU(s): ~{saved:.0f} GPU-hours per day.",
    )


def _finding(
    state: WorkloadState, rule: str, severity: Severity, summary: str, evidence: list[Evidence], action: Action,
    saved: float, impact: str,
) -> Finding:
    ref = state.ref
    return Finding(
        rule=rule, category=Category.GPU, severity=severity, node_name=WORKLOADS_NODE,
        target=Target(kind=ref.kind, name=ref.name, namespace=ref.namespace),
        summary=summary, evidence=evidence, action=action, expected_impact=impact,
        gpu_hours_per_day_saved=round(saved, 1),
        sensitive=[Sensitive(unmasked=ref.name, masked="workload-0"), Sensitive(unmasked=ref.namespace, masked="namespace-0")],
    )


def _name(ref: WorkloadRef) -> str:
    return f"{ref.kind.value} {ref.namespace}/{ref.name}"


def _days(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.3g} day(s)"
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} hour(s)"
    return f"{seconds:.0f} s"


def allocated_idle_gpus(summaries: Iterable[NodeSummary], busy_sm_percent: float = 5.0) -> int:
    """GPUs held by a pod that did no work over their window (the fleet view counts them apart from free ones)."""
    return sum(
        1
        for summary in summaries
        for gpu in summary.gpu.devices
        if gpu.allocated_to and gpu.sm_utilization_percent is not None and gpu.sm_utilization_percent.max < busy_sm_percent
    )
