"""Chart defaults that work on any GPU cluster, and monitoring that does not depend on the release name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.chart_render import NAMESPACE, RELEASE, HelmError, documents, find, one, template

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

CAPACITY_LABEL = "resource.optiinfra.io/gpu-capacity"
CAPACITY_TERM = {"matchExpressions": [{"key": CAPACITY_LABEL, "operator": "In", "values": ["true"]}]}
LABEL_POLICY = f"{OPERATOR}-node-label"


def _pod_spec(helm: Path, values: dict[str, Any] | None = None) -> dict[str, Any]:
    return one(documents(template(helm, values)), "DaemonSet", AGENT)["spec"]["template"]["spec"]


def test_agent_selects_nodes_with_any_common_gpu_label(helm: Path) -> None:
    spec = _pod_spec(helm)
    assert "nodeSelector" not in spec, "a nodeSelector would AND with the affinity"
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert all(len(term["matchExpressions"]) == 1 for term in terms), "one label per term: terms are ORed"
    assert {(t["matchExpressions"][0]["key"], t["matchExpressions"][0]["operator"]) for t in terms} == GPU_LABELS | {(CAPACITY_LABEL, "In")}


def test_all_nodes_mode_and_own_affinity(helm: Path) -> None:
    assert "affinity" not in _pod_spec(helm, {"agent.gpuNodeAffinity.enabled": False})
    own = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["yes"]}]}]}}}
    assert _pod_spec(helm, {"agent.affinity": own})["affinity"] == own
    terms = [{"matchExpressions": [{"key": "example.com/gpu", "operator": "Exists"}]}]
    spec = _pod_spec(helm, {"agent.gpuNodeAffinity.nodeSelectorTerms": terms})
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [*terms, CAPACITY_TERM]
    spec = _pod_spec(helm, {"agent.gpuNodeAffinity.nodeSelectorTerms": terms, "operator.labelGpuCapacityNodes": False})
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


# --- nodes with only nvidia.com/gpu capacity: the operator's label (operator.labelGpuCapacityNodes) ---


def _allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)


def test_capacity_labelling_is_on_by_default_with_rbac_policy_and_terms(helm: Path) -> None:
    docs = documents(template(helm))
    rules = one(docs, "ClusterRole", OPERATOR)["rules"]
    assert _allows(rules, "", "nodes", "patch")
    assert not _allows(rules, "", "nodes", "update") and not _allows(rules, "", "nodes/status", "patch")
    policy = one(docs, "ValidatingAdmissionPolicy", LABEL_POLICY)
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConditions"][0]["expression"] == f'request.userInfo.username == "system:serviceaccount:{NAMESPACE}:{OPERATOR}"'
    assert set(spec["matchConstraints"]["resourceRules"][0]["resources"]) == {"nodes", "nodes/status"}
    assert {"expression": f"'{CAPACITY_LABEL}'", "name": "label"} in spec["variables"]
    assert len(spec["validations"]) == 5
    assert one(docs, "ValidatingAdmissionPolicyBinding", LABEL_POLICY)["spec"] == {"policyName": LABEL_POLICY, "validationActions": ["Deny"]}
    # the operator gets the agent's own terms (without its label's term) and the switch
    data = one(docs, "ConfigMap", OPERATOR)["data"]
    terms = yaml.safe_load(data["gpu-node-selector.yaml"])
    assert {(t["matchExpressions"][0]["key"], t["matchExpressions"][0]["operator"]) for t in terms} == GPU_LABELS
    args = one(docs, "Deployment", OPERATOR)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--label-gpu-capacity-nodes" in args and "--gpu-node-selector=/etc/resource-agent/gpu-node-selector.yaml" in args


def test_the_rendered_terms_load_in_the_operator(helm: Path, tmp_path: Path) -> None:
    from resource_agent.operator.settings import load_gpu_node_selector

    own = [{"matchExpressions": [{"key": "example.com/gpu", "operator": "Exists"}]}]
    data = one(documents(template(helm, {"agent.gpuNodeAffinity.nodeSelectorTerms": own})), "ConfigMap", OPERATOR)["data"]
    path = tmp_path / "gpu-node-selector.yaml"
    path.write_text(data["gpu-node-selector.yaml"])
    assert list(load_gpu_node_selector(path)) == own


@pytest.mark.parametrize("values", [
    {"operator.labelGpuCapacityNodes": False},
    {"agent.gpuNodeAffinity.enabled": False},  # all-nodes mode: every node runs the agent anyway
    {"agent.affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}]}}}},  # the chart's affinity is not in use
    {"agent.enabled": False},
])
def test_capacity_labelling_off_drops_term_rbac_policy_and_flags(helm: Path, values: dict[str, Any]) -> None:
    docs = documents(template(helm, values))
    assert not find(docs, "ValidatingAdmissionPolicy", LABEL_POLICY) and not find(docs, "ValidatingAdmissionPolicyBinding", LABEL_POLICY)
    assert not _allows(one(docs, "ClusterRole", OPERATOR)["rules"], "", "nodes", "patch")
    assert "gpu-node-selector.yaml" not in one(docs, "ConfigMap", OPERATOR)["data"]
    args = one(docs, "Deployment", OPERATOR)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [a for a in args if "gpu" in a]
    for daemonset in find(docs, "DaemonSet"):
        assert CAPACITY_LABEL not in yaml.safe_dump(daemonset)


def test_capacity_labelling_without_the_operator(helm: Path) -> None:
    docs = documents(template(helm, {"operator.enabled": False}))
    assert not find(docs, "ValidatingAdmissionPolicy", LABEL_POLICY)
    assert CAPACITY_LABEL not in yaml.safe_dump(one(docs, "DaemonSet", AGENT)), "no operator, no label: no term"
