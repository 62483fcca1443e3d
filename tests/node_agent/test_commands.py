"""collect output, recordings, the exporter (promtool) and the agent process (HTTP + SIGTERM)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from resource_agent.cli.node_agent import collect
from resource_agent.node_agent.exporter import SampleExporter, build_registry
from resource_agent.node_agent.recording import RecordingError, read_recording, write_recording
from tests.node_agent.agent_samples import sample

AGENT = [str(Path(sys.executable).with_name("resource-agent"))]


def test_collect_json_has_every_section_and_gpu_says_why(tmp_path: Path) -> None:
    result = CliRunner().invoke(collect, ["--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert list(document) == ["timestamp", "system", "pressure", "gpu", "lmcache", "collectors"]
    assert document["system"]["available"] and document["system"]["cpu"]["utilizationPercent"] is not None
    names = {status["name"]: status["state"] for status in document["collectors"]}
    assert names["system"] == "ok"
    if names["gpu"] != "ok":
        assert document["gpu"]["available"] is False and document["gpu"]["reason"].startswith("NVML not available")


def test_collect_record_writes_a_readable_recording(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    result = CliRunner().invoke(collect, ["--record", str(path), "--duration", "0.3s", "--interval", "0.1s", "--no-collector.gpu"])
    assert result.exit_code == 0, result.output
    samples = read_recording(path)
    assert len(samples) == 3 and samples[0].timestamp < samples[-1].timestamp
    assert samples[1].system is not None and samples[1].system.cpu.utilization_percent is not None
    assert '"perCoreUtilizationPercent"' in path.read_text().splitlines()[0]


def test_recording_round_trip_and_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    written = [sample(step, gpus=2) for step in range(3)]
    assert write_recording(path, written) == 3
    assert read_recording(path) == written
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"load1":', '"load1":"high","x":')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordingError, match=r"line 2: .*system\.cpu\.load1"):
        read_recording(path)
    path.write_text('{"timestamp": 1}\nnot json\n')
    with pytest.raises(RecordingError, match="line 2"):
        read_recording(path)
    with pytest.raises(RecordingError, match="cannot open"):
        read_recording(tmp_path / "missing.jsonl")


def _exposition(xids: dict[int, list[int]] | None = None) -> str:
    exporter = SampleExporter()
    registry = build_registry(exporter)
    exporter.observe(sample(1, gpus=2, xids=xids))
    exporter.observe(sample(2, gpus=2, xids=xids))
    return generate_latest(registry).decode()


def test_exposition_parses_and_carries_units_and_xid_totals() -> None:
    families = {family.name: family for family in text_string_to_metric_families(_exposition({1: [79]}))}
    assert families["resource_agent_gpu_power_watts"].samples[0].value == 302.0
    assert families["resource_agent_gpu_sm_clock_hertz"].samples[0].value == 1.98e9
    assert families["resource_agent_cpu_utilization_ratio"].samples[0].value == 0.02
    xid = families["resource_agent_gpu_xid_errors"]  # the parser strips _total from counter families
    assert xid.type == "counter" and [(s.labels["gpu"], s.labels["xid"], s.value) for s in xid.samples] == [("1", "79", 2.0)]
    for family in families.values():
        assert family.documentation, f"{family.name} has no HELP"


def test_promtool_finds_nothing_to_complain_about() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package 'prometheus'; scripts/setup --test installs it)")
    result = subprocess.run([promtool, "check", "metrics"], input=_exposition({0: [48]}), capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.slow
def test_agent_process_serves_endpoints_and_stops_on_sigterm() -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [*AGENT, "agent", "--interval", "0.2s", "--window", "2s", "--report-interval", "1s", "--listen", f"127.0.0.1:{port}", "--node-name", "test-node"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _get(f"{base}/readyz")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.2)
        else:
            pytest.fail("agent never became ready")
        assert _get(f"{base}/healthz") == (200, "ok\n")
        time.sleep(0.5)
        status, metrics = _get(f"{base}/metrics")
        assert status == 200 and 'resource_agent_collector_success{collector="system"} 1.0' in metrics
        assert "process_resident_memory_bytes" in metrics
        status, report = _get(f"{base}/report")
        summary = json.loads(report)
        assert status == 200 and summary["nodeName"] == "test-node" and summary["window"]["samples"] >= 2
        assert _get(f"{base}/nope")[0] == 404
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "received SIGTERM" in output and "stopped after" in output


def test_every_exported_metric_is_documented() -> None:
    from resource_agent.api.samples import LMCacheSample
    from tests.node_agent.agent_samples import lmcache_instance

    exporter = SampleExporter()
    registry = build_registry(exporter)
    full = sample(2, gpus=1, xids={0: [48]})
    full.lmcache = LMCacheSample(instances=[lmcache_instance(
        2, remote_get_failures_total=3.0, remote_put_failures_total=1.0, remote_ping_errors_total=0.0,
        remote_ping_successes_total=9.0, blocking_timeout_seconds=10.0, worker_ranks=2,
    )])
    from resource_agent.api.samples import LostGpu

    assert full.gpu is not None
    full.gpu.pci_gpu_count, full.gpu.lost = 2, [LostGpu(pci_bus_id="0000:0b:00.0", error="listed on the PCI bus, not by NVML")]
    full.gpu.devices[0] = full.gpu.devices[0].model_copy(update={"power_default_limit_watts": 700.0, "power_limit_min_watts": 200.0, "power_limit_max_watts": 700.0})
    exporter.observe(full)
    from tests.serving.test_collector import two_serving_samples

    for serving in two_serving_samples():
        full.serving, full.timestamp = serving, full.timestamp + 5.0
        exporter.observe(full)
    exposed = {line.split("{")[0].split(" ")[0] for line in generate_latest(registry).decode().splitlines()
               if line.startswith("resource_agent_")}
    assert "resource_agent_lmcache_remote_get_failures_total" in exposed
    assert {"resource_agent_serving_latency_seconds", "resource_agent_serving_kv_cache_usage_ratio"} <= exposed
    assert {"resource_agent_gpu_lost", "resource_agent_gpu_pci_devices", "resource_agent_gpu_power_limit_max_watts"} <= exposed
    documented = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    missing = sorted(name for name in exposed if f"`{name}`" not in documented)
    assert not missing, f"exported but not in docs/metrics.md: {missing}"
