"""The Kubernetes loop on a real API server, with the product's real processes.

Two `resource-agent agent` processes report for two simulated GPU nodes
(scenario collectors instead of NVML/psutil), each with a ServiceAccount token
bound to its DaemonSet pod on that node; `resource-agent operator` runs with
its own ServiceAccount. RBAC, ServiceAccounts, the node-bound admission policy
and the peering object come from the chart, rendered by the real helm.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devtools.demo.stack import (
    ManagedProcess,
    agent_process,
    install_crds,
    operator_process,
    stop_all,
    wait_until,
)
from devtools.devcluster.nodes import NodeSpec
from e2e.providers import ClusterHandle
from e2e.tokens import pod_bound_token, token_kubeconfig
from resource_agent.analysis.engine import analyze
from resource_agent.node_agent.window import summarize
from resource_agent.scenarios import generate
from tests.chart.chart_render import helm_binary, template

GROUP, VERSION = "resource.optiinfra.io", "v1alpha1"
SCENARIOS = {"a": "idle-gpu-holding-memory", "b": "thermal-throttle"}
CHART_PARTS = (
    "templates/agent-serviceaccount.yaml", "templates/agent-rbac.yaml", "templates/agent-admission-policy.yaml",
    "templates/operator-serviceaccount.yaml", "templates/operator-rbac.yaml", "templates/operator-peering.yaml",
)


@dataclass
class Loop:
    cluster: ClusterHandle
    namespace: str
    release: str
    nodes: dict[str, str]  # "a"/"b" -> node name
    kubeconfigs: dict[str, Path]  # "a"/"b"/"operator" -> kubeconfig with that identity's token
    log_dir: Path
    agents: dict[str, ManagedProcess] = field(default_factory=dict)
    operators: list[ManagedProcess] = field(default_factory=list)

    def objects(self, plural: str) -> list[dict[str, Any]]:
        from kubernetes.client import CustomObjectsApi

        with self.cluster.api_client() as client:
            return CustomObjectsApi(client).list_cluster_custom_object(GROUP, VERSION, plural)["items"]

    def recommendations(self, key: str) -> list[dict[str, Any]]:
        return [r for r in self.objects("resourcerecommendations") if r["spec"]["nodeName"] == self.nodes[key]]

    def start_agent(self, key: str, scenario: str) -> None:
        agent = agent_process(self.nodes[key], scenario, self.log_dir, kubeconfig=self.kubeconfigs[key],
                              report_interval="3s", window="20s")
        self.agents[key] = agent.start()

    def start_operator(self, name: str = "operator", priority: int = 100) -> ManagedProcess:
        process = operator_process(self.log_dir, kubeconfig=self.kubeconfigs["operator"], name=name,
                                   peering=self.release, resolved_ttl="1h", evidence_refresh="10m")
        process.args.append(f"--priority={priority}")
        self.operators.append(process.start())
        return process

    def diagnostics(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail()}" for p in [*self.agents.values(), *self.operators])


def expected_rules(scenario: str, node: str) -> set[str]:
    """What the engine finds for the scenario, computed in-process from the same generator."""
    summary = summarize(list(generate(scenario, seed=0, samples=20, interval_seconds=1.0)), node)
    return {finding.rule for finding in analyze(summary).findings}


def _apply(cluster: ClusterHandle, manifest: str) -> None:
    cluster.kubectl("apply", "--server-side", "-f", "-", input=manifest)


def _daemonset(namespace: str, service_account: str, selector: dict[str, str]) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "resource-agent", "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": "resource-agent"}},
            "template": {
                "metadata": {"labels": {"app": "resource-agent"}},
                "spec": {
                    "serviceAccountName": service_account,
                    "nodeSelector": selector,
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                                    {"key": "kwok.x-k8s.io/node", "operator": "Exists"}],
                    "containers": [{"name": "agent", "image": "resource-agent:e2e"}],
                },
            },
        },
    })


def _operator_token(cluster: ClusterHandle, namespace: str, service_account: str) -> str:
    from kubernetes.client import CoreV1Api

    with cluster.api_client() as client:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [], "expirationSeconds": 3600}}
        return str(CoreV1Api(client).create_namespaced_service_account_token(service_account, namespace, body).status.token)


@pytest.fixture(scope="module")
def loop(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    helm = helm_binary()
    if helm is None:
        pytest.skip("no helm binary: run scripts/build-controlplane")
    from kubernetes.client import CoreV1Api

    suffix = uuid.uuid4().hex[:6]
    namespace, release = f"loop-{suffix}", f"loop{suffix}"
    nodes = {"a": f"gpu-loop-{suffix}-a", "b": f"gpu-loop-{suffix}-b"}
    selector = {"e2e-loop": suffix}
    cluster.add_nodes([NodeSpec(name=name, labels=selector) for name in nodes.values()])
    install_crds(cluster.kubectl)
    cluster.kubectl("create", "namespace", namespace)
    values = {"fullnameOverride": release}
    manifest = template(helm, values, *[f"--show-only={part}" for part in CHART_PARTS], release=release, namespace=namespace)
    _apply(cluster, manifest)
    agent_sa, operator_sa = f"{release}-agent", f"{release}-operator"
    _apply(cluster, _daemonset(namespace, agent_sa, selector))

    def pods_by_node() -> dict[str, str]:
        with cluster.api_client() as client:
            pods = CoreV1Api(client).list_namespaced_pod(namespace, label_selector="app=resource-agent").items
        return {p.spec.node_name: p.metadata.name for p in pods if p.spec.node_name and p.status.phase == "Running"}

    placed = wait_until(lambda: (m := pods_by_node()) and set(nodes.values()) <= set(m) and m, 90, what="agent pods")
    log_dir = tmp_path_factory.mktemp("loop-logs")
    kubeconfigs = {}
    with cluster.api_client() as client:
        for key, node in nodes.items():
            token = pod_bound_token(client, namespace, agent_sa, placed[node])
            kubeconfigs[key] = token_kubeconfig(cluster.kubeconfig, token, log_dir / f"agent-{key}.kubeconfig")
    kubeconfigs["operator"] = token_kubeconfig(
        cluster.kubeconfig, _operator_token(cluster, namespace, operator_sa), log_dir / "operator.kubeconfig"
    )
    state = Loop(cluster, namespace, release, nodes, kubeconfigs, log_dir)
    for key, scenario in SCENARIOS.items():
        state.start_agent(key, scenario)
    state.start_operator()
    try:
        yield state
    finally:
        stop_all([*state.agents.values(), *state.operators])
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def rules_of(recommendations: list[dict[str, Any]], phases: tuple[str, ...] = ("Open",)) -> set[str]:
    return {r["spec"]["rule"] for r in recommendations if r.get("status", {}).get("phase") in phases}


def test_expected_recommendations_appear(loop: Loop) -> None:
    for key, scenario in SCENARIOS.items():
        expected = expected_rules(scenario, loop.nodes[key])
        assert expected, f"scenario {scenario} should produce findings"
        try:
            wait_until(lambda key=key, expected=expected: rules_of(loop.recommendations(key)) == expected, 90, what=f"{scenario} recommendations")
        except TimeoutError:
            pytest.fail(f"{key}: got {rules_of(loop.recommendations(key))}, want {expected}\n{loop.diagnostics()}")


def test_kubectl_shows_the_columns(loop: Loop) -> None:
    output = loop.cluster.kubectl("get", "resourcerecommendations").stdout
    assert output.splitlines()[0].split() == ["NAME", "NODE", "SEVERITY", "CATEGORY", "RULE", "PHASE", "DECISION", "AGE"]
    assert loop.nodes["a"] in output and "Open" in output and "Pending" in output
    wide = loop.cluster.kubectl("get", "optiinfra", "-o", "wide").stdout
    assert "ACTION" in wide and "resourcereport" in wide


def test_operator_records_events_with_its_own_service_account(loop: Loop) -> None:
    events = loop.cluster.kubectl(
        "get", "events", "-n", "default", "--field-selector=reason=RecommendationCreated",
        "-o", "jsonpath={range .items[*]}{.involvedObject.name}{'\\n'}{end}",
    ).stdout.split()
    created = {r["metadata"]["name"] for key in SCENARIOS for r in loop.recommendations(key)}
    assert created <= set(events), created - set(events)


def test_reports_are_written_by_the_agents_own_field_manager(loop: Loop) -> None:
    reports = {r["metadata"]["name"]: r for r in loop.objects("resourcereports")}
    for node in loop.nodes.values():
        report = reports[node]
        managers = {entry["manager"] for entry in report["metadata"]["managedFields"]}
        assert managers == {"resource-agent"}, managers  # kopf wrote nothing to the reports
        assert report["metadata"]["ownerReferences"][0]["kind"] == "Node"


def test_dismissed_recommendation_is_not_recreated(loop: Loop) -> None:
    target = sorted(loop.recommendations("a"), key=lambda r: r["metadata"]["name"])[0]
    name, uid = target["metadata"]["name"], target["metadata"]["uid"]
    loop.cluster.kubectl("patch", "resourcerecommendation", name, "--type=merge", "-p", '{"spec":{"decision":"Dismissed"}}')
    wait_until(lambda: next(r for r in loop.recommendations("a") if r["metadata"]["name"] == name)
               .get("status", {}).get("phase") == "Dismissed", 30, what="phase Dismissed")
    time.sleep(8)  # more than two report intervals
    same = [r for r in loop.recommendations("a") if r["metadata"]["name"] == name]
    assert len(same) == 1 and same[0]["metadata"]["uid"] == uid
    assert same[0]["spec"]["decision"] == "Dismissed" and same[0]["status"]["phase"] == "Dismissed"


def _identities(recommendations: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["spec"]["nodeName"], r["spec"]["rule"], json.dumps(r["spec"]["target"], sort_keys=True))
            for r in recommendations]


def test_killed_operator_restarts_without_duplicates(loop: Loop) -> None:
    before = {r["metadata"]["name"]: r["metadata"]["uid"] for r in loop.objects("resourcerecommendations")}
    loop.operators[0].kill()
    loop.start_operator(name="operator-restarted", priority=200)  # above the dead one's lingering peering record
    time.sleep(10)
    after = loop.objects("resourcerecommendations")
    identities = _identities(after)
    assert len(identities) == len(set(identities)), "duplicate recommendations"
    for recommendation in after:
        name = recommendation["metadata"]["name"]
        if name in before:
            assert recommendation["metadata"]["uid"] == before[name], f"{name} was recreated"


def _writes(process: ManagedProcess) -> float:
    assert process.metrics_url
    text = urllib.request.urlopen(process.metrics_url, timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("resource_agent_operator_api_requests_total{"))


def _reachable(process: ManagedProcess) -> bool:
    try:
        _writes(process)
    except OSError:
        return False
    return True


def test_two_replicas_do_not_fight(loop: Loop) -> None:
    active = loop.operators[-1]
    standby = loop.start_operator(name="operator-standby", priority=10)
    wait_until(lambda: _reachable(standby), 30, what="the standby's metrics endpoint")
    time.sleep(5)  # the standby reads the peering object and its peer's higher priority
    start_active, start_standby = _writes(active), _writes(standby)
    loop.agents["b"].stop()
    loop.start_agent("b", "healthy-busy")  # a change both replicas see
    wait_until(lambda: _writes(active) > start_active, 30, what="the active replica to act")
    time.sleep(5)
    assert _writes(standby) == start_standby, "the standby replica wrote while the active one ran"
    standby.stop()


def test_cleared_condition_is_resolved(loop: Loop) -> None:
    # agent b now runs healthy-busy (previous test): its thermal findings must be Resolved
    expected_gone = expected_rules(SCENARIOS["b"], loop.nodes["b"]) - expected_rules("healthy-busy", loop.nodes["b"])
    assert expected_gone
    wait_until(lambda: expected_gone <= rules_of(loop.recommendations("b"), ("Resolved",)), 60, what="Resolved phase")
    resolved = [r for r in loop.recommendations("b") if r["spec"]["rule"] in expected_gone]
    assert all(r["status"].get("resolvedAt") for r in resolved)


def test_deleting_a_node_collects_its_report_and_recommendations(loop: Loop) -> None:
    loop.agents["a"].stop()
    assert loop.recommendations("a")
    loop.cluster.kubectl("delete", "node", loop.nodes["a"])
    wait_until(lambda: loop.nodes["a"] not in {r["metadata"]["name"] for r in loop.objects("resourcereports")}, 60,
               what="the report to be garbage-collected")
    wait_until(lambda: not loop.recommendations("a"), 60, what="the recommendations to be garbage-collected")
