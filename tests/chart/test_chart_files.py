"""Chart files that must agree with the rest of the repository (no helm needed)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from tests.chart.chart_render import CHART, CRDS, ROOT

KOPF_CRDS = "kopf.dev_peerings.yaml"
TEMPLATES = CHART / "templates"


def test_chart_crds_are_exact_copies_of_the_generated_crds() -> None:
    generated = sorted(CRDS.glob("*.yaml")) if CRDS.is_dir() else []
    if not generated:
        pytest.skip("crds/ has no generated CRDs yet (resource-agent crds --output-dir crds)")
    shipped = {p.name for p in (CHART / "crds").glob("*.yaml")}
    expected = {p.name for p in generated} | {KOPF_CRDS}
    assert shipped == expected, "charts/resource-agent/crds/ must hold crds/*.yaml plus kopf's peering CRDs"
    for path in generated:
        assert (CHART / "crds" / path.name).read_bytes() == path.read_bytes(), (
            f"charts/resource-agent/crds/{path.name} drifted from crds/{path.name}: cp crds/*.yaml charts/resource-agent/crds/"
        )


def test_chart_ships_both_resource_agent_crds() -> None:
    names = {}
    for path in (CHART / "crds").glob("resource.optiinfra.io_*.yaml"):
        doc = yaml.safe_load(path.read_text())
        names[doc["metadata"]["name"]] = doc["spec"]
    assert set(names) == {"resourcereports.resource.optiinfra.io", "resourcerecommendations.resource.optiinfra.io",
                          "workloadusagecheckpoints.resource.optiinfra.io"}
    checkpoint = names.pop("workloadusagecheckpoints.resource.optiinfra.io")
    assert checkpoint["scope"] == "Namespaced"  # one per workload, in its namespace
    assert "subresources" not in checkpoint["versions"][0]  # written whole with one apply
    for spec in names.values():
        assert spec["scope"] == "Cluster"
        assert "optiinfra" in spec["names"]["categories"]
        assert spec["versions"][0]["name"] == "v1alpha1"
        assert spec["versions"][0]["subresources"] == {"status": {}}


def test_kopf_peering_crds_match_kopfs_own_definitions() -> None:
    docs = list(yaml.safe_load_all((CHART / "crds" / KOPF_CRDS).read_text()))
    by_name = {d["metadata"]["name"]: d["spec"] for d in docs}
    assert set(by_name) == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    assert by_name["clusterkopfpeerings.kopf.dev"]["scope"] == "Cluster"
    assert by_name["clusterkopfpeerings.kopf.dev"]["names"]["kind"] == "ClusterKopfPeering"
    assert by_name["kopfpeerings.kopf.dev"]["scope"] == "Namespaced"
    # kopf stores peers under status: the schema must keep unknown fields there.
    for spec in by_name.values():
        status = spec["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True
    # kopf's own peering selectors match the resources these CRDs define.
    references = pytest.importorskip("kopf._cogs.structs.references")
    for selector, name in [
        (references.CLUSTER_PEERINGS_K, "clusterkopfpeerings.kopf.dev"),
        (references.NAMESPACED_PEERINGS_K, "kopfpeerings.kopf.dev"),
    ]:
        spec = by_name[name]
        resource = references.Resource(
            group=spec["group"],
            version=spec["versions"][0]["name"],
            plural=spec["names"]["plural"],
            kind=spec["names"]["kind"],
            namespaced=spec["scope"] == "Namespaced",
        )
        assert selector.check(resource), name


def test_dashboard_and_rules_copies_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "dashboards" / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_templates_avoid_nondeterministic_functions() -> None:
    forbidden = re.compile(r"\b(lookup|now|randAlpha|randAlphaNum|randNumeric|randAscii|uuidv4|genCA|genSelfSignedCert|genPrivateKey|date)\b")
    for path in sorted(TEMPLATES.rglob("*")):
        if path.is_file():
            for action in re.findall(r"\{\{(.*?)\}\}", path.read_text(), re.DOTALL):
                assert not forbidden.search(action), f"{path.name} uses a non-deterministic function: {action.strip()}"


def _dashboard() -> dict:
    return json.loads((ROOT / "dashboards" / "resource-agent.json").read_text())


def test_dashboard_has_the_promised_sections_and_valid_panels() -> None:
    dashboard = _dashboard()
    panels = dashboard["panels"]
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert rows == ["Fleet", "Node", "GPU", "LMCache", "Recommendations"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert "resource_agent_" in target["expr"] or "up{" in target["expr"], (panel["title"], target["expr"])
            assert target["expr"].count("(") == target["expr"].count(")")
    # Panels do not overlap on the 24-column grid.
    cells = set()
    for panel in panels:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {panel['title']} overlaps another"
                cells.add((x, y))
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "node"}


def _rules() -> list[dict]:
    doc = yaml.safe_load((ROOT / "deploy" / "prometheus-rules.yaml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_alert_rules_are_well_formed() -> None:
    rules = _rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")")
    critical = {r["alert"] for r in rules if r["labels"]["severity"] == "critical"}
    assert {"ResourceAgentGPUXidError", "ResourceAgentGPUUncorrectableECC", "ResourceAgentCriticalFinding"} <= critical


def _metric_names(text: str) -> set[str]:
    return set(re.findall(r"\bresource_agent_[a-z0-9_]+", text))


def _operator_metric_names() -> set[str]:
    """Sample names the operator's registry exposes (counters with _total, histograms with _bucket ...)."""
    metrics_module = pytest.importorskip("resource_agent.operator.metrics")
    from prometheus_client import generate_latest

    metrics = metrics_module.OperatorMetrics()
    text = generate_latest(metrics.registry).decode()
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    return names | {f"{n}_total" for n in names} | {f"{n}_bucket" for n in names}


def test_assets_use_metric_names_the_components_export() -> None:
    metrics_doc = ROOT / "docs" / "metrics.md"
    if not metrics_doc.exists():
        pytest.skip("docs/metrics.md not written yet")
    documented = _metric_names(metrics_doc.read_text()) | _operator_metric_names()
    used = _metric_names((ROOT / "dashboards" / "resource-agent.json").read_text())
    used |= _metric_names((ROOT / "deploy" / "prometheus-rules.yaml").read_text())
    missing = sorted(used - documented)
    assert not missing, f"dashboard/alerts use metrics that neither docs/metrics.md nor the operator export: {missing}"
    assert any(m.startswith("resource_agent_operator_") for m in used)
    assert any(m.startswith("resource_agent_gpu_") for m in used)


def test_alert_rules_pass_promtool(tmp_path) -> None:
    import shutil

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (scripts/setup --test installs Debian's prometheus)")
    result = subprocess.run([promtool, "check", "rules", str(ROOT / "deploy" / "prometheus-rules.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout
    # A unit test of the critical XID alert on a synthetic series.
    tests = tmp_path / "xid_test.yaml"
    tests.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(ROOT / "deploy" / "prometheus-rules.yaml")],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": [
                            {"series": 'resource_agent_gpu_xid_errors_total{node="n1",gpu="0",xid="79"}', "values": "0 0 1 1 1"}
                        ],
                        "alert_rule_test": [
                            {"eval_time": "1m", "alertname": "ResourceAgentGPUXidError", "exp_alerts": []},
                            {
                                "eval_time": "3m",
                                "alertname": "ResourceAgentGPUXidError",
                                "exp_alerts": [
                                    {
                                        "exp_labels": {"severity": "critical", "node": "n1", "gpu": "0", "xid": "79"},
                                        "exp_annotations": {
                                            "summary": "GPU 0 on n1 reported XID 79",
                                            "description": _rules()[0]["annotations"]["description"]
                                            .replace("{{ $labels.xid }}", "79")
                                            .replace("{{ $labels.gpu }}", "0")
                                            .replace("{{ $labels.node }}", "n1")
                                            .strip(),
                                        },
                                    }
                                ],
                            },
                        ],
                    }
                ],
            }
        )
    )
    result = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_agent_port_collides_with_no_node_exporter() -> None:
    from resource_agent.node_agent.settings import DEFAULT_PORT

    values = yaml.safe_load((ROOT / "charts" / "resource-agent" / "values.yaml").read_text())
    assert values["agent"]["port"] == DEFAULT_PORT
    node_level = {9100: "node_exporter", 9400: "dcgm-exporter", 9835: "nvidia_gpu_exporter", 10250: "kubelet", 10249: "kube-proxy", 10256: "kube-proxy"}
    assert DEFAULT_PORT not in node_level
    assert not 30000 <= DEFAULT_PORT <= 32767, "NodePort range"


def test_chart_readme_is_generated_from_values() -> None:
    """charts/resource-agent/README.md comes from values.yaml's `# --` comments (devtools/chart_readme.py)."""
    from devtools.chart_readme import documented

    result = subprocess.run([sys.executable, "-m", "devtools.chart_readme", "--check"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    keys = dict(documented((CHART / "values.yaml").read_text()))
    assert {"agent.gpuNodeAffinity.enabled", "agent.priorityClassName", "monitoring.prometheusRule.runbookUrl"} <= set(keys)
    assert all(description for description in keys.values())
