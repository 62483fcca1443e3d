"""Chart defaults that work on any GPU cluster, and monitoring that does not depend on the release name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.chart_render import RELEASE, HelmError, documents, find, one, template

AGENT = f"{RELEASE}-resource-agent-agent"
OPERATOR = f"{RELEASE}-resource-agent-operator"
DIGEST = "sha256:" + "ab" * 32
GPU_LABELS = {
    ("nvidia.com/gpu.present", "In"),
    ("feature.node.kubernetes.io/pci-10de.present", "In"),
    ("cloud.google.com/gke-accelerator", "Exists"),
    ("k8s.amazonaws.com/accelerator", "Exists"),
    ("kubernetes.azure.com/accelerator", "Exists"),
}


def _pod_spec(helm: Path, values: dict[str, Any] | None = None) -> dict[str, Any]:
    return one(documents(template(helm, values)), "DaemonSet", AGENT)["spec"]["template"]["spec"]


def test_agent_selects_nodes_with_any_common_gpu_label(helm: Path) -> None:
    spec = _pod_spec(helm)
    assert "nodeSelector" not in spec, "a nodeSelector would AND with the affinity"
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert all(len(term["matchExpressions"]) == 1 for term in terms), "one label per term: terms are ORed"
    assert {(t["matchExpressions"][0]["key"], t["matchExpressions"][0]["operator"]) for t in terms} == GPU_LABELS


def test_all_nodes_mode_and_own_affinity(helm: Path) -> None:
    assert "affinity" not in _pod_spec(helm, {"agent.gpuNodeAffinity.enabled": False})
    own = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["yes"]}]}]}}}
    assert _pod_spec(helm, {"agent.affinity": own})["affinity"] == own
    terms = [{"matchExpressions": [{"key": "example.com/gpu", "operator": "Exists"}]}]
    spec = _pod_spec(helm, {"agent.gpuNodeAffinity.nodeSelectorTerms": terms})
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == terms


def test_agent_tolerates_gpu_taints_and_is_node_critical(helm: Path) -> None:
    spec = _pod_spec(helm)
    assert {"key": "nvidia.com/gpu", "operator": "Exists"} in spec["tolerations"]  # every effect
    assert spec["priorityClassName"] == "system-node-critical"
    assert "priorityClassName" not in _pod_spec(helm, {"agent.priorityClassName": ""})


def test_operator_pdb_lets_unhealthy_pods_be_evicted(helm: Path) -> None:
    pdb = one(documents(template(helm)), "PodDisruptionBudget")
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_image_digest_pins_the_image(helm: Path) -> None:
    docs = documents(template(helm, {"agent.image.digest": DIGEST, "operator.image.digest": DIGEST}))
    images = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"] for d in docs if d["kind"] in ("DaemonSet", "Deployment")}
    assert images == {AGENT: f"ghcr.io/optiinfra/resource-agent@{DIGEST}", OPERATOR: f"ghcr.io/optiinfra/resource-agent-operator@{DIGEST}"}
    with pytest.raises(HelmError):
        template(helm, {"agent.image.digest": "latest"})


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PodMonitor"])
def test_monitor_options(helm: Path, kind: str) -> None:
    key = "serviceMonitor" if kind == "ServiceMonitor" else "podMonitor"
    relabel = {"sourceLabels": ["__meta_kubernetes_pod_label_team"], "targetLabel": "team"}
    drop = {"sourceLabels": ["__name__"], "regex": "process_.*", "action": "drop"}
    docs = documents(template(helm, {
        f"monitoring.{key}.enabled": True, f"monitoring.{key}.namespace": "monitoring",
        f"monitoring.{key}.scrapeTimeout": "10s", f"monitoring.{key}.honorLabels": True,
        f"monitoring.{key}.relabelings": [relabel], f"monitoring.{key}.metricRelabelings": [drop],
    }))
    monitors = {d["metadata"]["name"]: d for d in find(docs, kind)}
    assert set(monitors) == {AGENT, OPERATOR}
    for name, monitor in monitors.items():
        assert monitor["metadata"]["namespace"] == "monitoring"
        endpoint = monitor["spec"]["endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"][0]
        assert endpoint["scrapeTimeout"] == "10s" and endpoint["honorLabels"] is True
        assert endpoint["metricRelabelings"] == [drop]
        job = "resource-agent" if name == AGENT else "resource-agent-operator"
        assert endpoint["relabelings"][0] == {"targetLabel": "job", "replacement": job}
        assert endpoint["relabelings"][-1] == relabel


def _rules(helm: Path, values: dict[str, Any] | None = None, release: str = RELEASE) -> dict[str, dict[str, Any]]:
    rule = one(documents(template(helm, {"monitoring.prometheusRule.enabled": True, **(values or {})}, release=release)), "PrometheusRule")
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_alerts_select_on_chart_labels_not_the_release_name(helm: Path) -> None:
    rules = _rules(helm, {"fullnameOverride": "gpu-watch"}, release="anything")
    assert rules["ResourceAgentDown"]["expr"] == 'up{job="resource-agent"} == 0'
    assert rules["ResourceAgentOperatorAbsent"]["expr"] == 'absent(up{job="resource-agent-operator"} == 1)'
    assert 'daemonset="gpu-watch-agent"' in rules["ResourceAgentNoAgentScheduled"]["expr"]
    assert 'namespace="resource-agent"' in rules["ResourceAgentNoAgentScheduled"]["expr"]
    custom = _rules(helm, {"monitoring.jobLabels": {"agent": "gpu-agent", "operator": "gpu-operator"}})
    assert custom["ResourceAgentDown"]["expr"] == 'up{job="gpu-agent"} == 0'
    assert custom["ResourceAgentOperatorAbsent"]["expr"] == 'absent(up{job="gpu-operator"} == 1)'
    for text in [r["expr"] for r in rules.values()]:
        assert "=~" not in text, text


def test_alerts_can_be_disabled_labelled_and_carry_runbooks(helm: Path) -> None:
    rules = _rules(helm, {"monitoring.prometheusRule.disabled": {"ResourceAgentGPUTemperatureHigh": True},
                          "monitoring.prometheusRule.alertLabels": {"team": "gpu-infra"}})
    assert "ResourceAgentGPUTemperatureHigh" not in rules and "ResourceAgentGPUXidError" in rules
    alerts_doc = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text()
    for name, rule in rules.items():
        assert rule["labels"]["team"] == "gpu-infra" and rule["labels"]["severity"] in {"warning", "critical"}
        url = rule["annotations"]["runbook_url"]
        assert url.endswith(f"docs/alerts.md#{name.lower()}")
        assert f"## {name}" in alerts_doc, f"docs/alerts.md has no section for {name}"


def test_silent_failure_alerts_exist(helm: Path) -> None:
    rules = _rules(helm)
    assert "kube_daemonset_status_desired_number_scheduled" in rules["ResourceAgentNoAgentScheduled"]["expr"]
    assert "resource_agent_operator_node_report_stale" in rules["ResourceAgentReportStale"]["expr"]
    assert "resource_agent_operator_node_report_missing" in rules["ResourceAgentGPUNodeWithoutReport"]["expr"]


def test_every_values_key_is_in_the_schema() -> None:
    import json

    chart = Path(__file__).resolve().parents[2] / "charts" / "resource-agent"
    schema = json.loads((chart / "values.schema.json").read_text())
    values = yaml.safe_load((chart / "values.yaml").read_text())

    def walk(node: dict[str, Any], props: dict[str, Any], path: str) -> list[str]:
        missing = []
        for key, value in node.items():
            sub = props.get("properties", {}).get(key)
            if sub is None:
                if props.get("additionalProperties") is False:
                    missing.append(f"{path}{key}")
                continue
            if isinstance(value, dict) and sub.get("properties"):
                missing += walk(value, sub, f"{path}{key}.")
        return missing

    assert not walk(values, schema, "")
