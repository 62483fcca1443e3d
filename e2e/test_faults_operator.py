"""Operator faults: SIGKILL during a burst of reconciles and during an approved LMCache apply, and a
restart with 1,000 reports present (timed, with the API server's own count of write requests).

The 1,000 reports are written directly (as the agent writes them) for plain Node objects; one
node in ten reports `thermal-throttle` (three findings), the others `healthy-busy` (none).
Admin credentials are fine here: RBAC is covered by e2e/test_operator_loop.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devtools.demo.stack import ManagedProcess, agent_process, free_port_block, install_crds, operator_process, stop_all, wait_until
from devtools.devcluster.nodes import NodeSpec
from devtools.lmcache_simulator import SimulatedInstance
from e2e.faults import apiserver_writes, assert_converged, decisions, seconds_until, write_report
from e2e.lmcache_helpers import served_conf
from e2e.loop import GROUP, VERSION, identities, metric_total
from e2e.providers import ClusterHandle
from e2e.reliability_results import record
from resource_agent.analysis.engine import analyze
from resource_agent.api.names import RECOMMENDATION_PLURAL, REPORT_PLURAL
from resource_agent.api.summary import NodeSummary
from resource_agent.api.usage import CHECKPOINT_PLURAL
from resource_agent.node_agent.window import summarize
from resource_agent.scenarios import generate

NODES = 1000
FINDINGS_EVERY = 10  # one node in ten has findings
RESTART_BOUND_SECONDS = 180.0  # operator start to every report reconciled, on a shared 2-core CI runner
RECONCILES = "resource_agent_operator_reconciles_total"
RULE = "lmcache-remote-gets-timing-out"
PRODUCT_RESOURCES = (RECOMMENDATION_PLURAL, REPORT_PLURAL, CHECKPOINT_PLURAL)


def _summary(scenario: str, gpus: int) -> NodeSummary:
    return summarize(list(generate(scenario, seed=0, samples=20, interval_seconds=1.0, gpus=gpus)), "template")


THROTTLED = _summary("thermal-throttle", gpus=8)
BUSY = _summary("healthy-busy", gpus=1)  # small: 900 of these


@dataclass
class Bulk:
    cluster: ClusterHandle
    label: str
    nodes: list[str]
    expected: int  # recommendations the findings make
    log_dir: Path
    operators: list[ManagedProcess] = field(default_factory=list)

    def all_recommendations(self) -> list[dict[str, Any]]:
        from kubernetes.client import CustomObjectsApi

        with self.cluster.api_client() as client:
            items: list[dict[str, Any]] = CustomObjectsApi(client).list_cluster_custom_object(
                GROUP, VERSION, "resourcerecommendations")["items"]
        return items

    def recommendations(self) -> list[dict[str, Any]]:
        names = set(self.nodes)
        return [item for item in self.all_recommendations() if item["spec"]["nodeName"] in names]

    def start_operator(self, name: str) -> ManagedProcess:
        process = operator_process(self.log_dir, kubeconfig=self.cluster.kubeconfig, name=name)
        process.args.append("--report-interval=1h")  # the reports are written once: not stale during the test
        self.operators.append(process.start())
        return process

    def reconciled(self, operator: ManagedProcess) -> float:
        try:
            return metric_total(operator, RECONCILES, outcome="ok")
        except OSError:
            return 0.0

    def diagnostics(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail()}" for p in self.operators)


def _write_nodes_and_reports(cluster: ClusterHandle, names: list[str], label: str, threads: int = 4) -> None:
    from kubernetes.client import CoreV1Api, CustomObjectsApi

    def chunk(part: list[tuple[int, str]]) -> None:
        with cluster.api_client() as client:
            core, objects = CoreV1Api(client), CustomObjectsApi(client)
            for index, name in part:
                node = core.create_node({"metadata": {"name": name, "labels": {"e2e-bulk": label}}})
                summary = (THROTTLED if index % FINDINGS_EVERY == 0 else BUSY).model_copy(update={"node_name": name})
                write_report(objects, summary, node.metadata.uid)

    numbered = list(enumerate(names))
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(chunk, [numbered[i::threads] for i in range(threads)]))


@pytest.fixture(scope="module")
def bulk(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bulk]:
    label = uuid.uuid4().hex[:6]
    names = [f"bulk-{label}-{i:04d}" for i in range(NODES)]
    install_crds(cluster.kubectl)
    started = time.monotonic()
    try:
        _write_nodes_and_reports(cluster, names, label)
        print(f"wrote {NODES} nodes and reports in {time.monotonic() - started:.1f}s")
        expected = len(names[::FINDINGS_EVERY]) * len(analyze(THROTTLED).findings)
        state = Bulk(cluster, label, names, expected, tmp_path_factory.mktemp("faults-operator"))
        yield state
        stop_all(state.operators)
    finally:
        cluster.kubectl("delete", "nodes", "-l", f"e2e-bulk={label}", "--wait=false", check=False)


def test_operator_killed_during_a_burst_of_reconciles(bulk: Bulk) -> None:
    first = bulk.start_operator("operator-burst")
    try:  # kill it with part of the burst done: some recommendations written, not all
        wait_until(lambda: len(bulk.recommendations()) >= bulk.expected // 10, 120, interval=0.5,
                   what="the burst to start writing recommendations")
    except TimeoutError:
        pytest.fail(f"no recommendations\n{bulk.diagnostics()}")
    first.kill()
    at_kill = bulk.recommendations()
    reconciled_at_kill = len(at_kill)
    assert 0 < reconciled_at_kill < bulk.expected, "the kill did not land mid-burst"
    target = sorted(at_kill, key=lambda r: r["metadata"]["name"])[0]["metadata"]["name"]
    bulk.cluster.kubectl("patch", "resourcerecommendation", target, "--type=merge", "-p",
                         json.dumps({"spec": {"decision": "Dismissed"}}))  # decided while no operator runs
    before = decisions(bulk.recommendations())

    second = bulk.start_operator("operator-after-burst")
    try:
        seconds = seconds_until(lambda: len(bulk.recommendations()) >= bulk.expected and bulk.reconciled(second) >= NODES,
                                180, what="every report to be reconciled", interval=1.0)
        wait_until(lambda: next(r for r in bulk.recommendations() if r["metadata"]["name"] == target)
                   .get("status", {}).get("phase") == "Dismissed", 30, what="the decision to be honoured")
    except TimeoutError:
        pytest.fail(f"not converged: {len(bulk.recommendations())}/{bulk.expected}\n{bulk.diagnostics()}")
    after = bulk.recommendations()
    assert len(after) == bulk.expected and len(set(identities(after))) == bulk.expected
    assert_converged(before, after)
    assert second.alive, second.tail()
    record("operator_killed_mid_burst", reports=NODES, recommendations=bulk.expected,
           recommendations_at_kill=reconciled_at_kill, converged_seconds=round(seconds, 2))


def _versions(recommendations: list[dict[str, Any]]) -> dict[str, str]:
    return {r["metadata"]["name"]: r["metadata"]["resourceVersion"] for r in recommendations}


def test_restart_with_a_thousand_reports_writes_nothing_for_unchanged_findings(bulk: Bulk) -> None:
    for operator in bulk.operators:
        operator.stop()
    mine = bulk.recommendations()
    before, versions = decisions(mine), _versions(mine)
    assert len(before) == bulk.expected
    others = len(bulk.all_recommendations()) - len(mine)  # left by earlier tests in this cluster
    writes_before = apiserver_writes(bulk.cluster)
    operator = bulk.start_operator("operator-restart")
    started = time.monotonic()
    try:
        seconds = seconds_until(lambda: bulk.reconciled(operator) >= NODES, RESTART_BOUND_SECONDS + 60,
                                what=f"{NODES} reports reconciled", since=started, interval=1.0)
    except TimeoutError:
        pytest.fail(f"not reconciled\n{bulk.diagnostics()}")
    time.sleep(3)  # writes the pass might still make
    delta = apiserver_writes(bulk.cluster) - writes_before  # the controller-manager writes Nodes and their Events too
    ours = {resource: count for resource, count in delta.items() if resource.startswith(PRODUCT_RESOURCES)}
    requests = metric_total(operator, "resource_agent_operator_api_requests_total")
    reads = sum(metric_total(operator, "resource_agent_operator_api_requests_total", verb=verb) for verb in ("get", "list"))
    operator.stop()  # the next test runs its own operator: no second one may act on its approval
    after = bulk.recommendations()
    rewritten = sorted(name for name, version in _versions(after).items() if versions.get(name) != version)
    record("operator_restart_1000_reports", reports=NODES, recommendations=bulk.expected,
           restart_to_reconciled_seconds=round(seconds, 2), restart_bound_seconds=RESTART_BOUND_SECONDS,
           rewritten_recommendations=len(rewritten), apiserver_product_writes=sum(ours.values()),
           operator_writes=requests - reads, operator_reads=reads, other_recommendations=others,
           apiserver_writes_all_components=sum(delta.values()))
    print(f"restart with {NODES} reports: reconciled in {seconds:.1f}s; apiserver writes by resource {dict(delta)}; "
          f"operator requests {requests:g} ({reads:g} reads); {others} other recommendations in the cluster")
    assert not rewritten, f"writes for unchanged findings: {rewritten[:5]}"
    # other tests' recommendations may be due an evidence refresh (spec and status): at most two writes each
    assert requests - reads <= 2 * others, f"the operator wrote {requests - reads:g} times: {ours}"
    assert_converged(before, after)
    assert seconds <= RESTART_BOUND_SECONDS


# --- an approved LMCache apply ------------------------------------------------------------------


@dataclass
class Apply:
    cluster: ClusterHandle
    node: str
    sim: SimulatedInstance
    log_dir: Path
    processes: list[ManagedProcess] = field(default_factory=list)

    def recommendation(self) -> dict[str, Any] | None:
        from kubernetes.client import CustomObjectsApi

        with self.cluster.api_client() as client:
            items = CustomObjectsApi(client).list_cluster_custom_object(GROUP, VERSION, "resourcerecommendations")["items"]
        return next((i for i in items if i["spec"]["nodeName"] == self.node and i["spec"]["rule"] == RULE), None)

    def start_operator(self, name: str) -> ManagedProcess:
        process = operator_process(self.log_dir, kubeconfig=self.cluster.kubeconfig, name=name).start()
        self.processes.append(process)
        return process

    def diagnostics(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail()}" for p in self.processes)


@pytest.fixture
def lmcache(cluster: ClusterHandle, tmp_path: Path) -> Iterator[Apply]:
    node = f"gpu-fapply-{uuid.uuid4().hex[:6]}"
    sim = SimulatedInstance(port=free_port_block(3), workers=2, profile="slow-remote").start()
    state = Apply(cluster, node, sim, tmp_path)
    try:
        install_crds(cluster.kubectl)
        cluster.add_nodes([NodeSpec(name=node)])
        agent = agent_process(node, "healthy-busy", tmp_path, kubeconfig=cluster.kubeconfig,
                              interval="1s", window="30s", report_interval="3s")
        agent.args.remove("--no-collector.lmcache")
        agent.args += ["--collector.lmcache", f"--lmcache-url={sim.spec()}"]
        state.processes.append(agent.start())
        yield state
    finally:
        stop_all(state.processes)
        sim.stop()
        cluster.kubectl("delete", "node", node, "--ignore-not-found", "--wait=false", check=False)


def test_operator_killed_during_an_approved_lmcache_apply_applies_it_once(lmcache: Apply) -> None:
    sim = lmcache.sim
    first = lmcache.start_operator("operator-apply")
    try:
        found = wait_until(lambda: (r := lmcache.recommendation()) and r.get("status", {}).get("phase") == "Open" and r,
                           120, what=f"the {RULE} recommendation")
    except TimeoutError:
        pytest.fail(f"no recommendation\n{lmcache.diagnostics()}")
    assert isinstance(found, dict)
    for port in sim.ports:  # each POST /conf is received, then answered 1.5 s later (under the 2 s client timeout)
        sim.set_fault(port, "slow-post:1.5")
    name = found["metadata"]["name"]
    lmcache.cluster.kubectl("patch", "resourcerecommendation", name, "--type=merge", "-p",
                            json.dumps({"spec": {"decision": "Approved"}}))
    try:
        wait_until(lambda: len(sim.posts()) == len(sim.ports), 30, interval=0.05, what="the POSTs of the apply")
    except TimeoutError:
        pytest.fail(f"not applied\n{lmcache.diagnostics()}")
    first.kill()  # mid-apply: every POST received, none answered, no result written
    assert "applyResult" not in (lmcache.recommendation() or {}).get("status", {})
    for port in sim.ports:
        sim.set_fault(port, None)
    wait_until(lambda: served_conf(sim, "blocking_timeout_secs") == [20] * len(sim.ports), 10,
               what="the simulator to finish the POSTs")

    restarted = time.monotonic()
    second = lmcache.start_operator("operator-apply-restarted")
    try:
        result = wait_until(lambda: (lmcache.recommendation() or {}).get("status", {}).get("applyResult"), 60,
                            what="the apply result after the restart")
    except TimeoutError:
        pytest.fail(f"no apply result\n{lmcache.diagnostics()}")
    seconds = time.monotonic() - restarted
    assert isinstance(result, dict) and result["succeeded"], json.dumps(result)
    assert "nothing to post" in result.get("message", ""), json.dumps(result)  # the restarted operator read it back
    time.sleep(6)  # two report intervals: nothing else is posted
    posts = sim.posts()
    after = lmcache.recommendation() or {}
    record("operator_killed_mid_apply", config_writes=len(posts), ports=len(sim.ports),
           result_after_restart_seconds=round(seconds, 2))
    assert sorted(posts) == sorted(sim.ports), f"config writes per port: {posts}"  # exactly once each
    assert after["spec"]["decision"] == "Approved" and after["metadata"]["uid"] == found["metadata"]["uid"]
    assert after["status"]["phase"] in ("Applied", "Resolved")
    assert second.alive, second.tail()


def test_an_apply_that_reached_only_port_0_writes_the_other_ports_once(lmcache: Apply) -> None:
    """What a restarted operator finds when an interrupted apply reached one process: it writes only the others,
    and the status and the Applied Event name the port it skipped."""
    sim = lmcache.sim
    lmcache.start_operator("operator-partial")
    try:
        found = wait_until(lambda: (r := lmcache.recommendation()) and r.get("status", {}).get("phase") == "Open" and r,
                           120, what=f"the {RULE} recommendation")
    except TimeoutError:
        pytest.fail(f"no recommendation\n{lmcache.diagnostics()}")
    assert isinstance(found, dict)
    sim.post_conf(sim.ports[0], {"blocking_timeout_secs": 20})  # the earlier apply's one write (not an HTTP request)
    name = found["metadata"]["name"]
    lmcache.cluster.kubectl("patch", "resourcerecommendation", name, "--type=merge", "-p",
                            json.dumps({"spec": {"decision": "Approved"}}))
    try:
        result = wait_until(lambda: (lmcache.recommendation() or {}).get("status", {}).get("applyResult"), 60,
                            what="the apply result")
    except TimeoutError:
        pytest.fail(f"no apply result\n{lmcache.diagnostics()}")
    assert isinstance(result, dict) and result["succeeded"], json.dumps(result)
    assert result["before"] == {"blocking_timeout_secs": "10"} and result["after"] == {"blocking_timeout_secs": "20"}
    urls = sim.urls()
    message = (f"blocking_timeout_secs set to 20 on 2 port(s) ({urls[1]}, {urls[2]}); "
               f"already 20 on 1 port(s), not posted again ({urls[0]})")
    assert result["message"] == message
    assert sorted(sim.posts()) == sorted(sim.ports[1:]), f"config writes per port: {sim.posts()}"
    assert served_conf(sim, "blocking_timeout_secs") == [20] * len(sim.ports)
    events = json.loads(lmcache.cluster.kubectl("get", "events", "-A", "-o", "json",
                                                f"--field-selector=involvedObject.name={name}").stdout)["items"]
    assert message in {event["message"] for event in events if event["reason"] == "Applied"}, json.dumps(events)
