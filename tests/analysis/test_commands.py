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
