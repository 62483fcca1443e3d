"""GPU right-sizing on the local control plane: kwok GPU nodes, a Deployment and a StatefulSet whose pods
request nvidia.com/gpu, an agent-like report attributing the GPUs to those pods (as the kubelet's
pod-resources API would), and the real `resource-agent operator` process with a short horizon.

The idle Deployment gets a workload recommendation naming it, with GPU-hours per day; the busy
StatefulSet gets none; the fleet's free GPUs exclude the allocated ones; a restarted operator
continues each workload's history from its WorkloadUsageCheckpoint.
"""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from devtools.demo.stack import install_crds, operator_process, stop_all, wait_until
from devtools.devcluster.nodes import NodeSpec
from e2e.providers import ClusterHandle
from resource_agent.api.names import AGENT_FIELD_MANAGER, GROUP, REPORT_PLURAL, VERSION
from resource_agent.api.samples import AllocationSource, GpuAllocation
from resource_agent.api.summary import Window
from resource_agent.kube.reporter import report_object, report_status
from tests.analysis.analysis_builders import gpu, node, st

APPLY = "application/apply-patch+yaml"
HORIZON = 20  # seconds


def _workload(kind: str, name: str, namespace: str, node_name: str, replicas: int) -> dict[str, Any]:
    pod = {
        "metadata": {"labels": {"app": name}},
        "spec": {
            "nodeName": node_name,
            "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists"}, {"key": "nvidia.com/gpu", "operator": "Exists"}],
            "containers": [{"name": "main", "image": "vllm:e2e", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
        },
    }
    spec: dict[str, Any] = {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": pod}
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _metric(port: str, state: str) -> float | None:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    match = re.search(rf'resource_agent_operator_fleet_gpus{{state="{state}"}} ([0-9.e+]+)', text)
    return float(match.group(1)) if match else None


@pytest.mark.slow
def test_idle_deployment_gets_a_workload_recommendation_and_history_survives_a_restart(
    cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from kubernetes.client import AppsV1Api, CoreV1Api, CustomObjectsApi

    suffix = uuid.uuid4().hex[:6]
    namespace, node_name = f"rightsize-{suffix}", f"gpu-rightsize-{suffix}"
    cluster.add_nodes([NodeSpec(name=node_name, gpus=8)])
    install_crds(cluster.kubectl)
    cluster.kubectl("create", "namespace", namespace)
    log_dir = tmp_path_factory.mktemp("rightsize-logs")
    processes = []
    with cluster.api_client() as api:
        apps, core, objects = AppsV1Api(api), CoreV1Api(api), CustomObjectsApi(api)
        apps.create_namespaced_deployment(namespace, _workload("Deployment", "idle-llm", namespace, node_name, 2))
        apps.create_namespaced_stateful_set(namespace, _workload("StatefulSet", "busy-train", namespace, node_name, 1))

        def running() -> dict[str, str]:
            pods = core.list_namespaced_pod(namespace).items
            return {p.metadata.name: p.metadata.labels["app"] for p in pods if p.status.phase == "Running"}

        pods = wait_until(lambda: len(m := running()) == 3 and m, 90, what="3 GPU pods running")
        assert isinstance(pods, dict)
        holders = sorted(pods, key=lambda name: (pods[name], name))  # busy-train-0, idle-llm-…, idle-llm-…
        node_uid = core.read_node(node_name).metadata.uid

        def report() -> None:
            now = time.time()
            devices = []
            for index in range(8):
                holder = holders[index] if index < len(holders) else None
                busy = holder is not None and pods[holder] == "busy-train"
                devices.append(gpu(
                    index, sm_utilization_percent=st(85.0 if busy else 0.0, max=90.0 if busy else 0.0),
                    memory_used_percent=st(70.0 if busy else 0.4, max=70.0 if busy else 0.4),
                    allocated_to=[GpuAllocation(namespace=namespace, pod=holder, container="main", source=AllocationSource.KUBELET)]
                    if holder else [],
                ))
            summary = node(gpus=devices, node_name=node_name, window=Window(start=now - 10, end=now, samples=10, interval_seconds=1.0))
            objects.patch_cluster_custom_object(GROUP, VERSION, REPORT_PLURAL, node_name, report_object(summary, node_uid),
                                                field_manager=AGENT_FIELD_MANAGER, force=True, _content_type=APPLY)
            objects.patch_cluster_custom_object_status(GROUP, VERSION, REPORT_PLURAL, node_name,
                                                       report_status(summary, datetime.now(UTC)),
                                                       field_manager=AGENT_FIELD_MANAGER, force=True, _content_type=APPLY)

        def start_operator(name: str) -> Any:
            # a half-life far above the restart gap: the test is about the horizon and the checkpoints, and a
            # horizon/7 half-life (3 s) decays the restored history to nothing when a loaded machine restarts slowly
            process = operator_process(log_dir, kubeconfig=cluster.kubeconfig, name=name, fleet_interval="1s",
                                       env={"RESOURCE_AGENT_WORKLOAD_HALF_LIFE": "1h"})
            process.args += [f"--workload-horizon={HORIZON}s", "--workload-checkpoint-interval=2s"]
            processes.append(process.start())
            return process

        def workload_recs() -> list[dict[str, Any]]:
            items = objects.list_cluster_custom_object(GROUP, VERSION, "resourcerecommendations")["items"]
            return [r for r in items if r["spec"]["target"].get("namespace") == namespace]

        def reporting_until(predicate: Any, timeout: float, what: str) -> Any:
            def step() -> Any:
                report()
                return predicate()
            return wait_until(step, timeout, interval=1.0, what=what)

        try:
            operator = start_operator("operator-1")
            metrics_port = next(a for a in operator.args if a.startswith("--metrics-listen=")).rsplit(":", 1)[1]
            started = time.monotonic()
            recs = reporting_until(workload_recs, HORIZON + 60, "a workload recommendation")
            waited = time.monotonic() - started
            assert waited >= HORIZON - 2, f"a recommendation after {waited:.0f}s, before the {HORIZON}s horizon"
            (rec,) = recs
            spec = rec["spec"]
            assert spec["target"] == {"kind": "Deployment", "name": "idle-llm", "namespace": namespace}
            assert spec["rule"] == "workload.gpu-idle" and spec["nodeName"] == "workloads"
            assert spec["action"] == {"type": "scale-down-workload", "parameters": {"replicas": 0, "currentReplicas": 2}}
            assert spec["gpuHoursPerDaySaved"] == 48.0
            p95 = spec["evidence"][0]
            assert p95["statistic"] == "p95" and p95["windowSeconds"] == HORIZON and p95["samples"] > 0
            assert rec["status"]["phase"] == "Open"

            # the fleet: free = allocatable - allocated (from pods), the idle Deployment's 2 allocated GPUs
            # counted apart. The cluster is shared with other tests' nodes and pods, so the totals are
            # read from the API (this test's node adds 8 allocatable, its pods 3 allocated).
            def cluster_gpus() -> tuple[float, float]:
                allocatable = sum(float((n.status.allocatable or {}).get("nvidia.com/gpu", 0)) for n in core.list_node().items)
                allocated = sum(
                    float((c.resources.limits or {}).get("nvidia.com/gpu", 0))
                    for pod in core.list_pod_for_all_namespaces().items
                    if pod.spec.node_name and pod.status.phase not in ("Succeeded", "Failed")
                    for c in pod.spec.containers
                    if c.resources is not None
                )
                return allocatable, allocated

            def fleet_matches_the_cluster() -> bool:
                allocatable, allocated = cluster_gpus()
                return (_metric(metrics_port, "allocatable"), _metric(metrics_port, "allocated"), _metric(metrics_port, "free")) == (
                    allocatable, allocated, allocatable - allocated
                )

            assert reporting_until(fleet_matches_the_cluster, 30, "free GPUs = allocatable - allocated")
            assert cluster_gpus()[1] >= 3.0 and _metric(metrics_port, "allocated_idle") == 2.0

            kubectl = cluster.kubectl("get", "rrec", rec["metadata"]["name"], "-o", "wide").stdout
            assert "Deployment" in kubectl and "idle-llm" in kubectl and "48" in kubectl, kubectl

            def checkpoint() -> dict[str, Any] | None:
                items = objects.list_namespaced_custom_object(GROUP, VERSION, namespace, "workloadusagecheckpoints")["items"]
                found = [c for c in items if c["spec"]["target"]["name"] == "idle-llm"]
                return found[0] if found else None

            before = wait_until(checkpoint, 30, what="a checkpoint of idle-llm")
            assert isinstance(before, dict)
            first_seen = before["status"]["usage"]["firstSeen"]

            # restart: the new operator continues the history (no new horizon to wait for)
            operator.stop()
            restarted = start_operator("operator-2")
            restarted_at = time.monotonic()
            wait_until(lambda: "loaded" in restarted.tail(200) and "workload usage checkpoint" in restarted.tail(200), 60,
                       what="checkpoints loaded")
            loaded = re.search(r"loaded (\d+) workload usage checkpoint", restarted.tail(400))
            assert loaded and int(loaded.group(1)) >= 2, restarted.tail()
            for _ in range(5):
                report()
                time.sleep(1)
            (after,) = workload_recs()
            assert after["metadata"]["uid"] == rec["metadata"]["uid"] and after["status"]["phase"] == "Open"
            assert time.monotonic() - restarted_at < HORIZON + 15
            now_checkpoint = wait_until(lambda: (c := checkpoint()) and c["status"]["usage"]["lastSeen"] > before["status"]["usage"]["lastSeen"] and c,
                                        30, what="a newer checkpoint")
            assert isinstance(now_checkpoint, dict)
            assert now_checkpoint["status"]["usage"]["firstSeen"] == first_seen  # the same history, continued
            assert now_checkpoint["status"]["usage"]["samples"] > before["status"]["usage"]["samples"]
        except Exception:
            for process in processes:
                print(f"--- {process.name}\n{process.tail(80)}")
            raise
        finally:
            stop_all(processes)
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
