"""LLM insight end to end: a real operator process, real agents, and a local
OpenAI-compatible endpoint (the outer edge) driven through the real SDK."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.demo.stack import ManagedProcess, agent_process, install_crds, operator_process, stop_all, wait_until
from devtools.devcluster.nodes import NodeSpec
from devtools.llm_server import FakeLLMServer, Mode
from e2e.providers import ClusterHandle

GROUP, VERSION = "resource.optiinfra.io", "v1alpha1"
REPORT_INTERVAL_SECONDS = 1


def recommendations(cluster: ClusterHandle, nodes: list[str]) -> list[dict[str, Any]]:
    from kubernetes.client import CustomObjectsApi

    with cluster.api_client() as client:
        items = CustomObjectsApi(client).list_cluster_custom_object(GROUP, VERSION, "resourcerecommendations")["items"]
    return [item for item in items if item["spec"]["nodeName"] in nodes]


def run_loop(cluster: ClusterHandle, log_dir: Path, server: FakeLLMServer, nodes: list[str]) -> list[ManagedProcess]:
    install_crds(cluster.kubectl)
    cluster.add_nodes([NodeSpec(name=node) for node in nodes])
    processes = [
        agent_process(node, "thermal-throttle", log_dir, kubeconfig=cluster.kubeconfig,
                      report_interval=f"{REPORT_INTERVAL_SECONDS}s", interval="0.5s", window="10s").start()
        for node in nodes
    ]
    llm_env = {
        "RESOURCE_AGENT_LLM_PROVIDER": "openai-compatible",
        "RESOURCE_AGENT_LLM_BASE_URL": server.openai_base_url,
        "RESOURCE_AGENT_LLM_MODEL": "e2e-model",
        "RESOURCE_AGENT_LLM_MAX_RETRIES": "0",
        "RESOURCE_AGENT_LLM_TIMEOUT_SECONDS": "5",
    }
    processes.append(operator_process(log_dir, kubeconfig=cluster.kubeconfig, env=llm_env, name=f"operator-{nodes[0]}").start())
    return processes


@pytest.fixture
def nodes() -> list[str]:
    suffix = uuid.uuid4().hex[:6]
    return [f"gpu-llm-{suffix}-a", f"gpu-llm-{suffix}-b"]


@pytest.fixture
def processes(request: pytest.FixtureRequest) -> Iterator[list[ManagedProcess]]:
    started: list[ManagedProcess] = []
    yield started
    stop_all(started)


def test_insight_once_per_node_over_twenty_report_cycles(
    cluster: ClusterHandle, tmp_path: Path, nodes: list[str], processes: list[ManagedProcess]
) -> None:
    with FakeLLMServer(mode=Mode.OK) as server:
        processes += run_loop(cluster, tmp_path, server, nodes)

        def all_explained() -> bool:
            found = recommendations(cluster, nodes)
            return bool(found) and {r["spec"]["nodeName"] for r in found} == set(nodes) and all(
                r.get("status", {}).get("insight") for r in found
            )

        try:
            wait_until(all_explained, 90, what="status.insight on every recommendation")
        except TimeoutError:
            pytest.fail("\n".join(p.tail() for p in processes))
        time.sleep(20 * REPORT_INTERVAL_SECONDS)  # 20 more report cycles with the same findings
        assert len(server.requests) == len(nodes), [r.path for r in server.requests]
        insight = recommendations(cluster, nodes)[0]["status"]["insight"]
        assert insight["model"] == "e2e-model" and 1 <= insight["priority"] <= 5 and insight["steps"]
        managers = {m["manager"] for m in recommendations(cluster, nodes)[0]["metadata"]["managedFields"]}
        assert "resource-agent-insight" in managers
        for request in server.requests:  # redacted before it left the cluster
            assert all(node not in request.text for node in nodes)


def test_failing_provider_leaves_recommendations_and_the_operator_alive(
    cluster: ClusterHandle, tmp_path: Path, nodes: list[str], processes: list[ManagedProcess]
) -> None:
    with FakeLLMServer(mode=Mode.FAIL) as server:
        processes += run_loop(cluster, tmp_path, server, nodes)
        wait_until(lambda: {r["spec"]["nodeName"] for r in recommendations(cluster, nodes)} == set(nodes), 90,
                   what="recommendations despite the failing provider")
        wait_until(lambda: len(server.requests) >= len(nodes), 30, what="the operator to try the provider")
        time.sleep(3)
        operator = processes[-1]
        assert operator.alive, operator.tail()
        assert not any(r.get("status", {}).get("insight") for r in recommendations(cluster, nodes))
        assert all(r["status"]["phase"] == "Open" for r in recommendations(cluster, nodes))
