"""The chart on a real control plane with simulated (kwok) GPU nodes, driven by the built helm.

kwok marks pods Running without running containers, so these tests check what
Kubernetes does with the chart (admission, scheduling, RBAC, lifecycle), not
the processes inside the pods.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from devtools.demo.stack import wait_until
from devtools.devcluster.nodes import NodeSpec
from e2e.providers import ClusterHandle
from e2e.tokens import pod_bound_token, token_kubeconfig
from tests.chart.chart_render import CHART, CRDS, RELEASE, documents, one, set_args, template

CLUSTER_KINDS = (
    "clusterroles.rbac.authorization.k8s.io",
    "clusterrolebindings.rbac.authorization.k8s.io",
    "validatingadmissionpolicies.admissionregistration.k8s.io",
    "validatingadmissionpolicybindings.admissionregistration.k8s.io",
    "clusterkopfpeerings.kopf.dev",
)
NAMESPACED_KINDS = "all,configmaps,serviceaccounts,networkpolicies,poddisruptionbudgets"


@dataclass
class Release:
    name: str
    namespace: str
    gpu_nodes: list[str]
    cpu_node: str


def _wait(predicate: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    return wait_until(predicate, timeout, what=what)


def _pods(cluster: ClusterHandle, namespace: str, selector: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
    return json.loads(out)["items"]


def _running(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]


@pytest.fixture(scope="module")
def release(cluster: ClusterHandle) -> Iterator[Release]:
    if not any(CRDS.glob("*.yaml")):
        pytest.skip("crds/ holds no generated CRDs (resource-agent crds --output-dir crds)")
    suffix = uuid.uuid4().hex[:6]
    name, namespace = f"ra{suffix}", f"helm-{suffix}"
    gpu_nodes = [f"gpu-helm-{suffix}-0", f"gpu-helm-{suffix}-1"]
    cpu_node = f"cpu-helm-{suffix}"
    cluster.add_nodes(
        [NodeSpec(gpu_nodes[0], gpus=4), NodeSpec(gpu_nodes[1], gpus=4, gpu_taint=True), NodeSpec(cpu_node, gpus=0)]
    )
    # The agent mounts host paths, so its namespace can only be "privileged" (docs/helm.md).
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=privileged")
    cluster.helm("install", name, str(CHART), "-n", namespace, "--timeout=2m")
    yield Release(name, namespace, gpu_nodes, cpu_node)
    cluster.helm("uninstall", name, "-n", namespace, "--wait", check=False)
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
    cluster.kubectl("delete", "node", *gpu_nodes, cpu_node, "--ignore-not-found", check=False)


def test_agent_pods_run_on_gpu_nodes_only(cluster: ClusterHandle, release: Release) -> None:
    selector = f"app.kubernetes.io/instance={release.name},app.kubernetes.io/component=agent"

    def placed() -> list[dict[str, Any]]:
        pods = _running(_pods(cluster, release.namespace, selector))
        ours = [p for p in pods if p["spec"]["nodeName"] in {*release.gpu_nodes, release.cpu_node}]
        return ours if len(ours) >= 2 else []

    pods = _wait(placed, "agent pods Running on both GPU nodes")
    nodes = sorted(p["spec"]["nodeName"] for p in pods)
    # Both GPU nodes, the tainted one included (tolerations), and never the CPU node (node selector).
    assert nodes == sorted(release.gpu_nodes)
    daemonset = json.loads(
        cluster.kubectl("get", "daemonset", f"{release.name}-resource-agent-agent", "-n", release.namespace, "-o", "json").stdout
    )
    node_env = next(e for e in daemonset["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == "NODE_NAME")
    assert node_env["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


def test_operator_runs_two_replicas_with_a_pdb(cluster: ClusterHandle, release: Release) -> None:
    selector = f"app.kubernetes.io/instance={release.name},app.kubernetes.io/component=operator"
    pods = _wait(lambda: len(_running(_pods(cluster, release.namespace, selector))) == 2, "two operator pods Running")
    assert pods
    pdb = json.loads(
        cluster.kubectl("get", "pdb", f"{release.name}-resource-agent-operator", "-n", release.namespace, "-o", "json").stdout
    )
    assert pdb["spec"]["minAvailable"] == 1
    _wait(
        lambda: json.loads(
            cluster.kubectl("get", "pdb", pdb["metadata"]["name"], "-n", release.namespace, "-o", "json").stdout
        )["status"].get("currentHealthy") == 2,
        "the PDB to see both operator pods",
    )
    peering = json.loads(cluster.kubectl("get", "clusterkopfpeering", release.name, "-o", "json").stdout)
    assert peering["metadata"]["labels"]["app.kubernetes.io/instance"] == release.name


def test_helm_test_hook_commands_work_with_the_operators_rbac(
    cluster: ClusterHandle, release: Release, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """kwok cannot run the hook's container, so run its commands here with a token of an operator pod."""
    selector = f"app.kubernetes.io/instance={release.name},app.kubernetes.io/component=operator"
    pod = _wait(lambda: _running(_pods(cluster, release.namespace, selector)), "an operator pod")[0]
    hook = one(documents(template(cluster.helm_path, None, release=release.name, namespace=release.namespace)), "Pod")
    with cluster.api_client() as admin:
        token = pod_bound_token(admin, release.namespace, hook["spec"]["serviceAccountName"], pod["metadata"]["name"])
    kubeconfig = token_kubeconfig(cluster.kubeconfig, token, tmp_path_factory.mktemp("hook") / "kubeconfig")
    for step in hook["spec"]["initContainers"] + hook["spec"]["containers"]:
        command = step["command"]
        assert command[0] == "kubectl"
        result = cluster.kubectl(f"--kubeconfig={kubeconfig}", *command[1:], check=False)
        # The ClusterHandle adds the admin kubeconfig first; the later flag wins in kubectl.
        assert result.returncode == 0, (command, result.stderr)
    whoami = cluster.kubectl(f"--kubeconfig={kubeconfig}", "auth", "whoami", "-o", "json", check=False)
    assert hook["spec"]["serviceAccountName"] in whoami.stdout


def test_helm_upgrade_changes_the_agent(cluster: ClusterHandle, release: Release) -> None:
    cluster.helm(
        "upgrade", release.name, str(CHART), "-n", release.namespace, "--reuse-values", *set_args({"agent.interval": "10s"})
    )
    daemonset = json.loads(
        cluster.kubectl("get", "daemonset", f"{release.name}-resource-agent-agent", "-n", release.namespace, "-o", "json").stdout
    )
    assert "--interval=10s" in daemonset["spec"]["template"]["spec"]["containers"][0]["args"]
    history = json.loads(cluster.helm("history", release.name, "-n", release.namespace, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1, 2] and history[-1]["status"] == "deployed"


def _create_service_accounts(cluster: ClusterHandle, release: str, namespace: str) -> None:
    """Pods are admitted only with an existing ServiceAccount, which a dry run does not create."""
    accounts = template(
        cluster.helm_path, None, "--show-only=templates/agent-serviceaccount.yaml",
        "--show-only=templates/operator-serviceaccount.yaml", release=release, namespace=namespace,
    )  # fmt: skip
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=accounts)


def test_rendered_chart_passes_server_side_validation(cluster: ClusterHandle) -> None:
    namespace = f"dry-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=privileged")
    try:
        release = f"dry{namespace[-6:]}"
        _create_service_accounts(cluster, release, namespace)
        for values in ({}, {"agent.hostPID": True, "operator.llm.provider": "groq", "operator.llm.existingSecret": "k"}):
            manifest = template(cluster.helm_path, values, release=release, namespace=namespace)
            result = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=manifest, check=False)
            assert result.returncode == 0, result.stderr
            assert "created (server dry run)" in result.stdout
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _as_pod(workload: dict[str, Any], name: str) -> dict[str, Any]:
    template_ = copy.deepcopy(workload["spec"]["template"])
    template_["spec"].pop("nodeSelector", None)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **{k: v for k, v in template_["metadata"].items() if k == "labels"}}, "spec": template_["spec"]}


@pytest.mark.parametrize(
    ("component", "level", "admitted"),
    [
        ("operator", "restricted", True),
        ("test", "restricted", True),
        ("agent", "baseline", False),
        ("agent", "privileged", True),
    ],
)
def test_pod_security_levels(cluster: ClusterHandle, component: str, level: str, admitted: bool) -> None:
    """The levels docs/helm.md claims: operator and test pod restricted; the agent only privileged (hostPath)."""
    namespace = f"psa-{level[:4]}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("label", "namespace", namespace, f"pod-security.kubernetes.io/enforce={level}")
    try:
        _create_service_accounts(cluster, RELEASE, namespace)
        docs = documents(template(cluster.helm_path, None, namespace=namespace))
        if component == "test":
            pod = one(docs, "Pod")
        else:
            pod = _as_pod(one(docs, "Deployment" if component == "operator" else "DaemonSet"), f"psa-{component}")
        pod["metadata"]["namespace"] = namespace
        result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pod), check=False)
        if admitted:
            assert result.returncode == 0, result.stderr
        else:
            assert result.returncode != 0
            assert "violates PodSecurity" in result.stderr and "hostPath" in result.stderr
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_uninstall_leaves_only_the_crds(cluster: ClusterHandle, release: Release) -> None:
    cluster.helm("uninstall", release.name, "-n", release.namespace, "--wait", "--timeout=2m")
    selector = f"app.kubernetes.io/instance={release.name}"

    def leftovers() -> list[str]:
        names = cluster.kubectl("get", NAMESPACED_KINDS, "-n", release.namespace, "-l", selector, "-o", "name").stdout.split()
        for kind in CLUSTER_KINDS:
            names += cluster.kubectl("get", kind, "-l", selector, "-o", "name").stdout.split()
        return names

    _wait(lambda: not leftovers(), "uninstall to remove every labelled object", timeout=120)
    # Secrets hold helm's release history; uninstall removes them too.
    assert not cluster.kubectl("get", "secrets", "-n", release.namespace, "-l", f"name={release.name},owner=helm", "-o", "name").stdout.split()
    # The CRDs stay (Helm never deletes crds/ content), so reports and recommendations survive.
    for crd in ("resourcereports.resource.optiinfra.io", "resourcerecommendations.resource.optiinfra.io", "clusterkopfpeerings.kopf.dev"):
        assert cluster.kubectl("get", "crd", crd, "-o", "name").stdout.strip() == f"customresourcedefinition.apiextensions.k8s.io/{crd}"
