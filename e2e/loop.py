"""The operator loop on a real API server, shared by e2e/test_operator_loop.py and the fault tests.

Two `resource-agent agent` processes report for two simulated GPU nodes
(scenario collectors instead of NVML/psutil), each with a ServiceAccount token
bound to its DaemonSet pod on that node; `resource-agent operator` runs with
its own ServiceAccount. RBAC, ServiceAccounts, the node-bound admission policy
and the peering object come from the chart, rendered by the real helm.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devtools.demo.stack import ManagedProcess, agent_process, install_crds, operator_process, stop_all, wait_until
from devtools.devcluster.nodes import NodeSpec
from e2e.providers import ClusterHandle
from e2e.tokens import pod_bound_token, token_kubeconfig
from resource_agent.analysis.engine import analyze
from resource_agent.node_agent.window import summarize
from resource_agent.scenarios import generate
from tests.chart.chart_render import helm_binary, template

GROUP, VERSION = "resource.optiinfra.io", "v1alpha1"
SCENARIOS = {"a": "idle-gpu-holding-memory", "b": "thermal-throttle"}
REPORT_INTERVAL_SECONDS = 3
REPORT_HEARTBEAT_SECONDS = 6  # an unchanged report is rewritten this often (a material change at once)
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

    def mine(self) -> list[dict[str, Any]]:
        """The recommendations of this loop's nodes (other tests share the cluster)."""
        return [r for r in self.objects("resourcerecommendations") if r["spec"]["nodeName"] in self.nodes.values()]

    def start_agent(self, key: str, scenario: str) -> None:
        agent = agent_process(self.nodes[key], scenario, self.log_dir, kubeconfig=self.kubeconfigs[key],
                              report_interval=f"{REPORT_INTERVAL_SECONDS}s", report_heartbeat=f"{REPORT_HEARTBEAT_SECONDS}s",
                              window="20s")
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


def rules_of(recommendations: list[dict[str, Any]], phases: tuple[str, ...] = ("Open",)) -> set[str]:
    return {r["spec"]["rule"] for r in recommendations if r.get("status", {}).get("phase") in phases}


def identities(recommendations: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(node, rule, target) of each recommendation: two equal ones are duplicates."""
    return [(r["spec"]["nodeName"], r["spec"]["rule"], json.dumps(r["spec"]["target"], sort_keys=True))
            for r in recommendations]


def metric_total(process: ManagedProcess, name: str, **labels: str) -> float:
    """The sum of the series of metric ``name`` on the operator's /metrics that carry ``labels``."""
    assert process.metrics_url
    text = urllib.request.urlopen(process.metrics_url, timeout=5).read().decode()
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and all(label in line for label in wanted))


def operator_writes(process: ManagedProcess) -> float:
    """The operator's own count of API requests (resource_agent_operator_api_requests_total)."""
    return metric_total(process, "resource_agent_operator_api_requests_total")


def metrics_reachable(process: ManagedProcess) -> bool:
    try:
        operator_writes(process)
    except OSError:
        return False
    return True


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


@contextmanager
def running_loop(cluster: ClusterHandle, log_dir: Path, prefix: str = "loop") -> Iterator[Loop]:
    """Chart RBAC, two agents (SCENARIOS) and one operator; everything stopped and deleted after."""
    helm = helm_binary()
    if helm is None:
        pytest.skip("no helm binary: run scripts/build-controlplane")
    from kubernetes.client import CoreV1Api

    suffix = uuid.uuid4().hex[:6]
    namespace, release = f"{prefix}-{suffix}", f"{prefix}{suffix}"
    nodes = {"a": f"gpu-{prefix}-{suffix}-a", "b": f"gpu-{prefix}-{suffix}-b"}
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
        # their reports and recommendations go with them: later tests' operators must not see these findings
        cluster.kubectl("delete", "node", *nodes.values(), "--ignore-not-found", "--wait=false", check=False)
