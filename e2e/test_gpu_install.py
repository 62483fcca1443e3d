"""Issue 15's "done when" on the local control plane: the chart's default values find GPU nodes
labelled only by NFD, and a stopped agent turns into a stale-report recommendation.

kwok runs the DaemonSet's pods as fakes, so the first test checks where the scheduler puts them;
the second runs the product's real processes (`resource-agent agent` x2, `resource-agent
operator`) with a short report interval and stops one agent.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.demo.stack import agent_process, install_crds, operator_process, stop_all, wait_until
from devtools.devcluster.nodes import NodeSpec
from e2e.providers import ClusterHandle
from tests.chart.chart_render import CHART, CRDS

NFD_LABEL = "feature.node.kubernetes.io/pci-10de.present"
GROUP, VERSION = "resource.optiinfra.io", "v1alpha1"


def _running_agent_pods(cluster: ClusterHandle, namespace: str, release: str) -> dict[str, str]:
    """node -> agent pod, for the release's Running agent pods."""
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=agent"
    pods = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout)["items"]
    return {p["spec"]["nodeName"]: p["metadata"]["name"] for p in pods
            if p["status"].get("phase") == "Running" and p["spec"].get("nodeName")}


@pytest.fixture(scope="module")
def nfd_release(cluster: ClusterHandle) -> Iterator[tuple[str, str, dict[str, str]]]:
    if not any(CRDS.glob("*.yaml")):
        pytest.skip("crds/ holds no generated CRDs (resource-agent crds --output-dir crds)")
    suffix = uuid.uuid4().hex[:6]
    release, namespace = f"nfd{suffix}", f"nfd-{suffix}"
    nodes = {
        "nfd": f"gpu-nfd-{suffix}",  # NFD's PCI vendor label only (no GPU feature discovery)
        "nfd-tainted": f"gpu-nfd-{suffix}-t",  # ... and the usual GPU taint
        "cpu": f"cpu-nfd-{suffix}",
    }
    cluster.add_nodes([
        NodeSpec(nodes["nfd"], gpus=4, gfd_labels=False, labels={NFD_LABEL: "true"}),
        NodeSpec(nodes["nfd-tainted"], gpus=4, gfd_labels=False, gpu_taint=True, labels={NFD_LABEL: "true"}),
        NodeSpec(nodes["cpu"], gpus=0),
    ])
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=privileged")
    cluster.helm("install", release, str(CHART), "-n", namespace, "--timeout=2m")  # default values
    try:
        yield release, namespace, nodes
    finally:
        cluster.helm("uninstall", release, "-n", namespace, "--wait", check=False)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
        cluster.kubectl("delete", "node", *nodes.values(), "--ignore-not-found", check=False)


def test_default_values_schedule_agents_on_nfd_labelled_gpu_nodes(cluster: ClusterHandle, nfd_release: tuple[str, str, dict[str, str]]) -> None:
    release, namespace, nodes = nfd_release
    wanted = {nodes["nfd"], nodes["nfd-tainted"]}
    placed = wait_until(lambda: (m := _running_agent_pods(cluster, namespace, release)) and wanted <= set(m) and m, 90,
                        what="agent pods Running on the NFD-labelled nodes")
    assert isinstance(placed, dict)
    assert nodes["cpu"] not in placed  # the GPU node affinity keeps CPU-only nodes out
    labels = json.loads(cluster.kubectl("get", "node", nodes["nfd"], "-o", "json").stdout)["metadata"]["labels"]
    assert "nvidia.com/gpu.present" not in labels and labels[NFD_LABEL] == "true"


# --- stale reports ------------------------------------------------------------------------------

REPORT_INTERVAL = 1.5  # seconds: the agents' --report-interval and the operator's --report-interval
REPORT_HEARTBEAT = 3.0  # seconds: the agents' --report-heartbeat and the operator's --report-heartbeat
STALE_HEARTBEATS = 2
STALE_AFTER = STALE_HEARTBEATS * REPORT_HEARTBEAT + REPORT_INTERVAL


def _objects(cluster: ClusterHandle, plural: str) -> list[dict[str, Any]]:
    from kubernetes.client import CustomObjectsApi

    with cluster.api_client() as client:
        items: list[dict[str, Any]] = CustomObjectsApi(client).list_cluster_custom_object(GROUP, VERSION, plural)["items"]
        return items


def _stale_recommendation(cluster: ClusterHandle, node: str) -> dict[str, Any] | None:
    for rec in _objects(cluster, "resourcerecommendations"):
        spec = rec["spec"]
        if spec["rule"] == "report-stale" and spec.get("target", {}).get("name") == node and rec.get("status", {}).get("phase") == "Open":
            return rec
    return None


def test_stopped_agent_gives_a_stale_report_recommendation(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> None:
    suffix = uuid.uuid4().hex[:6]
    nodes = {"a": f"gpu-stale-{suffix}-a", "b": f"gpu-stale-{suffix}-b"}
    cluster.add_nodes([NodeSpec(name, gpus=8) for name in nodes.values()])
    install_crds(cluster.kubectl)
    log_dir = tmp_path_factory.mktemp("stale-logs")
    interval, heartbeat = f"{REPORT_INTERVAL:g}s", f"{REPORT_HEARTBEAT:g}s"
    agents = {key: agent_process(node, "idle-gpu-holding-memory", log_dir, kubeconfig=cluster.kubeconfig,
                                 report_interval=interval, report_heartbeat=heartbeat, window="10s").start()
              for key, node in nodes.items()}
    operator = operator_process(log_dir, kubeconfig=cluster.kubeconfig, fleet_interval="1s")
    operator.args += [f"--report-interval={interval}", f"--report-heartbeat={heartbeat}",
                      f"--stale-heartbeats={STALE_HEARTBEATS}", "--no-workloads"]
    processes = [*agents.values(), operator.start()]

    def diagnostics() -> str:
        return "\n".join(f"--- {p.name}\n{p.tail()}" for p in processes)

    try:
        reported = lambda: {r["metadata"]["name"] for r in _objects(cluster, "resourcereports")} >= set(nodes.values())  # noqa: E731
        try:
            wait_until(reported, 60, what="both reports")
            # both fresh: a quiet node (unchanged findings: written once per heartbeat) is not stale, for
            # longer than the stale threshold
            time.sleep(STALE_AFTER + 2 * REPORT_INTERVAL)
        except TimeoutError:
            pytest.fail(f"the agents wrote no reports\n{diagnostics()}")
        assert _stale_recommendation(cluster, nodes["b"]) is None, diagnostics()
        agents["b"].stop()
        stopped = time.monotonic()
        try:
            wait_until(lambda: _stale_recommendation(cluster, nodes["b"]), 4 * STALE_AFTER, interval=0.25, what="report-stale")
        except TimeoutError:
            pytest.fail(f"no report-stale recommendation for {nodes['b']}\n{diagnostics()}")
        elapsed = time.monotonic() - stopped
        print(f"report-stale after {elapsed:.1f} s (threshold {STALE_AFTER:g} s)")
        # stale once the last write is older than the threshold: at most the threshold after the stop (its
        # last write came before it), plus one fleet pass and the 2-core slack
        assert elapsed <= STALE_AFTER + 3.0, f"{elapsed:.1f} s\n{diagnostics()}"
        assert _stale_recommendation(cluster, nodes["a"]) is None  # the running agent's report is fresh
    finally:
        stop_all(processes)
        cluster.kubectl("delete", "node", *nodes.values(), "--ignore-not-found", check=False)
