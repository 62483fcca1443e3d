"""LLM insight end to end: a real operator process, real agents, and a local
OpenAI-compatible endpoint (the outer edge) driven through the real SDK."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.demo.stack import ManagedProcess, stop_all, wait_until
from devtools.llm_server import FakeLLMServer, Mode
from e2e.llm_loop import REPORT_INTERVAL_SECONDS, recommendations, run_loop
from e2e.providers import ClusterHandle


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

        def findings_now() -> set[tuple[str, str]]:
            return {(r["metadata"]["name"], r["spec"]["severity"]) for r in recommendations(cluster, nodes)
                    if r.get("status", {}).get("phase") != "Resolved"}

        seen: list[set[tuple[str, str]]] = []

        def settled() -> bool:
            """The same open findings for 4 s: a window still filling may add one (a material change, explained again)."""
            seen.append(findings_now())
            return len(seen) >= 5 and seen[-1] == seen[-5]

        try:
            wait_until(all_explained, 90, what="status.insight on every recommendation")
            wait_until(settled, 60, interval=1.0, what="the findings to settle")
        except TimeoutError:
            pytest.fail("\n".join(p.tail() for p in processes))
        calls = len(server.requests)
        assert calls >= len(nodes), [r.path for r in server.requests]
        time.sleep(20 * REPORT_INTERVAL_SECONDS)  # 20 more report cycles with the same findings
        assert findings_now() == seen[-1]
        assert len(server.requests) == calls, [r.path for r in server.requests]  # unchanged findings: no call
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
