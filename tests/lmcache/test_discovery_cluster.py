"""Pod discovery (`list_node_pods`) against a real API server: only this node's pods, as the API server's JSON."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from kubernetes import client

from devtools.demo.stack import wait_until
from devtools.devcluster.nodes import NodeSpec
from resource_agent.lmcache.discovery import POD_LIST_REUSE_SECONDS, PORT_ANNOTATION, instances_from_pods, list_node_pods


def test_lists_the_pods_on_the_node_through_the_kubeconfig(cluster: Any, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    here, there = (f"disc-{uuid.uuid4().hex[:6]}" for _ in range(2))
    cluster.add_nodes([NodeSpec(name=here, gpus=1), NodeSpec(name=there, gpus=1)])
    with cluster.api_client() as admin:
        for node in (here, there):
            pod: Any = {"metadata": {"name": f"vllm-{node}", "annotations": {PORT_ANNOTATION: "6999"}},
                        "spec": {"nodeName": node, "containers": [{"name": "vllm", "image": "vllm:test"}]}}
            client.CoreV1Api(admin).create_namespaced_pod(namespace, pod)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    pods = wait_until(lambda: [p for p in list_node_pods(here) if p["status"].get("podIP")], 60, what="the pod running with an IP")
    assert [p["metadata"]["name"] for p in pods] == [f"vllm-{here}"]
    instances, errors = instances_from_pods(pods)
    assert errors == []
    assert [instance.urls[0] for instance in instances] == [f"http://{pods[0]['status']['podIP']}:6999"]
    # the LMCache and serving discoveries refresh in the same sample: the second asks nothing of the API server
    assert list_node_pods(here) is list_node_pods(here)
    first = list_node_pods(here)
    time.sleep(POD_LIST_REUSE_SECONDS + 0.1)
    assert list_node_pods(here) is not first
