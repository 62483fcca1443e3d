"""Agents and an operator whose LLM provider is the local fake server (devtools/llm_server.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devtools.demo.stack import ManagedProcess, agent_process, install_crds, operator_process
from devtools.devcluster.nodes import NodeSpec
from devtools.llm_server import FakeLLMServer
from e2e.providers import ClusterHandle

GROUP, VERSION = "resource.optiinfra.io", "v1alpha1"
REPORT_INTERVAL_SECONDS = 1


def recommendations(cluster: ClusterHandle, nodes: list[str]) -> list[dict[str, Any]]:
    from kubernetes.client import CustomObjectsApi

    with cluster.api_client() as client:
        items = CustomObjectsApi(client).list_cluster_custom_object(GROUP, VERSION, "resourcerecommendations")["items"]
    return [item for item in items if item["spec"]["nodeName"] in nodes]


def run_loop(cluster: ClusterHandle, log_dir: Path, server: FakeLLMServer, nodes: list[str], *,
             scenarios: list[str] | None = None, max_retries: int = 0, timeout_seconds: float = 5) -> list[ManagedProcess]:
    """Agents for ``nodes`` (``scenarios``, default thermal-throttle each) and an operator whose LLM is ``server``;
    the operator is the last process."""
    install_crds(cluster.kubectl)
    cluster.add_nodes([NodeSpec(name=node) for node in nodes])
    processes = [
        agent_process(node, scenario, log_dir, kubeconfig=cluster.kubeconfig,
                      report_interval=f"{REPORT_INTERVAL_SECONDS}s", interval="0.5s", window="10s").start()
        for node, scenario in zip(nodes, scenarios or ["thermal-throttle"] * len(nodes), strict=True)
    ]
    llm_env = {
        "RESOURCE_AGENT_LLM_PROVIDER": "openai-compatible",
        "RESOURCE_AGENT_LLM_BASE_URL": server.openai_base_url,
        "RESOURCE_AGENT_LLM_MODEL": "e2e-model",
        "RESOURCE_AGENT_LLM_MAX_RETRIES": str(max_retries),
        "RESOURCE_AGENT_LLM_TIMEOUT_SECONDS": f"{timeout_seconds:g}",
    }
    processes.append(operator_process(log_dir, kubeconfig=cluster.kubeconfig, env=llm_env, name=f"operator-{nodes[0]}").start())
    return processes
