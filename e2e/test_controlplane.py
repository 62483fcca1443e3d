"""The test cluster is a real Kubernetes: validation, RBAC, watches, scheduling, kubectl and helm."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from devtools.devcluster.build import BuildError, ensure_binaries, kubernetes_version
from devtools.devcluster.nodes import NodeSpec, cpu_nodes
from devtools.devcluster.process import pid_alive
from e2e.providers import ClusterHandle
from e2e.tokens import pod_bound_token, token_api_client, token_kubeconfig

pytestmark = pytest.mark.cluster

GPU_NODES = [
    NodeSpec("gpu-node-a"),
    NodeSpec("gpu-node-b", gpu_product="NVIDIA-A100-SXM4-80GB", gpu_taint=True),
]
CPU_NODES = cpu_nodes(2, prefix="cpu-node")


@pytest.fixture
def api(cluster: ClusterHandle) -> Iterator[client.ApiClient]:
    with cluster.api_client() as api_client:
        yield api_client


@pytest.fixture
def nodes(cluster: ClusterHandle) -> list[str]:
    return cluster.add_nodes([*GPU_NODES, *CPU_NODES])


def eventually(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2) -> Any:
    """Retry ``check`` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met after {timeout:.0f}s; last value: {value!r}")
        time.sleep(interval)


def test_server_reports_the_pinned_release(cluster: ClusterHandle) -> None:
    if cluster.provider != "local":
        pytest.skip("only the local control plane runs the pinned release")
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == kubernetes_version()
    assert version["clientVersion"]["gitVersion"] == kubernetes_version()


def test_server_side_validation_rejects_invalid_objects(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bad"},
        "spec": {
            "replicas": -1,
            "selector": {"matchLabels": {"app": "a"}},
            "template": {
                "metadata": {"labels": {"app": "b"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }
    with pytest.raises(ApiException) as rejected:
        apps.create_namespaced_deployment(namespace, deployment)
    assert rejected.value.status == 422
    body = json.loads(rejected.value.body)
    fields = {cause["field"] for cause in body["details"]["causes"]}
    assert {"spec.replicas", "spec.template.metadata.labels"} <= fields


def test_server_side_field_validation_rejects_unknown_fields(cluster: ClusterHandle, namespace: str) -> None:
    manifest = json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "typo", "namespace": namespace}, "dataa": {"k": "v"},
    })  # fmt: skip
    rejected = cluster.kubectl("create", "--validate=strict", "-f", "-", input=manifest, check=False)
    assert rejected.returncode != 0
    assert 'unknown field "dataa"' in rejected.stderr
    accepted = cluster.kubectl("create", "--validate=ignore", "-f", "-", input=manifest)
    assert "configmap/typo created" in accepted.stdout


def test_crd_schema_is_enforced(api: client.ApiClient, namespace: str) -> None:
    group = f"e{uuid.uuid4().hex[:6]}.test.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                    "type": "object", "required": ["size"],
                    "properties": {"size": {"type": "integer", "minimum": 1}},
                }}}},
            }],
        },
    }  # fmt: skip
    extensions = client.ApiextensionsV1Api(api)
    extensions.create_custom_resource_definition(crd)
    try:
        eventually(lambda: _established(extensions.read_custom_resource_definition(f"widgets.{group}")))
        custom = client.CustomObjectsApi(api)

        def widget(size: object) -> dict[str, Any]:
            return {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": size}}

        with pytest.raises(ApiException) as rejected:
            custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", widget(0))
        assert rejected.value.status == 422 and "spec.size" in rejected.value.body
        created = custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", widget(3))
        assert created["spec"]["size"] == 3
    finally:
        extensions.delete_custom_resource_definition(f"widgets.{group}")


def _established(crd: Any) -> bool:
    return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])


def test_rbac_denies_what_a_service_account_lacks(api: client.ApiClient, namespace: str) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(namespace, {
        "metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
    })  # fmt: skip
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
    })  # fmt: skip
    token = core.create_namespaced_service_account_token(
        "reader", namespace, {"spec": {"audiences": [], "expirationSeconds": 600}}
    ).status.token
    with token_api_client(api, token) as as_reader:
        reader = client.CoreV1Api(as_reader)
        eventually(lambda: _allowed(lambda: reader.list_namespaced_pod(namespace)))
        for forbidden in (
            lambda: reader.list_namespaced_secret(namespace),
            lambda: reader.list_node(),
            lambda: reader.delete_namespace(namespace),
        ):
            with pytest.raises(ApiException) as denied:
                forbidden()
            assert denied.value.status == 403
            assert f"system:serviceaccount:{namespace}:reader" in denied.value.body


def _allowed(call: Callable[[], object]) -> bool:
    try:
        call()
    except ApiException as exc:
        if exc.status == 403:  # the RoleBinding may not be in the authorizer's cache yet
            return False
        raise
    return True


def test_pod_bound_token_carries_the_node(
    cluster: ClusterHandle, api: client.ApiClient, namespace: str, nodes: list[str], tmp_path: Path
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "agent"}})
    core.create_namespaced_pod(namespace, {
        "metadata": {"name": "agent"},
        "spec": {
            "serviceAccountName": "agent",
            "nodeSelector": {"kubernetes.io/hostname": "gpu-node-a"},
            "containers": [{"name": "agent", "image": "resource-agent:dev"}],
        },
    })  # fmt: skip
    token = pod_bound_token(api, namespace, "agent", "agent")
    with token_api_client(api, token) as as_pod:
        review = client.AuthenticationV1Api(as_pod).create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
    user = review.status.user_info
    assert user.username == f"system:serviceaccount:{namespace}:agent"
    assert user.extra["authentication.kubernetes.io/node-name"] == ["gpu-node-a"]
    assert user.extra["authentication.kubernetes.io/pod-name"] == ["agent"]

    kubeconfig = token_kubeconfig(cluster.kubeconfig, token, tmp_path / "agent.kubeconfig")
    whoami = cluster.kubectl("auth", "whoami", "-o", "json", f"--kubeconfig={kubeconfig}")
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == user.username
    denied = cluster.kubectl("get", "secrets", "-n", namespace, f"--kubeconfig={kubeconfig}", check=False)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr


def test_watch_events_arrive(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    events: list[tuple[str, str]] = []
    started = threading.Event()

    def follow() -> None:
        watcher = watch.Watch()
        version = core.list_namespaced_config_map(namespace).metadata.resource_version
        started.set()
        for event in watcher.stream(
            core.list_namespaced_config_map, namespace, resource_version=version, timeout_seconds=30
        ):
            obj = event["object"]
            if obj.metadata.name == "watched":
                events.append((event["type"], (obj.data or {}).get("k", "")))
            if event["type"] == "DELETED":
                watcher.stop()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    assert started.wait(10)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "watched"}, "data": {"k": "1"}})
    core.patch_namespaced_config_map("watched", namespace, {"data": {"k": "2"}})
    core.delete_namespaced_config_map("watched", namespace)
    thread.join(30)
    assert events == [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]


def test_gpu_daemonset_runs_on_gpu_nodes_only(api: client.ApiClient, namespace: str, nodes: list[str]) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    labels = {"app": "gpu-agent"}
    apps.create_namespaced_daemon_set(namespace, {
        "metadata": {"name": "gpu-agent"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"nvidia.com/gpu.present": "true"},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{"name": "agent", "image": "resource-agent:dev"}],
                },
            },
        },
    })  # fmt: skip
    gpu_names = {n.metadata.name for n in core.list_node(label_selector="nvidia.com/gpu.present=true").items}
    cpu_names = {spec.name for spec in CPU_NODES}
    assert {"gpu-node-a", "gpu-node-b"} <= gpu_names and not gpu_names & cpu_names

    def running_on() -> set[str] | None:
        pods = core.list_namespaced_pod(namespace, label_selector="app=gpu-agent").items
        placed = {p.spec.node_name for p in pods if p.status.phase == "Running"}
        return placed if placed == gpu_names else None

    eventually(running_on)
    status = eventually(lambda: _ready_daemonset(apps.read_namespaced_daemon_set("gpu-agent", namespace)))
    assert status.desired_number_scheduled == len(gpu_names)
    assert status.number_ready == len(gpu_names)


def _ready_daemonset(ds: Any) -> Any:
    status = ds.status
    complete = status.desired_number_scheduled and status.number_ready == status.desired_number_scheduled
    return status if complete else None


@pytest.mark.parametrize("which", ["built", "machine"])
def test_kubectl_lists_the_simulated_nodes(cluster: ClusterHandle, nodes: list[str], which: str) -> None:
    kubectl = str(cluster.kubectl_path) if which == "built" else shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl on PATH")
    done = subprocess.run(
        [kubectl, f"--kubeconfig={cluster.kubeconfig}", "get", "nodes", "-o", "name"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert set(nodes) <= {line.removeprefix("node/") for line in done.stdout.split()}


def test_helm_installs_a_chart(cluster: ClusterHandle, api: client.ApiClient, namespace: str, tmp_path: Path) -> None:
    chart = tmp_path / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: tiny\nversion: 0.1.0\nkubeVersion: '>=1.30.0-0'\n"
    )
    (chart / "values.yaml").write_text("message: hello\n")
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n"
        "data:\n  message: {{ .Values.message | quote }}\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    )
    cluster.helm("install", "tiny", str(chart), "-n", namespace, "--set", "message=from-helm", "--wait")
    data = client.CoreV1Api(api).read_namespaced_config_map("tiny-config", namespace).data
    assert data["message"] == "from-helm"
    server = client.VersionApi(api).get_code().git_version
    assert data["kube"] == server
    releases = json.loads(cluster.helm("list", "-n", namespace, "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in releases] == [("tiny", "deployed")]
    cluster.helm("uninstall", "tiny", "-n", namespace, "--wait")
    with pytest.raises(ApiException) as gone:
        client.CoreV1Api(api).read_namespaced_config_map("tiny-config", namespace)
    assert gone.value.status == 404


# -- lifecycle: separate clusters, so these do not use the shared `cluster` fixture --------------

OWNER = """
import json, sys, time
from pathlib import Path
from devtools.devcluster.local import LocalCluster
cluster = LocalCluster(Path(sys.argv[1]), Path(sys.argv[2])).start()
pids = [c.pid for c in cluster.components]
print(json.dumps({"pids": pids, "startup": cluster.startup_seconds}), flush=True)
time.sleep(600)
"""


@pytest.fixture
def bin_dir(request: pytest.FixtureRequest) -> Path:
    if request.config.getoption("--cluster") != "local":
        pytest.skip("lifecycle tests run with --cluster=local")
    try:
        return ensure_binaries()
    except BuildError as exc:
        pytest.skip(str(exc))


def _all_gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (alive := [pid for pid in pids if pid_alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_no_orphans_when_the_owner_dies(bin_dir: Path, tmp_path: Path, signum: int) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path / "state"), str(bin_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        started = json.loads(owner.stdout.readline())
        pids = started["pids"]
        assert len(pids) == 5 and all(pid_alive(pid) for pid in pids)
        assert started["startup"] < 30, f"warm start took {started['startup']:.1f}s"
        owner.send_signal(signum)
        owner.wait(30)
    finally:
        owner.kill()
    assert _all_gone(pids) == []
    if signum == signal.SIGTERM:
        assert not (tmp_path / "state" / "state.json").exists()


@pytest.mark.slow
def test_dev_cluster_cli(bin_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "dev"
    cli = [sys.executable, "-c", "from resource_agent.cli import main; main()", "dev-cluster"]

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args, f"--state-dir={state}"], capture_output=True, text=True, check=check)

    up = run("up", "--gpu-nodes=2", "--cpu-nodes=1")
    assert f"export KUBECONFIG={state / 'kubeconfig'}" in up.stdout
    try:
        nodes = subprocess.run(
            [str(bin_dir / "kubectl"), f"--kubeconfig={state / 'kubeconfig'}", "get", "nodes", "-o", "name",
             "-l", "type=kwok"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert sorted(nodes) == ["node/cpu-node-0", "node/gpu-node-0", "node/gpu-node-1"]
        status = run("status")
        assert "ready" in status.stdout
        for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            assert re.search(rf"{component}\s+pid \d+\s+healthy", status.stdout), status.stdout
        assert re.search(r"kwok\s+pid \d+\s+running", status.stdout), status.stdout
        pids = [int(pid) for pid in re.findall(r"pid (\d+)", status.stdout)]
    finally:
        down = run("down")
    assert "stopped" in down.stdout
    assert _all_gone(pids) == []
    assert run("status", check=False).returncode == 1
