"""The chart rendered by the real helm: lint, determinism, schema, and what each value does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.chart_render import (
    CHART,
    NAMESPACE,
    RELEASE,
    HelmError,
    container,
    documents,
    find,
    one,
    run_helm,
    template,
)

AGENT = f"{RELEASE}-resource-agent-agent"
OPERATOR = f"{RELEASE}-resource-agent-operator"
HARDENED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
ALL_ON = {
    "monitoring.serviceMonitor.enabled": True,
    "monitoring.podMonitor.enabled": True,
    "monitoring.prometheusRule.enabled": True,
    "monitoring.grafanaDashboard.enabled": True,
    "operator.llm.provider": "groq",
    "operator.llm.existingSecret": "groq-key",
    "networkPolicy.egress.enabled": True,
    "networkPolicy.egress.apiServerCidrs": ["10.0.0.1/32"],
    "agent.hostPID": True,
    "agent.runtimeClassName": "nvidia",
}


@pytest.fixture(scope="module")
def default_docs(helm: Path) -> list[dict[str, Any]]:
    return documents(template(helm))


def test_lint_strict_is_clean(helm: Path, tmp_path: Path) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout
    values = tmp_path / "all-on.yaml"
    nested: dict[str, Any] = {}
    for dotted, value in ALL_ON.items():
        node = nested
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    values.write_text(yaml.safe_dump(nested))
    result = run_helm(helm, "lint", "--strict", str(CHART), "-f", str(values))
    assert "0 chart(s) failed" in result.stdout and "[WARNING]" not in result.stdout


@pytest.mark.parametrize("values", [{}, ALL_ON], ids=["defaults", "all-on"])
def test_template_is_deterministic(helm: Path, values: dict[str, Any]) -> None:
    first = template(helm, values, "--include-crds")
    second = template(helm, values, "--include-crds")
    assert first == second
    assert len(documents(first)) > 15


def test_default_render_has_every_component(default_docs: list[dict[str, Any]]) -> None:
    kinds = sorted({d["kind"] for d in default_docs})
    assert kinds == sorted(
        {
            "ClusterKopfPeering", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "Deployment",
            "FlowSchema", "NetworkPolicy", "PriorityLevelConfiguration", "Pod", "PodDisruptionBudget", "Service", "ServiceAccount",
            "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
        }
    )  # fmt: skip
    # Monitoring objects are off by default (they need the Prometheus Operator's CRDs).
    assert not find(default_docs, "ServiceMonitor") and not find(default_docs, "PrometheusRule")


def test_every_object_has_the_standard_labels(default_docs: list[dict[str, Any]]) -> None:
    for doc in default_docs:
        labels = doc["metadata"]["labels"]
        assert labels["helm.sh/chart"] == "resource-agent-0.1.0", doc["metadata"]["name"]
        assert labels["app.kubernetes.io/name"] == "resource-agent"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/part-of"] == "resource-agent"


def test_agent_daemonset_runs_the_agreed_command(default_docs: list[dict[str, Any]]) -> None:
    daemonset = one(default_docs, "DaemonSet", AGENT)
    pod = daemonset["spec"]["template"]["spec"]
    agent = container(daemonset, "agent")
    assert agent["args"] == [
        "agent",
        "--node-name=$(NODE_NAME)",
        "--host-proc=/host/proc",
        "--host-sys=/host/sys",
        "--host-root=/host/root",
        "--listen=0.0.0.0:19400",
        "--interval=5s",
        "--report-interval=60s",
        "--report-heartbeat=5m",
        "--report",
        "--config=/etc/resource-agent/agent.yaml",
    ]
    env = {e["name"]: e for e in agent["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["NVIDIA_VISIBLE_DEVICES"]["value"] == "all"
    assert env["NVIDIA_DRIVER_CAPABILITIES"]["value"] == "utility"
    assert agent["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    assert agent["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-metrics"}
    assert agent["ports"] == [{"name": "http-metrics", "containerPort": 19400, "protocol": "TCP"}]
    assert "nodeSelector" not in pod and pod["affinity"]["nodeAffinity"]  # tests/chart/test_chart_gpu_clusters.py
    assert {"key": "nvidia.com/gpu", "operator": "Exists"} in pod["tolerations"]
    assert pod["hostPID"] is False and "runtimeClassName" not in pod and "hostNetwork" not in pod
    assert pod["serviceAccountName"] == AGENT
    assert agent["securityContext"] == HARDENED
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert agent["resources"]["requests"] and agent["resources"]["limits"]
    mounts = {m["name"]: m for m in agent["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for name, host, path in [("host-proc", "/proc", "/host/proc"), ("host-sys", "/sys", "/host/sys")]:
        assert mounts[name] == {"name": name, "mountPath": path, "readOnly": True}
        assert volumes[name]["hostPath"]["path"] == host
    assert mounts["host-root"] == {"name": "host-root", "mountPath": "/host/root", "readOnly": True,
                                   "mountPropagation": "HostToContainer"}
    assert volumes["host-root"]["hostPath"]["path"] == "/"
    assert mounts["config"]["mountPath"] == "/etc/resource-agent"
    config = one(default_docs, "ConfigMap", AGENT)
    assert yaml.safe_load(config["data"]["agent.yaml"])["window"] == "5m"


def test_agent_gpu_options(helm: Path) -> None:
    docs = documents(
        template(
            helm,
            {
                "agent.hostPID": True,
                "agent.hostNetwork": True,
                "agent.runtimeClassName": "nvidia",
                "agent.interval": "2s",
                "agent.reportInterval": "30s",
                "agent.report": False,
                "agent.nodeSelector": None,
                "agent.nvidia.visibleDevices": "",
            },
        )
    )
    daemonset = one(docs, "DaemonSet", AGENT)
    pod = daemonset["spec"]["template"]["spec"]
    agent = container(daemonset, "agent")
    assert pod["hostPID"] is True
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["runtimeClassName"] == "nvidia"
    assert "nodeSelector" not in pod
    assert "--interval=2s" in agent["args"] and "--report-interval=30s" in agent["args"]
    assert "--report" not in agent["args"]
    assert "NVIDIA_VISIBLE_DEVICES" not in {e["name"] for e in agent["env"]}


def test_operator_deployment(default_docs: list[dict[str, Any]]) -> None:
    deployment = one(default_docs, "Deployment", OPERATOR)
    pod = deployment["spec"]["template"]["spec"]
    operator = container(deployment, "operator")
    assert deployment["spec"]["replicas"] == 2
    assert operator["args"] == [
        "operator",
        f"--peering={RELEASE}",
        "--policy=/etc/resource-agent/policy.yaml",
        "--llm-config=/etc/resource-agent/llm.yaml",
        "--metrics-listen=0.0.0.0:8080",
        "--health-listen=0.0.0.0:8081",
        "--report-interval=60s",  # the agents' interval and heartbeat: the stale-report threshold follows them
        "--report-heartbeat=5m",
        "--label-gpu-capacity-nodes",  # nodes with only nvidia.com/gpu capacity (tests/chart/test_chart_gpu_clusters.py)
        "--gpu-node-selector=/etc/resource-agent/gpu-node-selector.yaml",
    ]
    env = {e["name"]: e for e in operator["env"]}
    assert set(env) == {"POD_NAME", "POD_NAMESPACE", "POD_ID"}
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {p["name"]: p["containerPort"] for p in operator["ports"]} == {"http-metrics": 8080, "health": 8081}
    assert operator["securityContext"] == HARDENED
    assert pod["serviceAccountName"] == OPERATOR
    assert "hostPID" not in pod and all("hostPath" not in v for v in pod["volumes"])
    pdb = one(default_docs, "PodDisruptionBudget", OPERATOR)
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    assert one(default_docs, "ClusterKopfPeering")["metadata"]["name"] == RELEASE
    llm = yaml.safe_load(one(default_docs, "ConfigMap", OPERATOR)["data"]["llm.yaml"])
    assert llm["provider"] == "none"
    assert "api_key" not in llm


def test_llm_key_comes_from_an_existing_secret(helm: Path) -> None:
    docs = documents(
        template(helm, {"operator.llm.provider": "groq", "operator.llm.existingSecret": "groq", "operator.llm.existingSecretKey": "token"})
    )
    env = {e["name"]: e for e in container(one(docs, "Deployment", OPERATOR), "operator")["env"]}
    for name in ("GROQ_API_KEY", "RESOURCE_AGENT_LLM_API_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "groq", "key": "token"}
    rendered = template(helm, {"operator.llm.provider": "groq", "operator.llm.existingSecret": "groq"})
    assert "kind: Secret" not in rendered
    with pytest.raises(HelmError, match=r"needs operator\.llm\.existingSecret"):
        template(helm, {"operator.llm.provider": "groq"})
    docs = documents(
        template(helm, {"operator.llm.provider": "openai-compatible", "operator.llm.baseUrl": "http://vllm.llm:8000/v1", "operator.llm.model": "m"})
    )
    llm = yaml.safe_load(one(docs, "ConfigMap", OPERATOR)["data"]["llm.yaml"])
    assert (llm["provider"], llm["base_url"], llm["model"]) == ("openai-compatible", "http://vllm.llm:8000/v1", "m")


def test_chart_configs_load_in_the_operators_own_settings(
    helm: Path, default_docs: list[dict[str, Any]], tmp_path: Path
) -> None:
    settings = pytest.importorskip("resource_agent.llm.settings")
    policy_module = pytest.importorskip("resource_agent.analysis.policy")
    data = one(default_docs, "ConfigMap", OPERATOR)["data"]
    (tmp_path / "llm.yaml").write_text(data["llm.yaml"])
    loaded = settings.load_llm_settings(tmp_path / "llm.yaml")
    assert loaded.enabled is False and loaded.requests_per_minute == 30 and loaded.redact is True
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(data["policy.yaml"])
    assert policy_module.Policy.from_yaml(policy_path) == policy_module.Policy()
    # A policy given in values reaches the operator unchanged and is accepted by its parser.
    docs = documents(template(helm, {"operator.policy": {"sustain": {"min_samples": 3}}}))
    policy_path.write_text(one(docs, "ConfigMap", OPERATOR)["data"]["policy.yaml"])
    assert policy_module.Policy.from_yaml(policy_path).sustain.min_samples == 3


def test_agent_config_loads_in_the_agents_own_parser(helm: Path, tmp_path: Path) -> None:
    from resource_agent.node_agent.settings import AgentConfig

    docs = documents(template(helm, {"agent.config": {"window": "10m", "collectors": {"pressure": False}}}))
    path = tmp_path / "agent.yaml"
    path.write_text(one(docs, "ConfigMap", AGENT)["data"]["agent.yaml"])
    config = AgentConfig.load(path)
    assert config.window == 600.0 and config.collectors == {"pressure": False}


def _rules(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return one(docs, "ClusterRole", name)["rules"]


def _allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)


def test_agent_rbac_is_least_privilege(default_docs: list[dict[str, Any]]) -> None:
    rules = _rules(default_docs, AGENT)
    group = "resource.optiinfra.io"
    for verb in ("get", "create", "patch", "update"):
        assert _allows(rules, group, "resourcereports", verb)
    for verb in ("get", "patch", "update"):
        assert _allows(rules, group, "resourcereports/status", verb)
    assert _allows(rules, "", "nodes", "get") and _allows(rules, "", "pods", "list") and _allows(rules, "", "pods", "watch")
    for group_, resource, verb in [
        (group, "resourcereports", "delete"),
        (group, "resourcereports", "list"),
        (group, "resourcerecommendations", "get"),
        ("", "nodes", "list"),
        ("", "pods", "get"),
        ("", "secrets", "get"),
    ]:
        assert not _allows(rules, group_, resource, verb), (resource, verb)
    assert all("*" not in r["verbs"] and "*" not in r["resources"] for r in rules)
    binding = one(default_docs, "ClusterRoleBinding", AGENT)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": AGENT, "namespace": NAMESPACE}]


def test_operator_rbac(default_docs: list[dict[str, Any]]) -> None:
    rules = _rules(default_docs, OPERATOR)
    group = "resource.optiinfra.io"
    for verb in ("get", "list", "watch", "patch"):
        assert _allows(rules, group, "resourcereports", verb)
    assert not _allows(rules, group, "resourcereports", "create")
    for resource in ("resourcerecommendations", "resourcerecommendations/status"):
        for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
            assert _allows(rules, group, resource, verb)
    for events_group in ("", "events.k8s.io"):
        assert _allows(rules, events_group, "events", "create") and _allows(rules, events_group, "events", "patch")
    assert _allows(rules, "apiextensions.k8s.io", "customresourcedefinitions", "watch")
    assert _allows(rules, "kopf.dev", "clusterkopfpeerings", "patch")
    assert not _allows(rules, "", "secrets", "get")


def test_node_bound_policy_targets_the_agent_service_account(default_docs: list[dict[str, Any]]) -> None:
    policy = one(default_docs, "ValidatingAdmissionPolicy", f"{RELEASE}-resource-agent-node-bound-reports")
    condition = policy["spec"]["matchConditions"][0]["expression"]
    assert f'"system:serviceaccount:{NAMESPACE}:{AGENT}"' in condition
    rules = policy["spec"]["matchConstraints"]["resourceRules"][0]
    assert set(rules["resources"]) == {"resourcereports", "resourcereports/status"}
    assert policy["spec"]["failurePolicy"] == "Fail"
    binding = one(default_docs, "ValidatingAdmissionPolicyBinding", policy["metadata"]["name"])
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]


def test_flow_control_keeps_report_writes_from_starving_heartbeats_and_the_operator(
    default_docs: list[dict[str, Any]], helm: Path
) -> None:
    reports = one(default_docs, "FlowSchema", f"{AGENT}-reports")
    level = one(default_docs, "PriorityLevelConfiguration", f"{AGENT}-reports")
    assert reports["spec"]["priorityLevelConfiguration"]["name"] == level["metadata"]["name"]
    [rule] = reports["spec"]["rules"]
    assert rule["subjects"] == [{"kind": "ServiceAccount", "serviceAccount": {"name": AGENT, "namespace": NAMESPACE}}]
    assert set(rule["resourceRules"][0]["resources"]) == {"resourcereports", "resourcereports/status"}
    assert rule["resourceRules"][0]["apiGroups"] == ["resource.optiinfra.io"]
    limited = level["spec"]["limited"]
    assert level["spec"]["type"] == "Limited" and limited["lendablePercent"] == 0  # never borrows from or lends to others
    assert limited["limitResponse"]["type"] == "Queue"  # bounded queues: excess writes wait or get 429, then retry
    operator = one(default_docs, "FlowSchema", OPERATOR)
    assert operator["spec"]["matchingPrecedence"] < reports["spec"]["matchingPrecedence"]
    assert one(default_docs, "PriorityLevelConfiguration", OPERATOR)["spec"]["limited"]["nominalConcurrencyShares"] > (
        limited["nominalConcurrencyShares"]
    )
    for doc in (reports, operator):  # below the built-in system schemas (node heartbeats, leader election)
        assert doc["spec"]["matchingPrecedence"] > 800
    docs = documents(template(helm, {"flowControl.enabled": False}))
    assert not find(docs, "FlowSchema") and not find(docs, "PriorityLevelConfiguration")
    docs = documents(template(helm, {"agent.enabled": False}))
    assert [d["metadata"]["name"] for d in find(docs, "FlowSchema")] == [OPERATOR]


def test_network_policy_opens_only_metrics_and_health_ports(default_docs: list[dict[str, Any]], helm: Path) -> None:
    agent = one(default_docs, "NetworkPolicy", AGENT)
    operator = one(default_docs, "NetworkPolicy", OPERATOR)
    assert agent["spec"]["policyTypes"] == ["Ingress"]
    assert [p["port"] for p in agent["spec"]["ingress"][0]["ports"]] == [19400]
    assert sorted(p["port"] for p in operator["spec"]["ingress"][0]["ports"]) == [8080, 8081]
    with pytest.raises(HelmError, match="apiServerCidrs"):
        template(helm, {"networkPolicy.egress.enabled": True})
    docs = documents(template(helm, {"networkPolicy.egress.enabled": True, "networkPolicy.egress.apiServerCidrs": ["10.0.0.1/32"]}))
    agent = one(docs, "NetworkPolicy", AGENT)
    assert agent["spec"]["policyTypes"] == ["Ingress", "Egress"]
    destinations = [rule["to"] for rule in agent["spec"]["egress"]]
    assert [{"ipBlock": {"cidr": "10.0.0.1/32"}}] in destinations
    assert not find(documents(template(helm, {"networkPolicy.enabled": False})), "NetworkPolicy")


def test_monitoring_objects(helm: Path) -> None:
    docs = documents(template(helm, ALL_ON))
    assert len(find(docs, "ServiceMonitor")) == 2 and len(find(docs, "PodMonitor")) == 2
    rule = one(docs, "PrometheusRule")
    shipped = yaml.safe_load((CHART.parents[1] / "deploy" / "prometheus-rules.yaml").read_text())
    rendered = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    for group in shipped["groups"]:
        for source in group["rules"]:  # the same rules; runbook_url added, selectors already the chart's defaults
            got = rendered[source["alert"]]
            assert got["annotations"].pop("runbook_url").endswith("#" + source["alert"].lower())
            if "daemonset=" not in source["expr"]:
                assert got == source
    dashboard = one(docs, "ConfigMap", f"{RELEASE}-resource-agent-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["resource-agent.json"]) == json.loads(
        (CHART.parents[1] / "dashboards" / "resource-agent.json").read_text()
    )


def test_components_can_be_turned_off(helm: Path) -> None:
    docs = documents(template(helm, {"agent.enabled": False}))
    assert not find(docs, "DaemonSet") and not find(docs, "ValidatingAdmissionPolicy")
    assert find(docs, "Deployment")
    docs = documents(template(helm, {"operator.enabled": False}))
    assert not find(docs, "Deployment") and not find(docs, "ClusterKopfPeering") and not find(docs, "Pod")
    assert not find(documents(template(helm, {"test.enabled": False})), "Pod")
    docs = documents(template(helm, {"nodeBoundReports.enabled": False, "rbac.create": False, "operator.labelGpuCapacityNodes": False}))
    assert not find(docs, "ValidatingAdmissionPolicy") and not find(docs, "ClusterRole")


def test_values_file_and_set_combine(helm: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("operator:\n  replicas: 3\nagent:\n  interval: 10s\n")
    text = run_helm(
        helm, "template", "gpu", str(CHART), "-n", "ops", "-f", str(values), "--set", "agent.reportInterval=2m"
    ).stdout
    docs = documents(text)
    assert one(docs, "Deployment")["spec"]["replicas"] == 3
    args = container(one(docs, "DaemonSet"), "agent")["args"]
    assert "--interval=10s" in args and "--report-interval=2m" in args
    # A release name that contains the chart name is not repeated.
    assert one(docs, "DaemonSet")["metadata"]["name"] == "gpu-resource-agent-agent"
    docs = documents(run_helm(helm, "template", "resource-agent", str(CHART), "-n", "ops").stdout)
    assert one(docs, "DaemonSet")["metadata"]["name"] == "resource-agent-agent"


def test_config_change_rolls_the_pods(helm: Path) -> None:
    def checksum(values: dict[str, Any]) -> str:
        daemonset = one(documents(template(helm, values)), "DaemonSet")
        return daemonset["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum({}) == checksum({})
    assert checksum({}) != checksum({"agent.config": {"window": "10m"}})


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"agent.unknownKey": 1}, "unknownKey"),
        ({"agent.interval": "5 seconds"}, "interval"),
        ({"agent.image.pullPolicy": "Sometimes"}, "pullPolicy"),
        ({"nodeBoundReports.validationActions": ["Reject"]}, "validationActions"),
        ({"operator.llm.provider": "anthropic"}, "provider"),
        ({"operator.replicas": -1}, "replicas"),
        ({"agent.port": 70000}, "port"),
        ({"topLevelTypo": True}, "topLevelTypo"),
    ],
)
def test_schema_rejects_bad_values(helm: Path, values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(HelmError, match=complaint) as raised:
        template(helm, values)
    assert "schema" in raised.value.stderr.lower() or "values don't meet" in raised.value.stderr.lower()


def test_helm_test_hook_uses_the_operators_service_account(default_docs: list[dict[str, Any]]) -> None:
    pod = one(default_docs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["serviceAccountName"] == OPERATOR
    commands = [c["command"] for c in pod["spec"]["initContainers"] + pod["spec"]["containers"]]
    assert commands[0][:3] == ["kubectl", "wait", "--for=condition=Established"]
    assert "crd/resourcereports.resource.optiinfra.io" in commands[0]
    assert commands[1] == ["kubectl", "get", "resourcerecommendations.resource.optiinfra.io"]
    assert pod["spec"]["containers"][0]["image"] == "registry.k8s.io/kubectl:v1.33.1"


@pytest.mark.parametrize(("kind", "name"), [("DaemonSet", AGENT), ("Deployment", OPERATOR)])
def test_rendered_args_parse_with_the_real_cli(helm: Path, tmp_path: Path, kind: str, name: str) -> None:
    """The flags the chart passes are the ones `resource-agent agent|operator` accept."""
    import click

    from resource_agent.cli import main

    docs = documents(template(helm, {"agent.hostPID": True}))
    workload = one(docs, kind, name)
    args = workload["spec"]["template"]["spec"]["containers"][0]["args"]
    # Files the pod gets from its ConfigMap, written here so path checks see them.
    config_map = one(docs, "ConfigMap", name)
    for key, content in config_map["data"].items():
        (tmp_path / key).write_text(content)
    args = [a.replace("/etc/resource-agent/", f"{tmp_path}/") for a in args]
    with click.Context(main) as parent:
        command = main.get_command(parent, args[0])
        assert command is not None and "not available" not in (command.help or "")
        ctx = command.make_context(args[0], args[1:], parent=parent)
    assert ctx.params, args
