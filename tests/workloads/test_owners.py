from __future__ import annotations

from typing import Any

from resource_agent.api.findings import TargetKind
from resource_agent.workloads.owners import (
    SPREAD_PREFERRED,
    SPREAD_REQUIRED,
    OwnerRef,
    WorkloadCache,
    pod_info,
    requested_gpus,
    resolve_workload,
    spread_of,
)


def pod(name: str = "p", owners: list[dict[str, Any]] | None = None, labels: dict[str, str] | None = None, gpus: int = 1,
        uid: str = "uid-1") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": uid, "labels": labels or {}, "ownerReferences": owners or []},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]},
        "status": {"phase": "Running"},
    }


def owner(kind: str, name: str, controller: bool = True) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "x", "controller": controller}


def test_replicaset_resolves_to_its_deployment_from_the_index() -> None:
    info = pod_info(pod(owners=[owner("ReplicaSet", "web-5d8f")], labels={"pod-template-hash": "other"}))
    ref = resolve_workload(info, lambda ns, name: OwnerRef("Deployment", "web", True) if (ns, name) == ("ns", "web-5d8f") else None)
    assert (ref.kind, ref.namespace, ref.name) == (TargetKind.DEPLOYMENT, "ns", "web")


def test_replicaset_unknown_to_the_index_falls_back_to_the_pod_template_hash() -> None:
    info = pod_info(pod(owners=[owner("ReplicaSet", "vllm-llama-7c9b5d4f8")], labels={"pod-template-hash": "7c9b5d4f8"}))
    ref = resolve_workload(info, lambda ns, name: None)
    assert (ref.kind, ref.name) == (TargetKind.DEPLOYMENT, "vllm-llama")


def test_bare_replicaset_stays_a_replicaset() -> None:
    info = pod_info(pod(owners=[owner("ReplicaSet", "rs")]))
    assert resolve_workload(info).kind is TargetKind.REPLICA_SET


def test_direct_owners_and_leaderworkerset_and_bare_pod() -> None:
    assert resolve_workload(pod_info(pod(owners=[owner("StatefulSet", "db")]))).kind is TargetKind.STATEFUL_SET
    assert resolve_workload(pod_info(pod(owners=[owner("DaemonSet", "ds")]))).kind is TargetKind.DAEMON_SET
    assert resolve_workload(pod_info(pod(owners=[owner("Job", "train-1")]))).name == "train-1"
    lws = pod_info(pod(owners=[owner("StatefulSet", "llama-0")], labels={"leaderworkerset.sigs.k8s.io/name": "llama"}))
    assert (resolve_workload(lws).kind, resolve_workload(lws).name) == (TargetKind.LEADER_WORKER_SET, "llama")
    assert resolve_workload(pod_info(pod(owners=[owner("LeaderWorkerSet", "l")]))).kind is TargetKind.LEADER_WORKER_SET
    assert (resolve_workload(pod_info(pod("solo"))).kind, resolve_workload(pod_info(pod("solo"))).name) == (TargetKind.POD, "solo")
    custom = pod_info(pod("ray-head", owners=[owner("RayCluster", "ray")]))
    assert (resolve_workload(custom).kind, resolve_workload(custom).name) == (TargetKind.POD, "ray-head")


def test_the_controller_reference_wins_over_others() -> None:
    info = pod_info(pod(owners=[owner("ConfigMap", "x", controller=False), owner("StatefulSet", "s")]))
    assert resolve_workload(info).kind is TargetKind.STATEFUL_SET


def test_requested_gpus_sums_containers_and_takes_the_largest_init() -> None:
    spec = {
        "containers": [{"resources": {"limits": {"nvidia.com/gpu": "2"}}}, {"resources": {"requests": {"nvidia.com/gpu": 1}}}, {}],
        "initContainers": [{"resources": {"limits": {"nvidia.com/gpu": "4"}}}],
    }
    assert requested_gpus(spec) == 4
    assert requested_gpus({"containers": [{"resources": {"limits": {"cpu": "1"}}}]}) == 0


def test_cache_is_bounded_and_counts_hits() -> None:
    cache = WorkloadCache(capacity=2)
    infos = [pod_info(pod(f"p{i}", uid=f"u{i}")) for i in range(3)]
    for info in infos:
        cache.resolve(info)
    cache.resolve(infos[2])
    assert len(cache) == 2 and cache.hits == 1 and cache.misses == 3
    cache.resolve(infos[0])  # evicted: resolved again
    assert cache.misses == 4


def test_spread_of_tells_a_required_spread_from_a_wish() -> None:
    hostname = "kubernetes.io/hostname"
    term = {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": hostname}
    assert spread_of({}) is None
    assert spread_of({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}}) == SPREAD_REQUIRED
    assert spread_of({"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": term}]}}}) == SPREAD_PREFERRED
    assert spread_of({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": hostname}]}) == SPREAD_REQUIRED  # default DoNotSchedule
    assert spread_of({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": hostname, "whenUnsatisfiable": "ScheduleAnyway"}]}) == SPREAD_PREFERRED
    body = {"metadata": {"name": "p", "namespace": "n", "uid": "u"},
            "spec": {"containers": [], "topologySpreadConstraints": [{"topologyKey": hostname, "whenUnsatisfiable": "ScheduleAnyway"}]}}
    assert pod_info(body).spread == SPREAD_PREFERRED
