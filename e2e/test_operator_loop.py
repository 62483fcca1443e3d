"""The Kubernetes loop on a real API server, with the product's real processes (see e2e/loop.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from devtools.demo.stack import wait_until
from e2e.loop import (
    SCENARIOS,
    Loop,
    expected_rules,
    identities,
    metrics_reachable,
    operator_writes,
    rules_of,
    running_loop,
)
from e2e.providers import ClusterHandle


@pytest.fixture(scope="module")
def loop(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    with running_loop(cluster, tmp_path_factory.mktemp("loop-logs")) as state:
        yield state


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


def test_killed_operator_restarts_without_duplicates(loop: Loop) -> None:
    before = {r["metadata"]["name"]: r["metadata"]["uid"] for r in loop.objects("resourcerecommendations")}
    loop.operators[0].kill()
    loop.start_operator(name="operator-restarted", priority=200)  # above the dead one's lingering peering record
    time.sleep(10)
    after = loop.objects("resourcerecommendations")
    seen = identities(after)
    assert len(seen) == len(set(seen)), "duplicate recommendations"
    for recommendation in after:
        name = recommendation["metadata"]["name"]
        if name in before:
            assert recommendation["metadata"]["uid"] == before[name], f"{name} was recreated"


def test_two_replicas_do_not_fight(loop: Loop) -> None:
    active = loop.operators[-1]
    standby = loop.start_operator(name="operator-standby", priority=10)
    wait_until(lambda: metrics_reachable(standby), 30, what="the standby's metrics endpoint")
    time.sleep(5)  # the standby reads the peering object and its peer's higher priority
    start_active, start_standby = operator_writes(active), operator_writes(standby)
    loop.agents["b"].stop()
    loop.start_agent("b", "healthy-busy")  # a change both replicas see
    wait_until(lambda: operator_writes(active) > start_active, 30, what="the active replica to act")
    time.sleep(5)
    assert operator_writes(standby) == start_standby, "the standby replica wrote while the active one ran"
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
