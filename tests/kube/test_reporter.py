"""The agent's ResourceReport writer against a real API server, and while it is away."""

from __future__ import annotations

import socket
import time
import uuid

from kubernetes import client

from devtools.demo.stack import install_crds, wait_until
from devtools.devcluster.nodes import NodeSpec
from resource_agent.api.samples import CollectorState
from resource_agent.kube.reporter import ReportWriter
from resource_agent.kubeclient.config import Connection, load_connection
from resource_agent.kubeclient.rest import KubeClient
from resource_agent.node_agent.window import summarize
from resource_agent.scenarios import generate

GROUP, VERSION, PLURAL = "resource.optiinfra.io", "v1alpha1", "resourcereports"


def summary_for(node: str, seed: int = 0):
    return summarize(list(generate("healthy-busy", seed=seed, samples=5, gpus=2)), node)


def test_writes_report_with_node_owner_and_recreates_it(cluster) -> None:
    install_crds(cluster.kubectl)
    node = f"rep-{uuid.uuid4().hex[:6]}"
    cluster.add_nodes([NodeSpec(name=node, gpus=2)])
    api = cluster.api_client()
    objects = client.CustomObjectsApi(api)
    writer = ReportWriter(KubeClient(load_connection(str(cluster.kubeconfig))), heartbeat_seconds=0.0).start()  # every summary due
    try:
        writer.offer(summary_for(node))
        wait_until(lambda: writer.writes == 1, 20, what="first write")
        report = objects.get_cluster_custom_object(GROUP, VERSION, PLURAL, node)
        owner = report["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"]) == ("Node", node)
        assert report["spec"]["nodeName"] == node
        assert report["status"]["window"]["samples"] == 5
        assert {m["manager"] for m in report["metadata"]["managedFields"]} == {"resource-agent"}
        status_fields = [m["fieldsV1"] for m in report["metadata"]["managedFields"] if m.get("subresource") == "status"]
        assert status_fields == [{"f:status": {}}]  # the CRD makes the status atomic: one entry, not one per field

        objects.delete_cluster_custom_object(GROUP, VERSION, PLURAL, node)
        writer.offer(summary_for(node, seed=1))
        wait_until(lambda: writer.writes == 2, 20, what="write after deletion")
        assert objects.get_cluster_custom_object(GROUP, VERSION, PLURAL, node)["status"]["window"]["samples"] == 5
    finally:
        writer.stop()
        api.close()


def test_an_unchanged_summary_waits_for_the_heartbeat_and_a_material_one_is_written(cluster) -> None:
    install_crds(cluster.kubectl)
    node = f"rep-{uuid.uuid4().hex[:6]}"
    cluster.add_nodes([NodeSpec(name=node, gpus=2)])
    api = cluster.api_client()
    writer = ReportWriter(KubeClient(load_connection(str(cluster.kubeconfig)))).start()  # the default heartbeat: 5 minutes
    try:
        writer.offer(summary_for(node))
        wait_until(lambda: writer.writes == 1, 20, what="first write")
        writer.offer(summary_for(node))  # the same findings and state: not material
        wait_until(lambda: writer.skipped == 1, 20, what="the unchanged summary skipped")
        failing = summary_for(node)
        failing.collectors = [status.model_copy(update={"state": CollectorState.FAILED, "reason": "boom"})
                              for status in failing.collectors]
        writer.offer(failing)
        wait_until(lambda: writer.writes == 2, 20, what="the material summary written")
        report = client.CustomObjectsApi(api).get_cluster_custom_object(GROUP, VERSION, PLURAL, node)
        assert {c["state"] for c in report["status"]["collectors"]} == {"failed"}
    finally:
        writer.stop()
        api.close()


def test_keeps_only_the_latest_summary_while_the_api_server_is_away() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    writer = ReportWriter(KubeClient(Connection(f"https://127.0.0.1:{dead_port}", verify=False)), max_backoff_seconds=0.2).start()
    try:
        for seed in range(50):
            writer.offer(summary_for("away", seed=seed))
        wait_until(lambda: writer.failures >= 3, 20, what="retries")
        assert writer.writes == 0
        assert writer.last_error is not None and "Connection refused" in writer.last_error
        assert writer._latest is None or writer._latest.node_name == "away"  # one slot, never a backlog
    finally:
        started = time.monotonic()
        writer.stop()
        assert time.monotonic() - started < 5, "stop must not wait for the outage"
