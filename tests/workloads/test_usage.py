from __future__ import annotations

from resource_agent.api.findings import ActionType, TargetKind
from resource_agent.api.samples import AllocationSource, GpuAllocation
from resource_agent.api.summary import NodeSummary, Window
from resource_agent.api.usage import WorkloadRef
from resource_agent.workloads.owners import OwnerRef, PodInfo, resolve_workload
from resource_agent.workloads.usage import IDLE_RULE, OVER_REQUESTED_RULE, UsageSettings, UsageTracker
from tests.analysis.analysis_builders import gpu, node, st

HOUR = 3600.0
SETTINGS = UsageSettings(horizon_seconds=2 * HOUR)


def pods(gpus_per_pod: int) -> dict[str, PodInfo]:
    return {
        f"web-{i}": PodInfo(namespace="llm", name=f"web-{i}", uid=f"u{i}", node_name="n1", phase="Running",
                            owners=(OwnerRef("ReplicaSet", "web-abc", True),), gpus=gpus_per_pod, pod_template_hash="abc")
        for i in range(2)
    }


def report(at: float, busy: dict[int, float], memory: float, holders: dict[int, str]) -> NodeSummary:
    devices = [
        gpu(index, sm_utilization_percent=st(busy.get(index, 0.0), max=busy.get(index, 0.0)),
            memory_used_percent=st(memory, max=memory),
            allocated_to=[GpuAllocation(namespace="llm", pod=holders[index], container="c", source=AllocationSource.KUBELET)]
            if index in holders else [])
        for index in range(4)
    ]
    return node(gpus=devices, window=Window(start=at - 300, end=at, samples=60, interval_seconds=5.0))


def feed(tracker: UsageTracker, infos: dict[str, PodInfo], busy: dict[int, float], memory: float, holders: dict[int, str],
         until: float) -> None:
    at = 300.0
    while at <= until:
        tracker.observe(report(at, busy, memory, holders), lambda a: infos.get(a.pod or ""), resolve_workload)
        at += 60.0


def test_idle_deployment_gets_scale_to_zero_after_the_horizon() -> None:
    tracker = UsageTracker(SETTINGS)
    holders = {0: "web-0", 1: "web-1"}
    feed(tracker, pods(1), {}, 0.5, holders, until=HOUR)
    assert tracker.findings(HOUR) == []  # history shorter than the horizon
    feed(tracker, pods(1), {}, 0.5, holders, until=2 * HOUR + 300)
    (finding,) = tracker.findings(2 * HOUR + 300)
    assert finding.rule == IDLE_RULE
    assert (finding.target.kind, finding.target.namespace, finding.target.name) == (TargetKind.DEPLOYMENT, "llm", "web")
    assert finding.action.type is ActionType.SCALE_DOWN_WORKLOAD and finding.action.parameters["replicas"] == 0
    assert finding.gpu_hours_per_day_saved == 48.0  # 2 GPUs x 24 h
    p95 = finding.evidence[0]
    assert p95.statistic == "p95" and p95.window_seconds == 2 * HOUR and p95.samples and p95.samples > 100


def test_idle_with_a_model_loaded_keeps_one_replica() -> None:
    tracker = UsageTracker(SETTINGS)
    feed(tracker, pods(1), {}, 60.0, {0: "web-0", 1: "web-1"}, until=2 * HOUR + 300)
    (finding,) = tracker.findings(2 * HOUR + 300)
    assert finding.action.parameters == {"replicas": 1, "currentReplicas": 2}
    assert finding.gpu_hours_per_day_saved == 24.0


def test_busy_workload_gets_nothing_and_one_busy_window_resets_idle() -> None:
    tracker = UsageTracker(SETTINGS)
    feed(tracker, pods(1), {0: 70.0, 1: 70.0}, 60.0, {0: "web-0", 1: "web-1"}, until=2 * HOUR + 300)
    assert tracker.findings(2 * HOUR + 300) == []


def test_over_requested_pods_get_a_lower_request() -> None:
    tracker = UsageTracker(SETTINGS)
    # each pod holds two GPUs and works on one of them
    feed(tracker, pods(2), {0: 80.0, 2: 80.0}, 60.0, {0: "web-0", 1: "web-0", 2: "web-1", 3: "web-1"}, until=2 * HOUR + 300)
    (finding,) = tracker.findings(2 * HOUR + 300)
    assert finding.rule == OVER_REQUESTED_RULE
    assert finding.action.type is ActionType.REDUCE_GPU_REQUEST
    assert finding.action.parameters == {"gpuCount": 1, "currentGpuCount": 2}
    assert finding.gpu_hours_per_day_saved == 48.0  # 1 GPU per pod x 2 pods x 24 h


def test_checkpoint_restore_keeps_history() -> None:
    tracker = UsageTracker(SETTINGS)
    feed(tracker, pods(1), {}, 0.5, {0: "web-0", 1: "web-1"}, until=2 * HOUR + 300)
    before = tracker.findings(2 * HOUR + 300)
    restored = UsageTracker(SETTINGS)
    for state in tracker.dirty():
        wire = state.usage(SETTINGS).to_wire()
        from resource_agent.api.usage import WorkloadUsage

        restored.restore(state.ref, WorkloadUsage.model_validate(wire))
    after = restored.findings(2 * HOUR + 300)
    assert [f.model_dump() for f in after] == [f.model_dump() for f in before]


def test_overlapping_windows_are_weighted_by_new_seconds_and_stale_workloads_are_forgotten() -> None:
    tracker = UsageTracker(SETTINGS)
    infos = pods(1)
    summary = report(600.0, {}, 0.5, {0: "web-0"})
    assert tracker.observe(summary, lambda a: infos.get(a.pod or ""), resolve_workload) == 1
    assert tracker.observe(summary, lambda a: infos.get(a.pod or ""), resolve_workload) == 0  # replayed event
    assert tracker.forget_stale(600.0 + 3 * HOUR) == [WorkloadRef(kind=TargetKind.DEPLOYMENT, namespace="llm", name="web")]
    assert len(tracker) == 0
