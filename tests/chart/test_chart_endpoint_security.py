"""endpointSecurity: off by default; with it on, the agent and operator get their flags, TLS Secrets,
HTTPS probes, the review RBAC, and the monitors scrape over HTTPS with a token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.chart_render import RELEASE, HelmError, container, documents, find, one, template

AGENT = f"{RELEASE}-resource-agent-agent"
OPERATOR = f"{RELEASE}-resource-agent-operator"
READER = f"{RELEASE}-resource-agent-metrics-reader"
REVIEW_RULES = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
]
SECURE = {
    "endpointSecurity.auth": "kubernetes",
    "endpointSecurity.authCacheTtl": "30s",
    "endpointSecurity.tls.enabled": True,
    "endpointSecurity.tls.agentSecretName": "agent-tls",
    "endpointSecurity.tls.operatorSecretName": "operator-tls",
    "endpointSecurity.metricsReader.subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"}],
    "monitoring.serviceMonitor.enabled": True,
}


def _docs(helm: Path, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return documents(template(helm, values))


def test_off_by_default(helm: Path) -> None:
    docs = _docs(helm)
    args = container(one(docs, "DaemonSet", AGENT), "agent")["args"] + container(one(docs, "Deployment", OPERATOR), "operator")["args"]
    assert not [arg for arg in args if arg.startswith(("--endpoint-auth", "--tls-"))]
    assert not find(docs, "ClusterRole", READER)
    for name in (AGENT, OPERATOR):
        assert not [rule for rule in one(docs, "ClusterRole", name)["rules"] if rule in REVIEW_RULES]


def test_agent_and_operator_get_flags_secrets_and_https_probes(helm: Path) -> None:
    docs = _docs(helm, SECURE)
    tls_args = ["--tls-cert-file=/etc/resource-agent/tls/tls.crt", "--tls-key-file=/etc/resource-agent/tls/tls.key"]
    for kind, name, component, secret in (("DaemonSet", AGENT, "agent", "agent-tls"), ("Deployment", OPERATOR, "operator", "operator-tls")):
        workload = one(docs, kind, name)
        main = container(workload, component)
        assert {"--endpoint-auth=kubernetes", "--endpoint-auth-cache-ttl=30s", *tls_args} <= set(main["args"])
        assert {"name": "tls", "mountPath": "/etc/resource-agent/tls", "readOnly": True} in main["volumeMounts"]
        assert {"name": "tls", "secret": {"secretName": secret}} in workload["spec"]["template"]["spec"]["volumes"]
    agent = container(one(docs, "DaemonSet", AGENT), "agent")
    assert agent["livenessProbe"]["httpGet"]["scheme"] == "HTTPS" and agent["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    operator = container(one(docs, "Deployment", OPERATOR), "operator")
    assert "scheme" not in operator["livenessProbe"]["httpGet"]  # kopf's liveness endpoint stays plain HTTP


def test_review_rbac_and_metrics_reader(helm: Path) -> None:
    docs = _docs(helm, SECURE)
    for name in (AGENT, OPERATOR):
        rules = one(docs, "ClusterRole", name)["rules"]
        assert all(rule in rules for rule in REVIEW_RULES)
    assert one(docs, "ClusterRole", READER)["rules"] == [{"nonResourceURLs": ["/metrics", "/report"], "verbs": ["get"]}]
    binding = one(docs, "ClusterRoleBinding", READER)
    assert binding["subjects"] == SECURE["endpointSecurity.metricsReader.subjects"]
    assert binding["roleRef"]["name"] == READER


def test_service_monitors_scrape_over_https_with_a_token(helm: Path) -> None:
    monitors = find(_docs(helm, SECURE), "ServiceMonitor")
    assert len(monitors) == 2
    for monitor in monitors:
        endpoint = monitor["spec"]["endpoints"][0]
        assert endpoint["scheme"] == "https" and endpoint["tlsConfig"] == {"insecureSkipVerify": True}
        assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    credentials = {"credentials": {"name": "scrape-token", "key": "token"}}
    endpoint = find(_docs(helm, {**SECURE, "monitoring.serviceMonitor.authorization": credentials}), "ServiceMonitor")[0]["spec"]["endpoints"][0]
    assert endpoint["authorization"] == credentials and "bearerTokenFile" not in endpoint


def test_tls_needs_the_secrets(helm: Path) -> None:
    with pytest.raises(HelmError, match="SecretName"):
        template(helm, {"endpointSecurity.tls.enabled": True})


def test_auth_mode_is_validated(helm: Path) -> None:
    with pytest.raises(HelmError, match="auth"):
        template(helm, {"endpointSecurity.auth": "basic"})
