from __future__ import annotations

import time

from resource_agent.api.findings import ActionType, Severity, TargetKind
from resource_agent.workloads.owners import SPREAD_PREFERRED, SPREAD_REQUIRED, OwnerRef, PodInfo, resolve_workload
from resource_agent.workloads.placement import (
    PACK_RULE,
    NodeGpus,
    PackingTracker,
    find_packings,
    packing_finding,
)
from resource_agent.workloads.usage import WORKLOADS_NODE

H100 = "NVIDIA-H100-80GB-HBM3"


def nodes(count: int, gpus: int = 8, product: str = H100, **changes: NodeGpus) -> dict[str, NodeGpus]:
    found = {f"n{i}": NodeGpus(allocatable=gpus, product=product) for i in range(count)}
    found.update(changes)
    return found


def web(index: int, node: str | None, gpus: int = 1, spread: str | None = None, phase: str = "Running") -> PodInfo:
    return PodInfo(namespace="llm", name=f"web-abc-{index}", uid=f"web-{index}", node_name=node, phase=phase,
                   owners=(OwnerRef("ReplicaSet", "web-abc", True),), gpus=gpus, pod_template_hash="abc", spread=spread)


def other(name: str, node: str | None, gpus: int, kind: str = "StatefulSet", phase: str = "Running") -> PodInfo:
    return PodInfo(namespace="train", name=f"{name}-0", uid=f"{name}-uid", node_name=node, phase=phase,
                   owners=(OwnerRef(kind, name, True),), gpus=gpus)


def packed(pods: list[PodInfo], fleet: dict[str, NodeGpus]) -> list:
    return find_packings([*pods, *pods], fleet, resolve_workload)  # the index holds each pod twice (name, UID)


def test_one_gpu_replicas_spread_over_nodes_are_packed_into_the_room_next_to_other_work() -> None:
    # n0 and n1 run a 6-GPU training pod and one web replica each (1 GPU free); n2 and n3 hold one web replica each
    pods = [other("big-a", "n0", 6), other("big-b", "n1", 6), web(0, "n0"), web(1, "n1"), web(2, "n2"), web(3, "n3")]
    (packing,) = packed(pods, nodes(4))
    assert (packing.ref.kind, packing.ref.name) == (TargetKind.DEPLOYMENT, "web")
    assert packing.nodes == ("n0", "n1", "n2", "n3") and packing.freed == ("n2", "n3")
    assert (packing.gpus_freed, packing.pods_moved, packing.gpus_allocated) == (16, 2, 4)
    finding = packing_finding(packing, 3600.0)
    assert finding.rule == PACK_RULE and finding.node_name == WORKLOADS_NODE and finding.severity is Severity.INFO
    assert (finding.target.kind, finding.target.namespace, finding.target.name) == (TargetKind.DEPLOYMENT, "llm", "web")
    assert finding.action.type is ActionType.PACK_WORKLOAD_REPLICAS
    parameters = finding.action.parameters
    assert (parameters["nodesFreed"], parameters["gpusFreed"], parameters["currentNodes"], parameters["targetNodes"]) == (2, 16, 4, 2)
    assert parameters["vacateNodes"] == "n2,n3" and "podAffinity" in parameters and "topologySpread" not in parameters
    assert finding.gpu_hours_per_day_saved == 384.0  # 16 GPUs x 24 h usable by whole-node jobs
    assert {e.metric: e.observed for e in finding.evidence}["workload.nodes_freed_by_packing"] == 2
    assert {s.unmasked for s in finding.sensitive} >= {"web", "llm", "n0", "n3"}


def test_replicas_alone_on_their_nodes_pack_onto_one_of_them() -> None:
    (packing,) = packed([web(i, f"n{i}") for i in range(4)], nodes(4))
    assert len(packing.freed) == 3 and packing.gpus_freed == 24 and packing.pods_moved == 3  # all four fit on one node


def test_no_finding_when_no_node_has_room_or_only_empty_nodes_have_it() -> None:
    # n0 and n1 are full; n3 is empty (moving a pod there only moves the hole)
    pods = [other("big-a", "n0", 7), other("big-b", "n1", 7), web(0, "n0"), web(1, "n1"), web(2, "n2")]
    assert packed(pods, nodes(4)) == []


def test_a_node_another_workload_also_uses_is_never_counted_as_freed() -> None:
    pods = [web(0, "n0"), web(1, "n1"), other("side", "n1", 1, kind="Deployment")]
    (packing,) = packed(pods, nodes(2))
    assert packing.freed == ("n0",)  # n1 keeps the other workload's pod; n0's replica moves next to it
    assert packed([web(0, "n0"), web(1, "n1"), other("side-a", "n0", 1), other("side-b", "n1", 1)], nodes(2)) == []


def test_daemonsets_jobs_bare_pods_and_leaderworkersets_are_left_alone() -> None:
    for kind in ("DaemonSet", "Job"):
        pods = [PodInfo(namespace="ops", name=f"x-{i}", uid=f"x-{i}", node_name=f"n{i}", phase="Running",
                        owners=(OwnerRef(kind, "x", True),), gpus=1) for i in range(3)]
        assert packed(pods, nodes(3)) == []
    lws = [PodInfo(namespace="llm", name=f"g-0-{i}", uid=f"g-{i}", node_name=f"n{i}", phase="Running",
                   owners=(OwnerRef("StatefulSet", "g-0", True),), gpus=1, lws_name="g") for i in range(3)]
    assert packed(lws, nodes(3)) == []


def test_a_required_spread_is_respected_and_a_preferred_one_is_advised_away() -> None:
    assert packed([web(0, "n0", spread=SPREAD_REQUIRED), web(1, "n1", spread=SPREAD_REQUIRED)], nodes(2)) == []
    (packing,) = packed([web(0, "n0", spread=SPREAD_PREFERRED), web(1, "n1", spread=SPREAD_PREFERRED)], nodes(2))
    assert packing.spread_preferred
    assert "ScheduleAnyway" in str(packing_finding(packing, 0.0).action.parameters["topologySpread"])


def test_pods_move_only_between_nodes_of_the_same_gpu_product_and_onto_schedulable_ones() -> None:
    mixed = nodes(2, n1=NodeGpus(allocatable=8, product="NVIDIA-A100-SXM4-80GB"))
    assert packed([web(0, "n0"), web(1, "n1")], mixed) == []
    # n0 is cordoned: nothing may move onto it, and emptying it frees nothing a new job could use
    cordoned = nodes(3, n0=NodeGpus(allocatable=8, schedulable=False, product=H100))
    (packing,) = packed([web(0, "n0"), web(1, "n1"), web(2, "n2")], cordoned)
    assert packing.freed == ("n1",) and packing.nodes == ("n0", "n1", "n2")
    assert packed([web(0, "n0"), web(1, "n1")], cordoned) == []


def test_nodes_no_larger_than_the_workloads_pods_and_single_node_workloads_give_nothing() -> None:
    assert packed([web(0, "n0"), web(1, "n1")], nodes(2, gpus=1)) == []
    assert packed([web(0, "n0", gpus=4), web(1, "n1", gpus=4)], nodes(2, gpus=4)) == []
    assert packed([web(0, "n0"), web(1, "n0")], nodes(2)) == []


def test_unscheduled_and_finished_pods_do_not_count_as_placed_and_a_pending_whole_node_job_raises_the_severity() -> None:
    pods = [web(0, "n0"), web(1, "n1"), web(2, None, phase="Pending"), web(3, "n2", phase="Succeeded")]
    (packing,) = packed(pods, nodes(3))
    assert packing.nodes == ("n0", "n1") and packing.freed == ("n0",) and packing.pending_whole_node_pods == 0
    # an 8-GPU job waits: no node has 8 free (n2 holds a 1-GPU pod of another workload), packing frees one
    waiting = [web(0, "n0"), web(1, "n1"), other("side", "n2", 1), other("big", None, 8, phase="Pending")]
    (packing,) = packed(waiting, nodes(3))
    assert packing.pending_whole_node_pods == 1
    finding = packing_finding(packing, 0.0)
    assert finding.severity is Severity.WARNING and "1 pending GPU pod(s)" in finding.summary


def test_the_opportunity_must_stand_for_the_persist_time_and_a_gap_restarts_the_clock() -> None:
    tracker = PackingTracker(persist_seconds=600.0)
    (packing,) = packed([web(0, "n0"), web(1, "n1")], nodes(2))
    assert tracker.findings([packing], 1000.0) == []
    assert tracker.findings([packing], 1599.0) == []
    (finding,) = tracker.findings([packing], 1600.0)
    assert finding.evidence[0].window_seconds == 600
    assert tracker.findings([], 1700.0) == []  # the spread went away (scaled down, rescheduled)
    assert tracker.findings([packing], 1800.0) == []  # and came back: a new clock


def test_packing_a_large_fleet_is_cheap_enough_for_the_periodic_pass() -> None:
    fleet = nodes(2000)
    pods = [other(f"big-{i}", f"n{i}", 6) for i in range(0, 2000, 2)]
    pods += [PodInfo(namespace="llm", name=f"w{w}-{i}", uid=f"w{w}-{i}", node_name=f"n{(w * 7 + i * 13) % 2000}", phase="Running",
                     owners=(OwnerRef("StatefulSet", f"w{w}", True),), gpus=1) for w in range(200) for i in range(8)]
    started = time.perf_counter()
    packings = find_packings(pods, fleet, resolve_workload)
    elapsed = time.perf_counter() - started
    assert packings and elapsed < 5.0, elapsed
