import json
import subprocess
import sys

import yaml
from click.testing import CliRunner

from resource_agent.cli import main

FAST = ["--duration", "400ms", "--interval", "100ms"]


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_scan_a_simulated_node_as_json():
    result = run("scan", *FAST, "--scenario", "thermal-throttle", "--node-name", "sim-1", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {"summary", "scores", "findings"}
    assert document["summary"]["nodeName"] == "sim-1" and document["summary"]["window"]["samples"] == 5
    assert [(f["rule"], f["target"]["name"]) for f in document["findings"]] == [
        ("gpu-thermal-throttling", "gpu3"),
        ("gpu-thermal-throttling", "gpu2"),
        ("gpu-temperature-near-slowdown", "gpu5"),
    ]
    assert 0 <= document["scores"]["health"] < 100


def test_scan_yaml_and_table(tmp_path):
    result = run("scan", *FAST, "--scenario", "idle-gpu-holding-memory", "--format", "yaml")
    assert result.exit_code == 0
    document = yaml.safe_load(result.stdout)
    assert {f["rule"] for f in document["findings"]} == {"gpu-idle-holding-memory"}
    table = run("scan", *FAST, "--scenario", "healthy-busy")
    assert table.exit_code == 0
    for heading in ("Node", "Host", "GPUs", "Scores", "Recommendations (0)"):
        assert heading in table.stdout


def test_scan_applies_the_policy_and_rejects_a_bad_one(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("disabled_rules: [gpu-thermal-throttling, gpu-temperature-near-slowdown]\n")
    result = run("scan", *FAST, "--scenario", "thermal-throttle", "--format", "json", "--policy", str(policy))
    assert json.loads(result.stdout)["findings"] == []
    policy.write_text("rules: {gpu-thermal-throttling: {thresholds: {hot: 1}}}\n")
    bad = run("scan", *FAST, "--scenario", "thermal-throttle", "--policy", str(policy))
    assert bad.exit_code == 2
    assert "rules.gpu-thermal-throttling.thresholds.hot: unknown threshold" in bad.output


def test_scan_rejects_bad_durations():
    assert run("scan", "--duration", "soon").exit_code == 2
    assert run("scan", "--duration", "1s", "--interval", "5s").exit_code == 2


def test_scan_does_not_import_the_cluster_clients():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from resource_agent.cli import main\n"
        "result = CliRunner().invoke(main, ['scan', '--duration', '200ms', '--interval', '100ms', '--scenario', 'healthy-busy', '--format', 'json'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('kubernetes', 'kopf') if m in sys.modules))\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def record(path, name: str = "power-capped", samples: int = 12):
    from resource_agent.node_agent.recording import write_recording
    from resource_agent.scenarios import generate

    write_recording(path, generate(name, samples=samples))
    return path


def test_analyze_a_recording(tmp_path):
    path = record(tmp_path / "node.jsonl")
    result = run("analyze", "--input", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["summary"]["nodeName"] == "sim-power-capped-0"  # the recorded hostname
    assert sorted(f["target"]["name"] for f in document["findings"]) == ["gpu0", "gpu1", "gpu2", "gpu3"]
    renamed = run("analyze", "--input", str(path), "--format", "yaml", "--node-name", "gpu-7")
    assert yaml.safe_load(renamed.stdout)["summary"]["nodeName"] == "gpu-7"


def test_analyze_bad_input_names_line_and_field_and_exits_2(tmp_path):
    path = record(tmp_path / "node.jsonl", samples=3)
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"timestamp":', '"timestamp":"yesterday","was":', 1)
    path.write_text("\n".join(lines) + "\n")
    result = run("analyze", "--input", str(path))
    assert result.exit_code == 2
    assert "line 2" in result.output and "timestamp" in result.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert run("analyze", "--input", str(empty)).exit_code == 2
    missing = run("analyze", "--input", str(tmp_path / "absent.jsonl"))
    assert missing.exit_code == 2 and "absent.jsonl" in missing.output


def test_analyze_streams_the_recording_into_the_same_summary_as_summarize(tmp_path):
    from resource_agent.api.samples import Sample
    from resource_agent.api.summary import NodeSummary
    from resource_agent.node_agent.recording import iter_recording, sample_line
    from resource_agent.node_agent.window import summarize

    path = record(tmp_path / "node.jsonl", "cache-thrash", samples=40)
    samples = list(iter_recording(path))
    # a last line without a system section: the node name is still the last recorded hostname
    with path.open("a") as handle:
        handle.write(sample_line(Sample(timestamp=samples[-1].timestamp + 5)) + "\n")
    result = run("analyze", "--input", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    reported = NodeSummary.model_validate(json.loads(result.stdout)["summary"])
    expected = summarize([*samples, Sample(timestamp=samples[-1].timestamp + 5)], samples[-1].system.hostname)
    assert reported == expected


def test_analyze_a_recording_without_system_sections_exits_2(tmp_path):
    from resource_agent.api.samples import Sample
    from resource_agent.node_agent.recording import write_recording

    path = tmp_path / "bare.jsonl"
    write_recording(path, [Sample(timestamp=1.0), Sample(timestamp=2.0)])
    result = run("analyze", "--input", str(path))
    assert result.exit_code == 2 and "system section" in result.output
