"""`resource-agent scan --serving-url` against the simulated vLLM's /metrics on loopback, end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from devtools.serving_simulator import SimulatedEngine, serve
from resource_agent.cli import main

# only the serving collector and the host's own figures: no NVML, LMCache or kubelet lookups
COLLECTORS = ["--no-collector.gpu", "--no-collector.lmcache", "--no-collector.podresources", "--no-collector.pressure"]
WIDE = {"COLUMNS": "220"}


@pytest.fixture
def simulated_vllm() -> Iterator[tuple[SimulatedEngine, str]]:
    engine = SimulatedEngine("vllm", "kv-bound", seed=3)
    server = serve(engine, 0)
    try:
        yield engine, f"vllm=http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def scan(*args: str) -> tuple[int, str, str]:
    result = CliRunner(env=WIDE).invoke(main, ["scan", "--node-name", "sim", *COLLECTORS, *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_scan_prints_the_serving_tables_and_a_kv_bound_finding(simulated_vllm: tuple[SimulatedEngine, str]) -> None:
    _, url = simulated_vllm
    code, out, err = scan("--serving-url", url, "--serving-url", "sglang=http://127.0.0.1:1", "--duration", "4s", "--interval", "1s")
    assert code == 0, err
    assert "Serving engines (p95 over the window)" in out and "Serving latency" in out
    row = next(line for line in out.splitlines() if line.startswith("│ vllm 127.0.0.1:") and "%" in line)
    cells = [cell.strip() for cell in row.strip("│").split("│")]
    # engine, running, waiting, KV used, preempt, prefix hit, gen tok/s, req/s (the kv-bound profile's levels)
    assert cells[1:4] == ["60", "25", "98.5%"] and cells[5] == "50.0%", row
    latency = next(line for line in out.splitlines() if line.startswith("│ vllm 127.0.0.1:") and "Llama-3.1-8B-Instruct" in line)
    assert " s " in latency or " ms " in latency, latency
    # an engine that does not answer is a row, with the reason under the table, not a failed scan
    assert "│ sglang 127.0.0.1:1" in out and "unreachable (http://127.0.0.1:1/metrics" in out
    findings = out[out.index("Recommendations"):]
    assert "serving-kv-cache-bound" in findings and "gpu_memory_utilization" in findings, findings
    assert "note:" not in err  # 5 samples: long enough for the sustained rules


def test_scan_json_carries_the_serving_summary_and_a_healthy_engine_has_no_serving_finding(
    simulated_vllm: tuple[SimulatedEngine, str],
) -> None:
    engine, url = simulated_vllm
    engine.set_profile("healthy")
    code, out, err = scan("--serving-url", url, "--duration", "400ms", "--interval", "100ms", "-o", "json")
    assert code == 0, err
    document = json.loads(out)
    [serving] = document["summary"]["serving"]["instances"]
    assert serving["engine"] == "vllm" and serving["reachable"] and serving["samples"] == 5
    assert serving["kvCacheUsagePercent"]["p95"] == pytest.approx(55.0)
    assert not [f for f in document["findings"] if f["rule"].startswith("serving-")], document["findings"]


def test_a_window_too_short_for_the_sustained_rules_is_said(simulated_vllm: tuple[SimulatedEngine, str]) -> None:
    _, url = simulated_vllm
    code, out, err = scan("--serving-url", url, "--duration", "200ms", "--interval", "100ms")
    assert code == 0, err
    assert "Serving engines" in out and "serving-kv-cache-bound" not in out
    assert "note:" in err and "sustained rules" in err and "(5 samples" in err
