"""Issue 15's "done when", second half: a GPU node with only `nvidia.com/gpu` capacity (a device
plugin, no GFD/NFD/cloud label) gets an agent with the chart's default values.

The real operator process (`resource-agent operator`, with the chart's flags and the chart's
ServiceAccount token, so the chart's RBAC and ValidatingAdmissionPolicy apply to it) labels the
node `resource.optiinfra.io/gpu-capacity=true`; the chart's DaemonSet (default values) then puts
an agent pod there (kwok runs it as a fake). The same token cannot change anything else of a Node.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.demo.stack import ManagedProcess, operator_process, stop_all, wait_until
from devtools.devcluster.nodes import NodeSpec
from e2e.providers import ClusterHandle
from e2e.tokens import token_api_client, token_kubeconfig
from tests.chart.chart_render import CHART, CRDS

LABEL = "resource.optiinfra.io/gpu-capacity"


@dataclass
class Setup:
    release: str
    namespace: str
    nodes: dict[str, str]
    operator_sa: str
    token: str
    operator: ManagedProcess


def _labels(cluster: ClusterHandle, node: str) -> dict[str, str]:
    labels: dict[str, str] = json.loads(cluster.kubectl("get", "node", node, "-o", "json").stdout)["metadata"].get("labels", {})
    return labels


def _agent_pods(cluster: ClusterHandle, namespace: str, release: str) -> dict[str, str]:
    """node -> phase of the release's agent pod there."""
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=agent"
    pods = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout)["items"]
    return {p["spec"]["nodeName"]: p["status"].get("phase", "") for p in pods if p["spec"].get("nodeName")}


def _service_account_token(cluster: ClusterHandle, namespace: str, service_account: str) -> str:
    from kubernetes.client import CoreV1Api

    with cluster.api_client() as admin:
        body: Any = {"spec": {"audiences": [], "expirationSeconds": 3600}}
        response = CoreV1Api(admin).create_namespaced_service_account_token(service_account, namespace, body)
        return str(response.status.token)


def _node_patches(process: ManagedProcess) -> float:
    assert process.metrics_url
    with urllib.request.urlopen(process.metrics_url, timeout=5) as response:
        text = response.read().decode()
    found = re.search(r'^resource_agent_operator_api_requests_total\{resource="nodes",verb="patch"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.fixture(scope="module")
def setup(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    if not any(CRDS.glob("*.yaml")):
        pytest.skip("crds/ holds no generated CRDs (resource-agent crds --output-dir crds)")
    suffix = uuid.uuid4().hex[:6]
    release, namespace = f"cap{suffix}", f"cap-{suffix}"
    nodes = {
        "plugin": f"gpu-cap-{suffix}",  # nvidia.com/gpu capacity only: no GFD, NFD or cloud label
        "cpu": f"cpu-cap-{suffix}",
    }
    cluster.add_nodes([NodeSpec(nodes["plugin"], gpus=4, gfd_labels=False), NodeSpec(nodes["cpu"], gpus=0)])
    assert not {k for k in _labels(cluster, nodes["plugin"]) if "gpu" in k or "accelerator" in k or "pci-10de" in k}
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=privileged")
    cluster.helm("install", release, str(CHART), "-n", namespace, "--timeout=2m")  # default values
    operator_sa = f"{release}-resource-agent-operator"
    token = _service_account_token(cluster, namespace, operator_sa)
    log_dir = tmp_path_factory.mktemp("capacity-logs")
    kubeconfig = token_kubeconfig(cluster.kubeconfig, token, log_dir / "operator.kubeconfig")
    # what the chart's Deployment runs (its pods are kwok fakes), standalone, with a short fleet interval
    selector = yaml_terms(cluster, release, namespace, log_dir)
    operator = operator_process(log_dir, kubeconfig=kubeconfig, fleet_interval="1s")
    operator.args += ["--label-gpu-capacity-nodes", f"--gpu-node-selector={selector}", "--no-workloads"]
    operator.start()
    try:
        yield Setup(release, namespace, nodes, operator_sa, token, operator)
    finally:
        stop_all([operator])
        cluster.helm("uninstall", release, "-n", namespace, "--wait", check=False)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
        cluster.kubectl("delete", "node", *nodes.values(), "--ignore-not-found", check=False)


def yaml_terms(cluster: ClusterHandle, release: str, namespace: str, directory: Path) -> Path:
    """The operator ConfigMap's gpu-node-selector.yaml, as the chart installed it."""
    data = json.loads(cluster.kubectl("get", "configmap", f"{release}-resource-agent-operator", "-n", namespace, "-o", "json").stdout)["data"]
    path = directory / "gpu-node-selector.yaml"
    path.write_text(data["gpu-node-selector.yaml"])
    return path


def test_operator_labels_a_capacity_only_node_and_the_default_chart_schedules_an_agent(cluster: ClusterHandle, setup: Setup) -> None:
    plugin, cpu = setup.nodes["plugin"], setup.nodes["cpu"]
    try:
        wait_until(lambda: _labels(cluster, plugin).get(LABEL) == "true", 60, what=f"{LABEL} on {plugin}")
    except TimeoutError:
        pytest.fail(f"the operator did not label {plugin}\n{setup.operator.tail()}")
    try:
        wait_until(lambda: _agent_pods(cluster, setup.namespace, setup.release).get(plugin) == "Running", 90,
                   what=f"an agent pod Running on {plugin}")
    except TimeoutError:
        pytest.fail(f"no agent on {plugin}: {_agent_pods(cluster, setup.namespace, setup.release)}")
    assert LABEL not in _labels(cluster, cpu)
    assert cpu not in _agent_pods(cluster, setup.namespace, setup.release)
    # one patch per change, not per pass: passes keep running (1 s), the count stays
    patches = _node_patches(setup.operator)
    assert patches >= 1
    cluster.kubectl("annotate", "node", plugin, f"test/nudge={time.time()}", "--overwrite")  # a node event: another pass
    time.sleep(3)
    assert _node_patches(setup.operator) == patches
    assert "GpuCapacityLabelled" in cluster.kubectl("get", "events", "-n", "default",
                                                    "--field-selector", f"involvedObject.name={plugin}").stdout


def _denied(client: Any, node: str, patch: dict[str, Any]) -> str:
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as caught:
        CoreV1Api(client).patch_node(node, patch, _content_type="application/merge-patch+json")
    assert caught.value.status in (403, 422), (patch, caught.value.status, caught.value.body)
    body = str(caught.value.body or "")
    assert "ValidatingAdmissionPolicy" in body, body
    return body


def test_operator_token_can_change_only_its_label(cluster: ClusterHandle, setup: Setup) -> None:
    from kubernetes.client import CoreV1Api

    plugin, cpu = setup.nodes["plugin"], setup.nodes["cpu"]
    wait_until(lambda: _labels(cluster, plugin).get(LABEL) == "true", 60, what=f"{LABEL} on {plugin}")
    before = _labels(cluster, plugin)
    with cluster.api_client() as admin, token_api_client(admin, setup.token) as operator:
        for patch in (
            {"metadata": {"labels": {"example.com/team": "x"}}},  # add another label
            {"metadata": {"labels": {"type": None}}},  # remove another label
            {"metadata": {"labels": {"kubernetes.io/hostname": "elsewhere"}}},  # change another label
            {"metadata": {"labels": {"nvidia.com/gpu.present": "true", LABEL: None}}},  # its own change plus another
            {"metadata": {"annotations": {"example.com/note": "x"}}},
            {"spec": {"unschedulable": True}},
            {"spec": {"taints": [{"key": "example.com/evil", "effect": "NoSchedule"}]}},
        ):
            body = _denied(operator, plugin, patch)
            assert "only the label" in body or "may not change" in body, body
        assert "only be set to" in _denied(operator, plugin, {"metadata": {"labels": {LABEL: "false"}}})
        assert _labels(cluster, plugin) == before
        # what it may do: set or remove its label (on any node; which nodes is the operator's own logic)
        time.sleep(1.5)  # past the 1 s fleet interval, so the next node event runs a pass
        patched = CoreV1Api(operator).patch_node(cpu, {"metadata": {"labels": {LABEL: "true"}}}, _content_type="application/merge-patch+json")
    assert patched.metadata.labels[LABEL] == "true"  # allowed (the operator may remove it again at once)
    try:  # ... and the operator takes it off again: a CPU node has no allocatable GPU
        wait_until(lambda: LABEL not in _labels(cluster, cpu), 30, what=f"{LABEL} removed from {cpu}")
    except TimeoutError:
        pytest.fail(f"the operator left {LABEL} on {cpu}\n{setup.operator.tail()}")
    # an administrator is not restricted by the policy
    cluster.kubectl("label", "node", plugin, "example.com/team=x")
    cluster.kubectl("label", "node", plugin, "example.com/team-")


def test_label_goes_when_the_gpus_go(cluster: ClusterHandle, setup: Setup) -> None:
    plugin = setup.nodes["plugin"]
    wait_until(lambda: _labels(cluster, plugin).get(LABEL) == "true", 60, what=f"{LABEL} on {plugin}")
    time.sleep(1.5)  # past the 1 s fleet interval
    zero = {"status": {"capacity": {"nvidia.com/gpu": "0"}, "allocatable": {"nvidia.com/gpu": "0"}}}
    cluster.kubectl("patch", "node", plugin, "--subresource=status", "--type=merge", "-p", json.dumps(zero))
    try:
        wait_until(lambda: LABEL not in _labels(cluster, plugin), 30, what=f"{LABEL} removed from {plugin}")
    except TimeoutError:
        pytest.fail(f"the operator left {LABEL} on {plugin} without GPUs\n{setup.operator.tail()}")
    # the DaemonSet controller takes the agent off a node its affinity no longer selects
    wait_until(lambda: plugin not in _agent_pods(cluster, setup.namespace, setup.release), 60, what=f"agent pod gone from {plugin}")
