"""Secure endpoints on the real API server: TLS, TokenReview and SubjectAccessReview (kube-rbac-proxy's way).

`resource-agent agent` and `resource-agent operator` run with `--endpoint-auth=kubernetes` and a
self-signed certificate, each with its own ServiceAccount and the RBAC the chart renders with
`endpointSecurity.auth=kubernetes` (tokenreviews/subjectaccessreviews create). A scraper whose
ServiceAccount the chart's metrics-reader ClusterRole binds gets 200; another ServiceAccount 403;
no token 401; the probes' endpoints stay open.

The same run is the secrets grep (issue 17): the agent also writes its report with its token and
reads a simulated LMCache whose `/conf` holds a redis password and an S3 key, and the operator has
a fake Groq API key pointed at devtools/llm_server.py. No secret may appear in any log, Event,
report or recommendation; the key only in the Authorization header of the LLM requests.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.demo.stack import ManagedProcess, cli, free_port, free_port_block, install_crds, stop_all, wait_until
from devtools.devcluster.nodes import NodeSpec
from devtools.llm_server import FakeLLMServer
from devtools.lmcache_simulator import SimulatedInstance
from e2e.providers import ClusterHandle
from e2e.test_lmcache_apply import AWS_KEY, CONF_WITH_SECRETS, SECRET
from e2e.tokens import token_kubeconfig
from tests.chart.chart_render import helm_binary, template

GROUP, VERSION = "resource.optiinfra.io", "v1alpha1"
LLM_KEY = "gsk_e2eFAKEllmKEY0123456789abcdef"
CHART_PARTS = (
    "templates/agent-serviceaccount.yaml", "templates/agent-rbac.yaml",
    "templates/operator-serviceaccount.yaml", "templates/operator-rbac.yaml",
    "templates/metrics-reader-rbac.yaml",
)


@dataclass
class Secured:
    agent_url: str
    operator_url: str
    tokens: dict[str, str]  # "scraper" / "stranger" -> ServiceAccount token
    context: ssl.SSLContext  # trusts the test CA only
    processes: list[ManagedProcess]
    cluster: ClusterHandle
    node: str
    llm: FakeLLMServer
    secrets: dict[str, str]  # what it is -> the value no log or object may hold

    def get(self, url: str, token: str | None) -> tuple[int, str]:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(request, timeout=15, context=self.context) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def diagnostics(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail()}" for p in self.processes)


def _token(cluster: ClusterHandle, namespace: str, service_account: str) -> str:
    from kubernetes.client import CoreV1Api

    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"audiences": [], "expirationSeconds": 3600}}
    with cluster.api_client() as client:
        return str(CoreV1Api(client).create_namespaced_service_account_token(service_account, namespace, body).status.token)


@pytest.fixture(scope="module")
def secured(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory, tls_files: tuple[Path, Path, Path]) -> Iterator[Secured]:
    helm = helm_binary()
    if helm is None:
        pytest.skip("no helm binary: run scripts/build-controlplane")
    work = tmp_path_factory.mktemp("endpoint-auth")
    ca_cert, server_cert, server_key = tls_files
    suffix = uuid.uuid4().hex[:6]
    namespace, release, node = f"auth-{suffix}", f"auth{suffix}", f"auth-node-{suffix}"
    install_crds(cluster.kubectl)
    cluster.add_nodes([NodeSpec(name=node)])
    cluster.kubectl("create", "namespace", namespace)
    for name in ("scraper", "stranger"):
        cluster.kubectl("create", "serviceaccount", name, "-n", namespace)
    values = {
        "fullnameOverride": release,
        "endpointSecurity.auth": "kubernetes",
        "endpointSecurity.metricsReader.subjects": [{"kind": "ServiceAccount", "name": "scraper", "namespace": namespace}],
    }
    manifest = template(helm, values, *[f"--show-only={part}" for part in CHART_PARTS], release=release, namespace=namespace)
    cluster.kubectl("apply", "--server-side", "-f", "-", input=manifest)
    kubeconfigs = {
        component: token_kubeconfig(cluster.kubeconfig, _token(cluster, namespace, f"{release}-{component}"), work / f"{component}.kubeconfig")
        for component in ("agent", "operator")
    }
    secure = ["--endpoint-auth=kubernetes", f"--tls-cert-file={server_cert}", f"--tls-key-file={server_key}"]
    agent_port, metrics_port, health_port = free_port(), free_port(), free_port()
    lmcache = SimulatedInstance(port=free_port_block(3), workers=2, profile="slow-remote", conf=CONF_WITH_SECRETS).start()
    llm = FakeLLMServer().start()
    agent = ManagedProcess("agent", [
        *cli(), "agent", f"--node-name={node}", "--collector.scenario", "--scenario=thermal-throttle",
        "--no-collector.system", "--no-collector.pressure", "--no-collector.gpu", "--collector.lmcache",
        f"--lmcache-url={lmcache.spec()}", "--no-collector.podresources", "--interval=1s", "--window=10s",
        "--report", "--report-interval=2s", f"--listen=127.0.0.1:{agent_port}",
        f"--kubeconfig={kubeconfigs['agent']}", *secure,
    ], work / "agent.log")
    llm_env = {"GROQ_API_KEY": LLM_KEY, "GROQ_BASE_URL": llm.groq_base_url, "RESOURCE_AGENT_LLM_MAX_RETRIES": "0"}
    operator = ManagedProcess("operator", [
        *cli(), "operator", f"--metrics-listen=127.0.0.1:{metrics_port}", f"--health-listen=127.0.0.1:{health_port}",
        "--no-workloads", *secure,
    ], work / "operator.log", env={"KUBECONFIG": str(kubeconfigs["operator"]), **llm_env})
    tokens = {name: _token(cluster, namespace, name) for name in ("scraper", "stranger")}
    secrets = {"the LLM API key": LLM_KEY, "the LMCache redis password": SECRET, "the LMCache S3 key": AWS_KEY,
               **{f"the {name}'s ServiceAccount token": token for name, token in tokens.items()},
               **{f"the {component}'s ServiceAccount token": _kubeconfig_token(path) for component, path in kubeconfigs.items()}}
    state = Secured(
        agent_url=f"https://127.0.0.1:{agent_port}",
        operator_url=f"https://127.0.0.1:{metrics_port}",
        tokens=tokens,
        context=ssl.create_default_context(cafile=str(ca_cert)),
        processes=[agent.start(), operator.start()],
        cluster=cluster, node=node, llm=llm, secrets=secrets,
    )
    try:
        for url in (f"{state.agent_url}/readyz", f"{state.operator_url}/metrics"):
            try:
                wait_until(lambda url=url: _reachable(state, url), 60, what=url)
            except TimeoutError:
                pytest.fail(f"{url} never answered\n{state.diagnostics()}")
        yield state
    finally:
        stop_all(state.processes)
        lmcache.stop()
        llm.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        cluster.kubectl("delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={release}", "--wait=false", check=False)


def _kubeconfig_token(path: Path) -> str:
    import yaml

    return str(yaml.safe_load(path.read_text())["users"][0]["user"]["token"])


def _reachable(state: Secured, url: str) -> bool:
    try:
        return state.get(url, None)[0] in (200, 401)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.mark.parametrize("component", ["agent", "operator"])
def test_rbac_decides_who_reads_metrics(secured: Secured, component: str) -> None:
    url = f"{secured.agent_url if component == 'agent' else secured.operator_url}/metrics"
    status, body = secured.get(url, secured.tokens["scraper"])
    assert status == 200, f"{body}\n{secured.diagnostics()}"
    assert "resource_agent_" in body
    status, body = secured.get(url, secured.tokens["stranger"])
    assert status == 403 and "may not get /metrics" in body, body
    assert secured.get(url, None)[0] == 401
    assert secured.get(url, "not-a-token")[0] == 401


def test_report_needs_the_grant_too(secured: Secured) -> None:
    wait_until(lambda: secured.get(f"{secured.agent_url}/report", secured.tokens["scraper"])[0] == 200, 30, what="a report")
    status, body = secured.get(f"{secured.agent_url}/report", secured.tokens["scraper"])
    assert status == 200 and json.loads(body)["nodeName"] == secured.node
    assert secured.get(f"{secured.agent_url}/report", secured.tokens["stranger"])[0] == 403
    assert secured.get(f"{secured.agent_url}/report", None)[0] == 401


def test_probes_stay_open_and_tls_is_verified(secured: Secured) -> None:
    assert secured.get(f"{secured.agent_url}/healthz", None)[0] == 200
    assert secured.get(f"{secured.agent_url}/readyz", None)[0] == 200
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"{secured.agent_url}/healthz", timeout=10, context=ssl.create_default_context())


def _objects(secured: Secured, plural: str) -> list[dict[str, Any]]:
    from kubernetes.client import CustomObjectsApi

    with secured.cluster.api_client() as client:
        items = CustomObjectsApi(client).list_cluster_custom_object(GROUP, VERSION, plural)["items"]
    return [item for item in items if item["spec"]["nodeName"] == secured.node]


def _explained(secured: Secured) -> bool:
    found = _objects(secured, "resourcerecommendations")
    return bool(found) and all(r.get("status", {}).get("insight") for r in found)


def test_no_secret_reaches_logs_events_reports_or_recommendations(secured: Secured) -> None:
    try:  # the LLM explained the findings (the key was used) and the report holds the LMCache instance (/conf read)
        wait_until(lambda: _explained(secured), 90, what="status.insight on the node's recommendations")
        wait_until(lambda: any(r["status"].get("lmcache", {}).get("instances") for r in _objects(secured, "resourcereports")),
                   30, what="the LMCache instance in the report")
    except TimeoutError:
        pytest.fail(secured.diagnostics())
    for token in secured.tokens.values():  # each token once more at each endpoint
        for url in (secured.agent_url, secured.operator_url):
            secured.get(f"{url}/metrics", token)
    texts = {
        "the agent log": secured.processes[0].log_path.read_text(errors="replace"),
        "the operator log": secured.processes[1].log_path.read_text(errors="replace"),
        "the ResourceReport": json.dumps(_objects(secured, "resourcereports")),
        "the ResourceRecommendations": json.dumps(_objects(secured, "resourcerecommendations")),
        "the Events": secured.cluster.kubectl("get", "events", "-A", "-o", "json").stdout,
    }
    for i, request in enumerate(secured.llm.requests):
        headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        texts[f"LLM request {i} (body and headers but Authorization)"] = json.dumps([request.path, headers, request.body])
    if secured.cluster.local is not None:  # the control plane's own logs (etcd, apiserver, ...)
        for log in sorted(secured.cluster.local.log_dir.glob("*.log")):
            texts[f"the control plane's {log.name}"] = log.read_text(errors="replace")
    leaks = [f"{what} in {where}, line {text[:text.index(value)].count(chr(10)) + 1}"
             for where, text in texts.items() for what, value in secured.secrets.items() if value in text]
    assert not leaks, "secrets leaked: " + "; ".join(leaks)
    assert secured.llm.requests and all(
        r.headers.get("authorization") == f"Bearer {LLM_KEY}" for r in secured.llm.requests)  # the key was in play
