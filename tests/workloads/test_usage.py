from __future__ import annotations

from resource_agent.api.findings import ActionType, TargetKind
from resource_agent.api.samples import AllocationSource, GpuAllocation
from resource_agent.api.summary import NodeSummary, ServingInstanceSummary, ServingSection, Window
from resource_agent.api.usage import WorkloadRef, WorkloadUsage
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


# --- serving-engine demand -------------------------------------------------------------------


def engine(pod: str, running: float = 0.0, waiting: float = 0.0, kv: float = 0.0, finished: float = 0.0) -> ServingInstanceSummary:
    return ServingInstanceSummary(
        instance=f"llm/{pod}", engine="vllm", pod=pod, namespace="llm", samples=60, window_seconds=300.0,
        requests_running=st(running, max=running), requests_waiting=st(waiting, p95=waiting, max=waiting),
        kv_cache_usage_percent=st(kv, p95=kv, max=kv), requests_finished=finished,
    )


def feed_serving(tracker: UsageTracker, infos: dict[str, PodInfo], busy: dict[int, float], holders: dict[int, str],
                 engines: list[ServingInstanceSummary], until: float) -> None:
    at = 300.0
    while at <= until:
        summary = report(at, busy, 60.0, holders)
        summary.serving = ServingSection(instances=engines)
        tracker.observe(summary, lambda a: infos.get(a.pod or ""), resolve_workload)
        at += 60.0


END = 2 * HOUR + 300


def test_an_engine_with_requests_keeps_idle_gpus_from_a_gpu_idle_finding() -> None:
    # the GPUs never reach the busy floor (a tiny model), but the engine answers requests
    tracker = UsageTracker(SETTINGS)
    feed_serving(tracker, pods(1), {}, {0: "web-0", 1: "web-1"}, [engine("web-0", running=1.0, finished=12.0)], until=END)
    assert tracker.findings(END) == []
    state = tracker.workload(WorkloadRef(kind=TargetKind.DEPLOYMENT, namespace="llm", name="web"))
    assert state is not None and state.last_requests == END and state.serving_samples > 100


def test_an_engine_without_requests_does_not_stop_gpu_idle_and_shows_in_the_evidence() -> None:
    tracker = UsageTracker(SETTINGS)
    feed_serving(tracker, pods(1), {}, {0: "web-0", 1: "web-1"}, [engine("web-0"), engine("web-1")], until=END)
    (finding,) = tracker.findings(END)
    assert finding.rule == IDLE_RULE
    (since,) = [e for e in finding.evidence if e.metric == "workload.serving.seconds_since_requests"]
    assert since.observed == 2 * HOUR and since.samples and since.samples > 200


def test_requests_only_early_in_the_horizon_stop_gpu_idle_until_the_horizon_passes_them() -> None:
    tracker = UsageTracker(SETTINGS)
    feed_serving(tracker, pods(1), {}, {0: "web-0"}, [engine("web-0", waiting=2.0)], until=600.0)
    assert tracker.findings(END) == []  # history too short anyway
    feed_serving(tracker, pods(1), {}, {0: "web-0"}, [engine("web-0")], until=END)
    assert tracker.findings(END) == []  # the requests at 600 s are within the 2 h horizon
    later = 600.0 + 2 * HOUR
    feed_serving(tracker, pods(1), {}, {0: "web-0"}, [engine("web-0")], until=later)
    (finding,) = tracker.findings(later)
    assert finding.rule == IDLE_RULE


OVER = {0: "web-0", 1: "web-0", 2: "web-1", 3: "web-1"}  # two pods x two GPUs, one of each busy


def test_a_queue_at_p95_stops_gpu_over_requested() -> None:
    tracker = UsageTracker(SETTINGS)
    engines = [engine("web-0", running=8.0, waiting=3.0, kv=20.0), engine("web-1", running=8.0, waiting=3.0, kv=20.0)]
    feed_serving(tracker, pods(2), {0: 80.0, 2: 80.0}, OVER, engines, until=END)
    assert tracker.findings(END) == []


def test_a_kv_cache_fuller_than_fewer_gpus_hold_stops_gpu_over_requested() -> None:
    tracker = UsageTracker(SETTINGS)  # 1 of 2 GPUs would hold half the cache: 90% x 1/2 = 45% at most
    engines = [engine("web-0", running=8.0, kv=60.0), engine("web-1", running=8.0, kv=60.0)]
    feed_serving(tracker, pods(2), {0: 80.0, 2: 80.0}, OVER, engines, until=END)
    assert tracker.findings(END) == []


def test_an_engine_without_queue_and_with_room_in_its_cache_lets_gpu_over_requested_fire() -> None:
    tracker = UsageTracker(SETTINGS)
    engines = [engine("web-0", running=4.0, kv=30.0), engine("web-1", running=4.0, kv=30.0)]
    feed_serving(tracker, pods(2), {0: 80.0, 2: 80.0}, OVER, engines, until=END)
    (finding,) = tracker.findings(END)
    assert finding.rule == OVER_REQUESTED_RULE
    evidence = {e.metric: e for e in finding.evidence}
    assert evidence["workload.serving.requests_waiting"].observed == 1.0  # p95 in the "nothing waiting" bucket
    assert evidence["workload.serving.kv_cache_usage_percent"].observed == 32.5  # the upper bound of [30, 32.5)
    assert evidence["workload.serving.kv_cache_usage_percent"].threshold == 45.0


def test_serving_histograms_are_checkpointed_and_absent_without_an_engine() -> None:
    tracker = UsageTracker(SETTINGS)
    feed_serving(tracker, pods(1), {}, {0: "web-0"}, [engine("web-0", running=2.0, waiting=5.0, kv=70.0)], until=HOUR)
    (state,) = tracker.dirty()
    wire = state.usage(SETTINGS).to_wire()
    assert wire["lastRequests"] == state.last_requests and wire["servingSamples"] == state.serving_samples
    restored = UsageTracker(SETTINGS)
    restored.restore(state.ref, WorkloadUsage.model_validate(wire))
    again = restored.workload(state.ref)
    assert again is not None and again.waiting is not None and again.kv_cache is not None and state.waiting is not None
    assert again.waiting.percentile(0.95) == state.waiting.percentile(0.95) == 8.0  # 5 waiting: bucket [4, 8)
    assert again.kv_cache.percentile(0.95) == 72.5 and again.last_requests == state.last_requests

    plain = UsageTracker(SETTINGS)
    feed(plain, pods(1), {}, 0.5, {0: "web-0"}, until=HOUR)
    (state,) = plain.dirty()
    wire = state.usage(SETTINGS).to_wire()
    assert not {"requestsWaiting", "kvCacheUsagePercent", "lastRequests", "servingSamples"} & set(wire)


def test_an_engine_is_charged_to_its_pods_workload_or_to_the_bare_pod_holding_a_gpu_and_never_twice() -> None:
    tracker = UsageTracker(SETTINGS)
    summary = report(600.0, {}, 60.0, {0: "web-0", 1: "solo"})
    summary.serving = ServingSection(instances=[engine("web-0", running=1.0), engine("solo", running=1.0), engine("cpu-only", running=1.0)])
    infos = pods(1)
    assert tracker.observe(summary, lambda a: infos.get(a.pod or ""), resolve_workload) == 4  # 2 GPUs + 2 engines
    assert tracker.observe(summary, lambda a: infos.get(a.pod or ""), resolve_workload) == 0  # replayed event
    deployment = tracker.workload(WorkloadRef(kind=TargetKind.DEPLOYMENT, namespace="llm", name="web"))
    bare = tracker.workload(WorkloadRef(kind=TargetKind.POD, namespace="llm", name="solo"))
    assert deployment is not None and deployment.serving_samples == 1 and deployment.last_requests == 600.0
    assert bare is not None and bare.serving_samples == 1
    assert tracker.workload(WorkloadRef(kind=TargetKind.POD, namespace="llm", name="cpu-only")) is None
    assert len(tracker) == 2
