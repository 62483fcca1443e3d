"""The operator's reconcile against a real API server, in-process (no kopf),
counting the API requests it makes."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from devtools.demo.stack import install_crds
from resource_agent.analysis.engine import analyze
from resource_agent.node_agent.window import summarize
from resource_agent.operator.actions import ActionExecutor
from resource_agent.operator.handlers import Operator, index_entry
from resource_agent.operator.metrics import OperatorMetrics
from resource_agent.operator.planning import PlanSettings
from resource_agent.operator.settings import OperatorSettings
from resource_agent.operator.store import RecommendationStore
from resource_agent.scenarios import generate

GROUP, VERSION = "resource.optiinfra.io", "v1alpha1"
log = logging.getLogger("test")


async def no_summary(node: str) -> None:
    return None


class ClusterIndex:
    """What kopf's index would hold, read fresh from the API server."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes.client import CustomObjectsApi

        self._objects = CustomObjectsApi(api_client)

    def get(self, node: str, default: Any = None) -> list[Any]:
        items = self._objects.list_cluster_custom_object(GROUP, VERSION, "resourcerecommendations")["items"]
        return [
            index_entry(i["metadata"]["name"], i["spec"], i.get("status", {}), i["metadata"].get("annotations", {}))
            for i in items if i["spec"]["nodeName"] == node
        ]

    def _by_node(self) -> dict[str, list[Any]]:
        items = self._objects.list_cluster_custom_object(GROUP, VERSION, "resourcerecommendations")["items"]
        by_node: dict[str, list[Any]] = {}
        for i in items:
            entry = index_entry(i["metadata"]["name"], i["spec"], i.get("status", {}), i["metadata"].get("annotations", {}))
            by_node.setdefault(entry.existing.node_name, []).append(entry)
        return by_node

    def values(self) -> list[list[Any]]:
        return list(self._by_node().values())

    def __iter__(self) -> Any:  # kopf's index is a mapping: its keys are the nodes
        return iter(list(self._by_node()))


def requests(metrics: OperatorMetrics) -> float:
    return sum(sample.value for metric in metrics.api_requests.collect() for sample in metric.samples
               if sample.name.endswith("_total"))


@pytest.fixture
def operator_and_index(cluster):
    install_crds(cluster.kubectl)
    client = cluster.api_client()
    metrics = OperatorMetrics(CollectorRegistry())
    store = RecommendationStore(client, metrics)
    operator = Operator(OperatorSettings(metrics_listen=None, health_listen=None), store, metrics,
                        ActionExecutor(no_summary))
    yield operator, ClusterIndex(client), metrics
    client.close()


async def test_unchanged_findings_cost_no_api_request(operator_and_index) -> None:
    operator, index, metrics = operator_and_index
    node = f"rec-{uuid.uuid4().hex[:6]}"
    stream = list(generate("thermal-throttle", seed=1, samples=40))
    findings = analyze(summarize(stream[:20], node)).findings
    assert findings
    await operator.reconcile_node(node, None, findings, index, log)
    created = len(index.get(node))
    assert created == len({f.resource_name() for f in findings})
    first = requests(metrics)
    assert first == 3 * created  # spec apply, status apply, one Event each

    jittered = analyze(summarize(stream[20:], node)).findings  # the next window: other numbers, same findings
    await operator.reconcile_node(node, None, jittered, index, log)
    assert requests(metrics) == first, "an unchanged finding must cost no API request"
    assert {e.existing.phase.value for e in index.get(node)} == {"Open"}

    await operator.reconcile_node(node, None, [], index, log)
    assert {e.existing.phase.value for e in index.get(node)} == {"Resolved"}
    assert requests(metrics) == first + 2 * created  # one status write and one Event each


async def test_decision_survives_reconcile(operator_and_index, cluster) -> None:
    operator, index, _ = operator_and_index
    node = f"dec-{uuid.uuid4().hex[:6]}"
    findings = analyze(summarize(list(generate("idle-gpu-holding-memory", seed=0, samples=20)), node)).findings
    await operator.reconcile_node(node, None, findings, index, log)
    name = findings[0].resource_name()
    cluster.kubectl("patch", "resourcerecommendation", name, "--type=merge", "-p", '{"spec":{"decision":"Dismissed"}}')
    stronger = [f.model_copy(update={"severity": "critical"}) for f in findings]
    await operator.reconcile_node(node, None, stronger, index, log)
    entry = next(e for e in index.get(node) if e.existing.name == name)
    assert entry.decision.value == "Dismissed"
    assert entry.existing.phase.value == "Dismissed"
    assert entry.severity == "critical"


async def test_invalid_report_is_refused_without_crashing(operator_and_index) -> None:
    operator, index, metrics = operator_and_index
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ResourceReport",
            "metadata": {"name": "broken", "uid": str(uuid.uuid4())}}
    await operator.on_report("broken", body["metadata"]["uid"], {"window": "not a window"}, index, body, log)
    outcomes = {s.labels["outcome"]: s.value for m in metrics.reconciles.collect() for s in m.samples
                if s.name.endswith("_total")}
    assert outcomes == {"invalid": 1.0}


async def test_approval_applies_once_even_for_stale_events_and_again_after_withdrawal(cluster) -> None:
    from kubernetes.client import CustomObjectsApi

    from resource_agent.api.findings import ActionType
    from resource_agent.api.resources import ApplyResult

    install_crds(cluster.kubectl)
    node = f"app-{uuid.uuid4().hex[:6]}"
    summary = summarize(list(generate("cache-thrash", seed=0, samples=30)), node)
    finding = next(f for f in analyze(summary).findings if f.action.type is ActionType.SET_LMCACHE_CONFIG)
    calls: list[str] = []

    async def applier(action, instance, node_summary) -> ApplyResult:  # the LMCache HTTP edge, counted
        calls.append(instance.instance)
        return ApplyResult(attempted_at="2026-11-24T00:00:00Z", succeeded=True, attempts=1, message="set")

    async def latest(name: str):  # the node's latest report, as the runtime reads it from the API
        return summary if name == node else None

    client = cluster.api_client()
    metrics = OperatorMetrics(CollectorRegistry())
    operator = Operator(OperatorSettings(metrics_listen=None, health_listen=None), RecommendationStore(client, metrics),
                        metrics, ActionExecutor(latest, applier))
    objects = CustomObjectsApi(client)
    name = finding.resource_name()

    def current() -> dict[str, Any]:
        return objects.get_cluster_custom_object(GROUP, VERSION, "resourcerecommendations", name)

    async def deliver(obj: dict[str, Any]) -> None:  # what kopf would hand the handler for this event
        meta = obj["metadata"]
        await operator.on_recommendation(name, obj["spec"], obj.get("status", {}), meta.get("annotations", {}), obj, log)

    def decide(decision: str) -> dict[str, Any]:
        cluster.kubectl("patch", "resourcerecommendation", name, "--type=merge", "-p", json.dumps({"spec": {"decision": decision}}))
        return current()

    try:
        await operator.reconcile_node(node, None, [finding], ClusterIndex(client), log)
        approved = decide("Approved")
        await deliver(approved)
        await deliver(approved)  # a stale event from before the result: must not apply again
        assert len(calls) == 1
        status = current()["status"]
        assert status["phase"] == "Applied" and status["applyResult"]["succeeded"]
        await operator.reconcile_node(node, None, [finding.model_copy(update={"severity": "critical"})], ClusterIndex(client), log)
        assert current()["status"]["applyResult"]["message"] == "set", "a reconcile must not drop the apply result"

        await deliver(decide("Pending"))
        status = current()["status"]
        assert status["phase"] == "Open" and "applyResult" not in status
        await deliver(decide("Approved"))
        assert len(calls) == 2
    finally:
        client.close()


async def test_fleet_pass_deletes_resolved_recommendations_of_silent_nodes(cluster) -> None:
    install_crds(cluster.kubectl)
    client = cluster.api_client()
    metrics = OperatorMetrics(CollectorRegistry())
    settings = OperatorSettings(metrics_listen=None, health_listen=None, fleet_interval_seconds=0.0,
                                plan=PlanSettings(resolved_ttl_seconds=0.0))
    operator = Operator(settings, RecommendationStore(client, metrics), metrics, ActionExecutor(no_summary))
    index = ClusterIndex(client)
    silent = f"silent-{uuid.uuid4().hex[:6]}"
    findings = analyze(summarize(list(generate("thermal-throttle", seed=0, samples=20)), silent)).findings
    try:
        await operator.reconcile_node(silent, None, findings, index, log)
        await operator.reconcile_node(silent, None, [], index, log)  # its last report: everything cleared
        assert {e.existing.phase.value for e in index.get(silent)} == {"Resolved"}
        await operator._fleet_pass(index, log)  # another node's report triggers the sweep; this node is silent
        assert index.get(silent) == []
    finally:
        client.close()


async def test_a_recommendation_reopened_since_the_index_saw_it_resolved_is_not_deleted(cluster) -> None:
    """The fleet pass judges expiry on the object as it is now, under the node's lock: a report may have reopened it."""
    install_crds(cluster.kubectl)
    client = cluster.api_client()
    metrics = OperatorMetrics(CollectorRegistry())
    settings = OperatorSettings(metrics_listen=None, health_listen=None, fleet_interval_seconds=0.0,
                                plan=PlanSettings(resolved_ttl_seconds=0.0))
    operator = Operator(settings, RecommendationStore(client, metrics), metrics, ActionExecutor(no_summary))
    index = ClusterIndex(client)
    node = f"reopen-{uuid.uuid4().hex[:6]}"
    findings = analyze(summarize(list(generate("thermal-throttle", seed=0, samples=20)), node)).findings
    try:
        await operator.reconcile_node(node, None, findings, index, log)
        await operator.reconcile_node(node, None, [], index, log)
        stale = {node: index.get(node)}  # what a lagging watch index still says: Resolved, past the TTL
        assert {e.existing.phase.value for e in stale[node]} == {"Resolved"}
        await operator.reconcile_node(node, None, findings, index, log)  # the finding is back: reopened
        await operator._delete_expired(stale)
        assert {e.existing.phase.value for e in index.get(node)} == {"Open"}
    finally:
        client.close()
