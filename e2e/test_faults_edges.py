"""Faults at the outer edges, with the real agent and operator on the local control plane.

- an LMCache instance and a vLLM engine stopped and started again (their counters back at zero);
- NVML losing one of three GPUs mid-run (the NVML fake under a real agent process: e2e/nvml_agent.py);
- the LLM provider answering 429 with Retry-After, timing out, and answering garbage.

Admin credentials are fine here: RBAC is covered by e2e/test_operator_loop.py.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from devtools.demo.stack import ManagedProcess, agent_process, free_port_block, install_crds, operator_process, stop_all, wait_until
from devtools.devcluster.nodes import NodeSpec
from devtools.llm_server import FakeLLMServer, Mode, Reply
from devtools.lmcache_simulator import SimulatedInstance
from devtools.serving_simulator import SimulatedEngine, serve
from e2e.faults import (
    RSS_GROWTH_BOUND_BYTES,
    assert_alive,
    pids_of,
    reported_at,
    rss_bytes,
    seconds_until,
    utc_now,
)
from e2e.llm_loop import recommendations, run_loop
from e2e.loop import GROUP, VERSION
from e2e.providers import ClusterHandle
from e2e.reliability_results import record
from resource_agent.analysis.rules.cache import UNREACHABLE

WINDOW_SECONDS = 10
REPORT_SECONDS = 2


@dataclass
class Node:
    """One kwok node with an agent (and whatever it scrapes) and an operator."""

    cluster: ClusterHandle
    name: str
    log_dir: Path
    processes: list[ManagedProcess] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        from kubernetes.client import CustomObjectsApi
        from kubernetes.client.exceptions import ApiException

        with self.cluster.api_client() as client:
            try:
                return CustomObjectsApi(client).get_cluster_custom_object(GROUP, VERSION, "resourcereports", self.name)
            except ApiException as exc:
                if exc.status == 404:
                    return {}
                raise

    def status(self) -> dict[str, Any]:
        return self.report().get("status") or {}

    def recommendations(self) -> list[dict[str, Any]]:
        return recommendations(self.cluster, [self.name])

    def agent(self, args_from_scenario: ManagedProcess) -> ManagedProcess:
        self.processes.append(args_from_scenario.start())
        return args_from_scenario

    def operator(self) -> ManagedProcess:
        process = operator_process(self.log_dir, kubeconfig=self.cluster.kubeconfig, name=f"operator-{self.name}").start()
        self.processes.append(process)
        return process

    def diagnostics(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail()}" for p in self.processes)


@pytest.fixture
def node(cluster: ClusterHandle, tmp_path: Path) -> Iterator[Node]:
    state = Node(cluster, f"gpu-fedge-{uuid.uuid4().hex[:6]}", tmp_path)
    install_crds(cluster.kubectl)
    cluster.add_nodes([NodeSpec(name=state.name)])
    try:
        yield state
    finally:
        stop_all(state.processes)
        cluster.kubectl("delete", "node", state.name, "--wait=false", check=False)  # its report and recommendations too


def _agent_args(node: Node) -> ManagedProcess:
    return agent_process(node.name, "healthy-busy", node.log_dir, kubeconfig=node.cluster.kubeconfig,
                         interval="1s", window=f"{WINDOW_SECONDS}s", report_interval=f"{REPORT_SECONDS}s")


def _negative_numbers(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _negative_numbers(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in _negative_numbers(item, f"{path}[{i}]")]
    return [f"{path}={value}"] if isinstance(value, int | float) and not isinstance(value, bool) and value < 0 else []


def _collector_states(status: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["state"] for c in status.get("collectors", [])}


# --- counters back at zero ------------------------------------------------------------------------


OUTAGE_RULES = {UNREACHABLE}  # true while the instance is down


def _engine(port: int) -> ThreadingHTTPServer:
    return serve(SimulatedEngine("vllm", "healthy", seed=0), port)


def test_lmcache_and_engine_restarted_with_counters_at_zero(node: Node) -> None:
    sim = SimulatedInstance(port=free_port_block(3), workers=2, profile="healthy").start()
    engine_port = free_port_block(1)
    engine = _engine(engine_port)
    try:
        agent = _agent_args(node)
        agent.args.remove("--no-collector.lmcache")
        agent.args += ["--collector.lmcache", f"--lmcache-url={sim.spec()}", "--collector.serving", f"--serving-url=vllm=http://127.0.0.1:{engine_port}"]
        node.agent(agent)
        operator = node.operator()

        def scraping() -> bool:
            status = node.status()
            return (_collector_states(status).get("lmcache") == "ok" and _collector_states(status).get("serving") == "ok"
                    and bool(status.get("serving", {}).get("instances")) and status["window"]["samples"] >= 5)

        try:
            wait_until(scraping, 60, what="a report with LMCache and the engine")
        except TimeoutError:
            pytest.fail(f"no report with both collectors: {json.dumps(node.status().get('collectors'))}\n{node.diagnostics()}")
        processes = list(node.processes)
        pids, rss_before = pids_of(processes), rss_bytes(agent)
        seen: list[dict[str, Any]] = []

        sim.stop()
        engine.shutdown()
        engine.server_close()
        time.sleep(REPORT_SECONDS)
        sim = SimulatedInstance(port=sim.ports[0], workers=2, profile="healthy").start()  # every counter from zero
        engine = _engine(engine_port)
        back, back_clock = utc_now(), time.monotonic()

        def recovered() -> bool:
            status = node.status()
            seen.append(status)
            stamp = reported_at({"status": status})
            return stamp is not None and stamp > back and scraping()

        try:
            recovery = seconds_until(recovered, 30, what="both collectors ok again", since=back_clock, interval=0.5)
        except TimeoutError:
            pytest.fail(f"collectors did not recover: {json.dumps(node.status().get('collectors'))}\n{node.diagnostics()}")
        end = time.monotonic() + WINDOW_SECONDS + 2 * REPORT_SECONDS  # the window that held the reset rolls past
        while time.monotonic() < end:
            seen.append(node.status())
            time.sleep(0.5)
        negative = {found for status in seen for section in ("lmcache", "serving")
                    for found in _negative_numbers(status.get(section), section)}
        try:  # the outage itself is a true finding (the instance did not answer); it resolves once it answers
            wait_until(lambda: not [r for r in node.recommendations() if r["status"]["phase"] == "Open"], 30,
                       what="the outage's findings to resolve")
        except TimeoutError:
            pytest.fail(f"still open: {[(r['spec']['rule'], r['status']['phase']) for r in node.recommendations()]}")
        opened = sorted({r["spec"]["rule"] for r in node.recommendations()})
        record("lmcache_and_engine_counters_reset", collectors_recovered_seconds=round(recovery, 2),
               reports_checked=len(seen), agent_rss_before_bytes=rss_before, agent_rss_after_bytes=rss_bytes(agent),
               rss_growth_bound_bytes=RSS_GROWTH_BOUND_BYTES, outage_recommendations=len(opened))
        assert not negative, f"negative values after the reset: {sorted(negative)[:10]}"
        assert set(opened) <= OUTAGE_RULES, f"findings from a counter reset: {opened}"
        assert_alive(processes, pids)
        assert operator.alive
        assert rss_bytes(agent) - rss_before <= RSS_GROWTH_BOUND_BYTES
    finally:
        sim.stop()
        engine.shutdown()
        engine.server_close()


# --- NVML loses a GPU -----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["lost", "unknown"])  # every call raises GpuIsLost; the UUID lookup raises Unknown
def test_a_gpu_lost_mid_run_is_reported_and_kept_while_the_others_report(node: Node, fault: str) -> None:
    control = node.log_dir / "nvml-control"
    control.mkdir()
    agent = _agent_args(node)
    scenario_flags = {"--collector.scenario", "--scenario=healthy-busy", "--scenario-seed=0", "--no-collector.gpu", "--no-collector.system"}
    agent.args = [sys.executable, "-m", "e2e.nvml_agent", str(control), "3", "--",
                  *[arg for arg in agent.args[3:] if arg not in scenario_flags], "--collector.gpu"]
    node.agent(agent)
    operator = node.operator()

    def uuids(status: dict[str, Any]) -> list[str]:
        return [d["uuid"] for d in status.get("gpu", {}).get("devices", [])]

    try:
        wait_until(lambda: uuids(node.status()) == ["GPU-e2e-0", "GPU-e2e-1", "GPU-e2e-2"], 60, what="three GPUs reported")
    except TimeoutError:
        pytest.fail(f"no GPUs in the report: {json.dumps(node.status().get('collectors'))}\n{node.diagnostics()}")
    pids = pids_of(node.processes)
    (control / "1").write_text(fault)
    lost_at = time.monotonic()

    def lost(status: dict[str, Any]) -> list[dict[str, Any]]:
        return status.get("gpu", {}).get("lost", [])

    def gpu_lost_recommendation() -> dict[str, Any] | None:
        return next((r for r in node.recommendations() if r["spec"]["rule"] == "gpu-lost"), None)

    try:
        reported = seconds_until(lambda: [g["index"] for g in lost(node.status())] == [1], 30, what="GPU 1 reported lost",
                                 since=lost_at)
        found = seconds_until(lambda: (gpu_lost_recommendation() or {}).get("status", {}).get("phase") == "Open", 30,
                              what="the gpu-lost recommendation", since=lost_at)
    except TimeoutError:
        pytest.fail(f"lost GPU not reported: {json.dumps(node.status().get('gpu', {}).get('lost'))}\n{node.diagnostics()}")
    first = lost(node.status())[0]
    recommendation = gpu_lost_recommendation()
    assert recommendation is not None
    time.sleep(WINDOW_SECONDS + 2 * REPORT_SECONDS)  # a whole window later
    status = node.status()
    assert uuids(status) == ["GPU-e2e-0", "GPU-e2e-2"], "the other GPUs stopped reporting"
    assert [(g["index"], g["since"]) for g in lost(status)] == [(1, first["since"])], "the lost GPU was forgotten"
    later = gpu_lost_recommendation()
    assert later is not None and later["metadata"]["uid"] == recommendation["metadata"]["uid"]
    assert later["status"]["phase"] == "Open"
    assert _collector_states(status).get("gpu") == "failed"  # says which GPU NVML lost
    assert_alive(node.processes, pids)
    record(f"nvml_gpu_{fault}", lost_reported_seconds=round(reported, 2), recommendation_seconds=round(found, 2),
           gpus=3, operator_alive=operator.alive)


# --- the LLM provider misbehaves ------------------------------------------------------------------

RETRY_AFTER_SECONDS = 2.0
LLM_TIMEOUT_SECONDS = 3.0
GARBAGE = "Sure! Here is my analysis: {not json"


def test_llm_429_timeout_and_garbage_leave_recommendations_without_insight(cluster: ClusterHandle, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:6]
    nodes = [f"gpu-fllm-{suffix}-{i}" for i in range(3)]
    scenarios = ["thermal-throttle", "idle-gpu-holding-memory", "power-capped"]  # three different requests
    processes: list[ManagedProcess] = []
    with FakeLLMServer(mode=Mode.GARBAGE) as server:
        # in order of arrival: a 429 asking for 2 s, a reply slower than the client's timeout, then garbage
        server.enqueue(Reply.error(429, retry_after=RETRY_AFTER_SECONDS), Reply(delay_seconds=30))
        try:
            processes += run_loop(cluster, tmp_path, server, nodes, scenarios=scenarios, max_retries=1,
                                  timeout_seconds=LLM_TIMEOUT_SECONDS)
            operator = processes[-1]
            pids = pids_of(processes)
            wait_until(lambda: {r["spec"]["nodeName"] for r in recommendations(cluster, nodes)} == set(nodes), 90,
                       what="recommendations despite the provider")
            wait_until(lambda: len(server.requests) >= 5, 60, what="three requests and two retries")
            time.sleep(LLM_TIMEOUT_SECONDS + 2)  # the timed-out call's retry is answered too
            found = recommendations(cluster, nodes)
            requests = list(server.requests)
            assert_alive(processes, pids)
            alive = operator.alive
        except (TimeoutError, AssertionError) as exc:
            pytest.fail(f"{exc}\n" + "\n".join(p.tail() for p in processes))
        finally:
            stop_all(processes)
            cluster.kubectl("delete", "node", *nodes, "--ignore-not-found", "--wait=false", check=False)

    def retry_gap(first: int) -> float:
        retry = next(r for r in requests[first + 1:] if r.text == requests[first].text)
        return retry.received_at - requests[first].received_at

    rate_limited, timed_out = retry_gap(0), retry_gap(1)
    record("llm_provider_faults", retry_after_seconds=RETRY_AFTER_SECONDS, retried_after_429_seconds=round(rate_limited, 2),
           llm_timeout_seconds=LLM_TIMEOUT_SECONDS, retried_after_timeout_seconds=round(timed_out, 2),
           requests=len(requests), recommendations=len(found), operator_alive=alive)
    assert rate_limited >= RETRY_AFTER_SECONDS - 0.05, f"retried {rate_limited:.2f}s after a 429 asking for {RETRY_AFTER_SECONDS}s"
    assert timed_out >= LLM_TIMEOUT_SECONDS
    assert not any(r.get("status", {}).get("insight") for r in found), "an insight reached status"
    assert GARBAGE not in json.dumps(found) and "scripted failure" not in json.dumps(found)
    assert all(r["status"]["phase"] == "Open" for r in found)
