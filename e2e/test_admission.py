"""Node-bound report writes, on the real API server.

The chart's agent RBAC and ValidatingAdmissionPolicy are rendered by the real
helm and applied; two kwok GPU nodes each get an agent-like pod with the
agent's ServiceAccount; the token bound to the pod on node A may write
ResourceReport A (through the agent's own ReportWriter) and is refused for B.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devtools.devcluster.nodes import NodeSpec
from e2e.providers import ClusterHandle
from e2e.tokens import pod_bound_token, token_api_client, token_kubeconfig
from tests.chart.chart_render import CRDS, documents, template

GROUP, VERSION, PLURAL = "resource.optiinfra.io", "v1alpha1", "resourcereports"
APPLY = "application/apply-patch+yaml"
POLICY_TEMPLATES = ("templates/agent-serviceaccount.yaml", "templates/agent-rbac.yaml", "templates/agent-admission-policy.yaml")


def _crd_files() -> list[Path]:
    files = sorted(CRDS.glob("*.yaml")) if CRDS.is_dir() else []
    if not files:
        pytest.skip("crds/ holds no generated CRDs (resource-agent crds --output-dir crds)")
    return files


def wait_established(cluster: ClusterHandle, crd: str, timeout: float = 60.0) -> None:
    """Poll the CRD until its Established condition is True."""
    deadline = time.monotonic() + timeout
    while True:
        result = cluster.kubectl("get", "crd", crd, "-o", "json", check=False)
        if result.returncode == 0:
            conditions = json.loads(result.stdout).get("status", {}).get("conditions") or []  # null until the API server sets them
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"CRD {crd} not Established after {timeout:.0f}s: {result.stderr}")
        time.sleep(0.2)


@dataclass
class Setup:
    namespace: str
    service_account: str
    node_a: str
    node_b: str
    pod_a: str
    policy: str


def _agent_pod(name: str, node: str, service_account: str) -> dict[str, Any]:
    """A pod like the DaemonSet's: pinned to its node, the agent's ServiceAccount."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/component": "agent"}},
        "spec": {
            "nodeName": node,
            "serviceAccountName": service_account,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "agent", "image": "ghcr.io/optiinfra/resource-agent:test"}],
        },
    }


def _wait_running(core: Any, namespace: str, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while core.read_namespaced_pod(name, namespace).status.phase != "Running":
        if time.monotonic() > deadline:
            raise TimeoutError(f"pod {namespace}/{name} not Running after {timeout:.0f}s (is kwok running?)")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def setup(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    from kubernetes.client import CoreV1Api

    crd_files = _crd_files()
    suffix = uuid.uuid4().hex[:6]
    namespace, release = f"adm-{suffix}", f"adm{suffix}"
    node_a, node_b = f"gpu-adm-{suffix}-a", f"gpu-adm-{suffix}-b"
    for path in crd_files:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    wait_established(cluster, "resourcereports.resource.optiinfra.io")
    cluster.kubectl("create", "namespace", namespace)
    show_only = [arg for path in POLICY_TEMPLATES for arg in ("--show-only", path)]
    manifest = template(cluster.helm_path, None, *show_only, release=release, namespace=namespace)
    rendered = documents(manifest)
    assert {d["kind"] for d in rendered} == {
        "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    }  # fmt: skip
    service_account = next(d for d in rendered if d["kind"] == "ServiceAccount")["metadata"]["name"]
    policy = next(d for d in rendered if d["kind"] == "ValidatingAdmissionPolicy")["metadata"]["name"]
    cluster.kubectl("apply", "-f", "-", input=manifest)
    cluster.add_nodes([NodeSpec(node_a, gpus=2), NodeSpec(node_b, gpus=2)])
    with cluster.api_client() as admin:
        core = CoreV1Api(admin)
        for node in (node_a, node_b):
            core.create_namespaced_pod(namespace, _agent_pod(f"agent-{node[-1]}", node, service_account))
        for node in (node_a, node_b):
            _wait_running(core, namespace, f"agent-{node[-1]}")
    yield Setup(namespace, service_account, node_a, node_b, f"agent-{node_a[-1]}", policy)
    for node in (node_a, node_b):
        cluster.kubectl("delete", "resourcereport", node, "--ignore-not-found", check=False)
    cluster.kubectl("delete", "-f", "-", "--ignore-not-found", input=manifest, check=False)
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    cluster.kubectl("delete", "node", node_a, node_b, "--ignore-not-found", check=False)


def _summary(node: str) -> Any:
    from resource_agent.node_agent.window import summarize
    from resource_agent.scenarios.generator import generate

    return summarize(list(generate("healthy-busy", samples=3, gpus=2)), node, "e2e")


def _apply_report(objects: Any, node: str, body_node: str | None = None, *, dry_run: bool = False) -> Any:
    """The agent's SSA of a report named ``node`` (spec.nodeName ``body_node`` or ``node``)."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ResourceReport",
        "metadata": {"name": node},
        "spec": {"nodeName": body_node or node},
    }
    kwargs: dict[str, Any] = {"field_manager": "resource-agent", "force": True, "_content_type": APPLY}
    if dry_run:
        kwargs["dry_run"] = "All"
    return objects.patch_cluster_custom_object(GROUP, VERSION, PLURAL, node, body, **kwargs)


def _denied(call: Any) -> tuple[int, str]:
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as raised:
        call()
    body = json.loads(raised.value.body)
    return raised.value.status, body["message"]


def _wait_policy_active(objects: Any, other_node: str, timeout: float = 60.0) -> None:
    """A new policy takes a moment to reach the admission plugin: dry-run until it denies."""
    from kubernetes.client.exceptions import ApiException

    deadline = time.monotonic() + timeout
    while True:
        try:
            _apply_report(objects, other_node, dry_run=True)
        except ApiException as exc:
            if exc.status in (403, 422) and "ValidatingAdmissionPolicy" in (exc.body or ""):
                return
            if exc.status != 404 and exc.status != 403:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError("the node-bound ValidatingAdmissionPolicy never took effect")
        time.sleep(0.5)


def test_agent_token_writes_only_its_own_nodes_report(cluster: ClusterHandle, setup: Setup, tmp_path: Path) -> None:
    from kubernetes.client import CustomObjectsApi

    from resource_agent.kube.reporter import ReportWriter, report_status
    from resource_agent.kubeclient.config import load_connection
    from resource_agent.kubeclient.rest import KubeClient

    with cluster.api_client() as admin:
        token = pod_bound_token(admin, setup.namespace, setup.service_account, setup.pod_a)
        with token_api_client(admin, token) as agent:
            objects = CustomObjectsApi(agent)
            _wait_policy_active(objects, setup.node_b)

            # The agent's own writer, with the token of the pod on node A, writes report A (object + status).
            kubeconfig = token_kubeconfig(cluster.kubeconfig, token, tmp_path / "agent.kubeconfig")
            writer = ReportWriter(KubeClient(load_connection(str(kubeconfig))), max_backoff_seconds=0.5).start()
            try:
                writer.offer(_summary(setup.node_a))
                deadline = time.monotonic() + 30
                while writer.writes < 1 and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert writer.writes >= 1, f"agent could not write its own report: {writer.last_error}"
            finally:
                writer.stop()
            report = CustomObjectsApi(admin).get_cluster_custom_object(GROUP, VERSION, PLURAL, setup.node_a)
            assert report["spec"]["nodeName"] == setup.node_a
            assert report["status"]["nodeName"] == setup.node_a
            assert report["metadata"]["ownerReferences"][0]["name"] == setup.node_a

            # Patching its own report again (UPDATE) is allowed.
            objects.patch_cluster_custom_object(
                GROUP, VERSION, PLURAL, setup.node_a, {"metadata": {"labels": {"e2e": "patched"}}}
            )

            # The same writer offered node B's summary: refused, retried with backoff, and the reason is in its error.
            writer = ReportWriter(KubeClient(load_connection(str(kubeconfig))), max_backoff_seconds=0.2).start()
            try:
                writer.offer(_summary(setup.node_b))
                deadline = time.monotonic() + 30
                while writer.failures < 2 and time.monotonic() < deadline:
                    time.sleep(0.1)
            finally:
                writer.stop()
            assert writer.writes == 0 and writer.failures >= 2
            assert writer.last_error is not None and writer.last_error.startswith("HTTP 403 Forbidden: ")
            assert f"may not write ResourceReport '{setup.node_b}'" in writer.last_error

            # Node B's report: creating it is denied by the policy (RBAC alone would allow it).
            status, message = _denied(lambda: _apply_report(objects, setup.node_b))
            assert status == 403
            assert setup.policy in message
            assert f"the agent on node '{setup.node_a}' may not write ResourceReport '{setup.node_b}'" in message

            # Node B's report written by someone else: patching it or its status is denied too.
            _apply_report(CustomObjectsApi(admin), setup.node_b)
            CustomObjectsApi(admin).patch_cluster_custom_object_status(
                GROUP, VERSION, PLURAL, setup.node_b, report_status(_summary(setup.node_b), datetime.now(UTC)),
                field_manager="e2e", force=True, _content_type=APPLY,
            )  # fmt: skip
            status, message = _denied(
                lambda: objects.patch_cluster_custom_object(
                    GROUP, VERSION, PLURAL, setup.node_b, {"metadata": {"labels": {"e2e": "hijack"}}}
                )
            )
            assert status == 403 and setup.node_b in message
            status, _ = _denied(
                lambda: objects.patch_cluster_custom_object_status(
                    GROUP, VERSION, PLURAL, setup.node_b, {"status": {"agentVersion": "hijack"}}
                )
            )
            assert status == 403
            labels = CustomObjectsApi(admin).get_cluster_custom_object(GROUP, VERSION, PLURAL, setup.node_b)["metadata"]
            assert "e2e" not in labels.get("labels", {})

            # Its own name but someone else's spec.nodeName: rejected as invalid.
            status, message = _denied(
                lambda: _apply_report(objects, f"{setup.node_a}", body_node=setup.node_b, dry_run=True)
            )
            assert status in (403, 422)
            assert "spec.nodeName" in message


def test_token_without_node_claim_is_denied(cluster: ClusterHandle, setup: Setup) -> None:
    from kubernetes.client import CoreV1Api, CustomObjectsApi

    with cluster.api_client() as admin:
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}
        unbound = CoreV1Api(admin).create_namespaced_service_account_token(setup.service_account, setup.namespace, request)
        with token_api_client(admin, unbound.status.token) as agent:
            objects = CustomObjectsApi(agent)
            _wait_policy_active(objects, setup.node_b)
            status, message = _denied(lambda: _apply_report(objects, setup.node_a, dry_run=True))
            assert status == 403
            assert "carries no node name" in message


def test_policy_leaves_other_users_alone(cluster: ClusterHandle, setup: Setup) -> None:
    """The admin (not the agent's ServiceAccount) is not matched: it may write any report."""
    report = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ResourceReport",
        "metadata": {"name": setup.node_b},
        "spec": {"nodeName": setup.node_b},
    }
    result = cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", input=json.dumps(report), check=False
    )
    assert result.returncode == 0, result.stderr
    assert "(server dry run)" in result.stdout
