"""LMCache end to end: simulated LMCache instances, a real agent and a real operator on a real API server.

Four simulated instances (scheduler + 2 workers each, every process on its own
port, each `/conf` holding a redis password and storage keys) run in the test
process. One `resource-agent agent` for a kwok GPU node takes host and GPUs
from the `healthy-busy` scenario and LMCache from the real lmcache collector
pointed at the simulators; one `resource-agent operator` analyses its reports.

- thrash:       lmcache-low-hit-rate-evicting (max_local_cpu_size, start-up only) + lmcache-backend-degraded
- slow-remote:  lmcache-remote-gets-timing-out (blocking_timeout_secs, runtime-effective): Approved
- unused:       lmcache-never-hit
- slow-remote (second one): lmcache-remote-gets-timing-out: Dismissed

Admin credentials are fine here: RBAC is covered by e2e/test_operator_loop.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from devtools.demo.stack import (
    ManagedProcess,
    agent_process,
    free_port_block,
    install_crds,
    operator_process,
    stop_all,
    wait_until,
)
from devtools.devcluster.nodes import NodeSpec
from devtools.lmcache_simulator import SimulatedInstance
from e2e.lmcache_helpers import served_conf
from e2e.providers import ClusterHandle

GROUP, VERSION = "resource.optiinfra.io", "v1alpha1"
GIB = 1024**3
SECRET = "e2e-redis-Pa55w0rd"
AWS_KEY = "AKIAE2ELMCACHESECRET"
SECRETS = (SECRET, AWS_KEY)
CONF_WITH_SECRETS = {"remote_url": f"redis://default:{SECRET}@redis.cache:6379", "max_local_cpu_size": 5.0,
                     "extra_config": {"aws_secret_access_key": AWS_KEY, "s3_endpoint": f"https://k:{SECRET}@s3.local"}}
PROFILES = {"thrash": "thrash", "slow": "slow-remote", "unused": "unused", "dismissed": "slow-remote"}
EXPECTED = {
    ("thrash", "lmcache-low-hit-rate-evicting"),
    ("thrash", "lmcache-backend-degraded"),
    ("slow", "lmcache-remote-gets-timing-out"),
    ("unused", "lmcache-never-hit"),
    ("dismissed", "lmcache-remote-gets-timing-out"),
}


@dataclass
class Stack:
    cluster: ClusterHandle
    node: str
    sims: dict[str, SimulatedInstance]
    agent: ManagedProcess
    operator: ManagedProcess
    processes: list[ManagedProcess] = field(default_factory=list)

    def report(self) -> dict[str, Any] | None:
        from kubernetes.client import CustomObjectsApi
        from kubernetes.client.exceptions import ApiException

        with self.cluster.api_client() as client:
            try:
                return CustomObjectsApi(client).get_cluster_custom_object(GROUP, VERSION, "resourcereports", self.node)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

    def recommendations(self) -> list[dict[str, Any]]:
        from kubernetes.client import CustomObjectsApi

        with self.cluster.api_client() as client:
            items = CustomObjectsApi(client).list_cluster_custom_object(GROUP, VERSION, "resourcerecommendations")["items"]
        return [item for item in items if item["spec"]["nodeName"] == self.node]

    def key_of(self, recommendation: dict[str, Any]) -> tuple[str, str]:
        instance = recommendation["spec"]["target"].get("lmcacheInstance")
        name = next((key for key, sim in self.sims.items() if sim.urls()[0] == instance), instance or "")
        return name, recommendation["spec"]["rule"]

    def recommendation(self, key: str, rule: str) -> dict[str, Any]:
        return next(r for r in self.recommendations() if self.key_of(r) == (key, rule))

    def decide(self, key: str, rule: str, decision: str) -> str:
        name = self.recommendation(key, rule)["metadata"]["name"]
        patch = json.dumps({"spec": {"decision": decision}})
        self.cluster.kubectl("patch", "resourcerecommendation", name, "--type=merge", "-p", patch)
        return name

    def wait_phase(self, key: str, rule: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        try:
            wait_until(lambda: self.recommendation(key, rule).get("status", {}).get("phase") == phase, timeout,
                       what=f"{key}/{rule} to be {phase}")
        except TimeoutError:
            status = self.recommendation(key, rule).get("status")
            pytest.fail(f"{key}/{rule} not {phase}: {json.dumps(status)}\n{self.diagnostics()}")
        return self.recommendation(key, rule)

    def diagnostics(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail()}" for p in self.processes)


@pytest.fixture(scope="module")
def stack(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    node = f"gpu-lmc-{uuid.uuid4().hex[:6]}"
    sims: dict[str, SimulatedInstance] = {}
    processes: list[ManagedProcess] = []
    try:
        for key, profile in PROFILES.items():
            sims[key] = SimulatedInstance(port=free_port_block(3), workers=2, profile=profile, conf=CONF_WITH_SECRETS).start()
        install_crds(cluster.kubectl)
        cluster.add_nodes([NodeSpec(name=node)])
        log_dir = tmp_path_factory.mktemp("lmcache-e2e")
        agent = agent_process(node, "healthy-busy", log_dir, kubeconfig=cluster.kubeconfig,
                              interval="1s", window="30s", report_interval="3s")
        agent.args.remove("--no-collector.lmcache")  # the real collector next to the scenario's host and GPUs
        agent.args += ["--collector.lmcache", *(f"--lmcache-url={sim.spec()}" for sim in sims.values())]
        processes.append(agent.start())
        operator = operator_process(log_dir, kubeconfig=cluster.kubeconfig, name=f"operator-{node}")
        processes.append(operator.start())
        yield Stack(cluster, node, sims, agent, operator, processes)
    finally:
        stop_all(processes)
        for sim in sims.values():
            sim.stop()


def test_report_has_every_instance_with_all_ports_combined(stack: Stack) -> None:
    def instances() -> dict[str, dict[str, Any]] | None:
        status = (stack.report() or {}).get("status") or {}
        found = {i["instance"]: i for i in status.get("lmcache", {}).get("instances", [])}
        ready = len(found) == len(stack.sims) and all(i.get("lookupTokens", 0) > 0 for i in found.values())
        return found if ready and status["window"]["samples"] >= 5 else None

    try:
        found = wait_until(instances, 90, what="the report with every LMCache instance")
    except TimeoutError:
        status = (stack.report() or {}).get("status") or {}
        seen = {name: status.get(name) for name in ("window", "lmcache", "collectors")}
        pytest.fail(f"report status: {json.dumps(seen)[:3000]}\n{stack.diagnostics()}")
    assert isinstance(found, dict)
    for key, sim in stack.sims.items():
        summary = found[sim.urls()[0]]
        assert summary["urls"] == sim.urls(), key  # scheduler and both worker ports
        # reachable (the default) is left out of the stored report
        assert summary.get("reachable", True) and summary["healthy"] and "error" not in summary, key
        assert summary["workerRanks"] == 2, key
        assert summary["maxLocalCpuSizeBytes"] == 2 * 5 * GIB, key  # 5 GB on each worker process
        assert summary["kvBytesPerToken"] == 32 * 8 * 128 * 2 * 2, key  # both ranks' KV heads of Llama-3.1-8B
        assert summary["remoteBackend"] == "redis" and summary["blockingTimeoutSeconds"] == 10, key
    thrash, slow = found[stack.sims["thrash"].urls()[0]], found[stack.sims["slow"].urls()[0]]
    # tokens: the max over the two TP ranks; lookups: the scheduler port; evictions: summed over the ranks
    # the hit rate is lookup hits / lookup tokens; LMCache retrieves only what the lookup found, so the
    # retrieve "hit rate" (tokenHitRate, hit/requested tokens) is ~1 by construction: load success
    assert 0.03 < thrash["lookupHitRate"] < 0.05 and thrash["lookupTokens"] > 0 and thrash["evictions"] > 0
    assert thrash["tokenHitRate"] > 0.99
    assert thrash["remotePingErrors"] > 0 and thrash["remoteGetFailures"] == 0
    assert slow["remoteGetFailures"] > 0 and slow["remotePingErrors"] == 0 and slow["remotePingSuccesses"] > 0
    assert slow["remotePutFailures"] == 0 and 0.55 < slow["lookupHitRate"] < 0.65


def test_expected_cache_recommendations_appear(stack: Stack) -> None:
    def open_keys() -> set[tuple[str, str]]:
        return {stack.key_of(r) for r in stack.recommendations() if r.get("status", {}).get("phase") == "Open"}

    try:
        wait_until(lambda: open_keys() == EXPECTED, 90, what="the cache recommendations")
    except TimeoutError:
        pytest.fail(f"got {sorted(open_keys())}, want {sorted(EXPECTED)}\n{stack.diagnostics()}")
    timeout = stack.recommendation("slow", "lmcache-remote-gets-timing-out")["spec"]["action"]
    assert timeout == {"type": "set-lmcache-config", "parameters": {
        "instance": stack.sims["slow"].urls()[0], "key": "blocking_timeout_secs", "value": "20", "previous": "10",
        "runtimeEffective": True}}
    size = stack.recommendation("thrash", "lmcache-low-hit-rate-evicting")["spec"]["action"]["parameters"]
    assert (size["key"], size["previous"], size["value"], size["runtimeEffective"]) == ("max_local_cpu_size", "5", "10", False)


def test_dismissed_change_is_never_applied(stack: Stack) -> None:
    stack.decide("dismissed", "lmcache-remote-gets-timing-out", "Dismissed")
    dismissed = stack.wait_phase("dismissed", "lmcache-remote-gets-timing-out", "Dismissed", 30)
    assert "applyResult" not in dismissed["status"]
    assert stack.sims["dismissed"].posts() == []  # the later tests check again after the other approvals


def test_approved_runtime_change_reaches_every_process(stack: Stack) -> None:
    sim = stack.sims["slow"]
    assert served_conf(sim, "blocking_timeout_secs") == [10, 10, 10]
    name = stack.decide("slow", "lmcache-remote-gets-timing-out", "Approved")
    # Applied, and moments later Resolved: the next report judges the new timeout and its gets no longer fail
    try:
        applied = wait_until(lambda: (r := stack.recommendation("slow", "lmcache-remote-gets-timing-out"))
                             .get("status", {}).get("applyResult") and r, 60, what="the apply result")
    except TimeoutError:
        pytest.fail(f"not applied\n{stack.diagnostics()}")
    assert isinstance(applied, dict)
    result = applied["status"]["applyResult"]
    assert result["succeeded"] and not result.get("restartRequired") and "patch" not in result, json.dumps(result)
    assert result["before"] == {"blocking_timeout_secs": "10"} and result["after"] == {"blocking_timeout_secs": "20"}
    assert served_conf(sim, "blocking_timeout_secs") == [20, 20, 20]
    assert sorted(sim.posts()) == sorted(sim.ports)  # one POST /conf per process, no retries
    events = json.loads(stack.cluster.kubectl("get", "events", "-A", "-o", "json",
                                              f"--field-selector=involvedObject.name={name}").stdout)["items"]
    assert "Applied" in {event["reason"] for event in events}
    resolved = stack.wait_phase("slow", "lmcache-remote-gets-timing-out", "Resolved", 60)
    assert resolved["status"]["applyResult"] == result


def test_approved_startup_change_is_a_restart_patch(stack: Stack) -> None:
    sim = stack.sims["thrash"]
    stack.decide("thrash", "lmcache-low-hit-rate-evicting", "Approved")
    applied = stack.wait_phase("thrash", "lmcache-low-hit-rate-evicting", "Applied")
    result = applied["status"]["applyResult"]
    assert result["succeeded"] and result["restartRequired"] is True, json.dumps(result)
    assert result["before"] == {"max_local_cpu_size": "5.0"} and result["after"] == {"max_local_cpu_size": "10.0"}
    assert json.loads(result["patch"]) == {"env": {"LMCACHE_MAX_LOCAL_CPU_SIZE": "10.0"},
                                           "kvConnectorExtraConfig": {"lmcache.max_local_cpu_size": 10.0}}
    assert "restart" in applied["status"]["message"]
    assert served_conf(sim, "max_local_cpu_size") == [5.0, 5.0, 5.0] and sim.posts() == []


def test_nothing_else_was_posted(stack: Stack) -> None:
    time.sleep(6)  # two more report intervals after the last decision
    dismissed = stack.recommendation("dismissed", "lmcache-remote-gets-timing-out")
    assert dismissed["spec"]["decision"] == "Dismissed" and dismissed["status"]["phase"] == "Dismissed"
    assert "applyResult" not in dismissed["status"]
    assert stack.sims["dismissed"].posts() == [] and stack.sims["unused"].posts() == []
    assert served_conf(stack.sims["dismissed"], "blocking_timeout_secs") == [10, 10, 10]
    posted = {key: sorted(set(sim.posts())) for key, sim in stack.sims.items()}
    assert posted == {"thrash": [], "slow": sorted(stack.sims["slow"].ports), "unused": [], "dismissed": []}


def test_no_credential_from_conf_reaches_reports_recommendations_events_or_logs(stack: Stack) -> None:
    texts = {
        "report": json.dumps(stack.report()),
        "recommendations": json.dumps(stack.recommendations()),
        "events": stack.cluster.kubectl("get", "events", "-A", "-o", "json").stdout,
        "agent log": stack.agent.log_path.read_text(errors="replace"),
        "operator log": stack.operator.log_path.read_text(errors="replace"),
    }
    assert len(stack.recommendations()) == len(EXPECTED)
    for where, text in texts.items():
        for secret in SECRETS:
            assert secret not in text, f"a credential from /conf leaked into the {where}"
    assert "redis" in texts["report"]  # the backend's scheme is there, its URL is not


def test_agent_and_operator_are_still_running(stack: Stack) -> None:
    assert stack.agent.alive and stack.operator.alive, stack.diagnostics()
