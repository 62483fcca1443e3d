"""Secure endpoints on the real API server: TLS, TokenReview and SubjectAccessReview (kube-rbac-proxy's way).

`resource-agent agent` and `resource-agent operator` run with `--endpoint-auth=kubernetes` and a
self-signed certificate, each with its own ServiceAccount and the RBAC the chart renders with
`endpointSecurity.auth=kubernetes` (tokenreviews/subjectaccessreviews create). A scraper whose
ServiceAccount the chart's metrics-reader ClusterRole binds gets 200; another ServiceAccount 403;
no token 401; the probes' endpoints stay open.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devtools.demo.stack import ManagedProcess, cli, free_port, install_crds, stop_all, wait_until
from e2e.providers import ClusterHandle
from e2e.tokens import token_kubeconfig
from tests.chart.chart_render import helm_binary, template

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
def secured(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    from devtools.devcluster.pki import PKIError, issue, make_ca

    helm = helm_binary()
    if helm is None:
        pytest.skip("no helm binary: run scripts/build-controlplane")
    work = tmp_path_factory.mktemp("endpoint-auth")
    try:
        ca = make_ca(work, "endpoint-auth-test-ca")
        server = issue(ca, work, "server", "resource-agent", dns_names=("localhost",), ip_addresses=("127.0.0.1",), server=True)
    except PKIError as exc:
        pytest.skip(str(exc))
    suffix = uuid.uuid4().hex[:6]
    namespace, release = f"auth-{suffix}", f"auth{suffix}"
    install_crds(cluster.kubectl)
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
    secure = ["--endpoint-auth=kubernetes", f"--tls-cert-file={server.cert}", f"--tls-key-file={server.key}"]
    agent_port, metrics_port, health_port = free_port(), free_port(), free_port()
    agent = ManagedProcess("agent", [
        *cli(), "agent", "--node-name=auth-node", "--collector.scenario", "--scenario=thermal-throttle",
        "--no-collector.system", "--no-collector.pressure", "--no-collector.gpu", "--no-collector.lmcache",
        "--no-collector.podresources", "--interval=1s", f"--listen=127.0.0.1:{agent_port}",
        f"--kubeconfig={kubeconfigs['agent']}", *secure,
    ], work / "agent.log")
    operator = ManagedProcess("operator", [
        *cli(), "operator", f"--metrics-listen=127.0.0.1:{metrics_port}", f"--health-listen=127.0.0.1:{health_port}",
        "--no-workloads", *secure,
    ], work / "operator.log", env={"KUBECONFIG": str(kubeconfigs["operator"])})
    state = Secured(
        agent_url=f"https://127.0.0.1:{agent_port}",
        operator_url=f"https://127.0.0.1:{metrics_port}",
        tokens={name: _token(cluster, namespace, name) for name in ("scraper", "stranger")},
        context=ssl.create_default_context(cafile=str(ca.cert)),
        processes=[agent.start(), operator.start()],
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
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        cluster.kubectl("delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={release}", "--wait=false", check=False)


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
    assert status == 200 and json.loads(body)["nodeName"] == "auth-node"
    assert secured.get(f"{secured.agent_url}/report", secured.tokens["stranger"])[0] == 403
    assert secured.get(f"{secured.agent_url}/report", None)[0] == 401


def test_probes_stay_open_and_tls_is_verified(secured: Secured) -> None:
    assert secured.get(f"{secured.agent_url}/healthz", None)[0] == 200
    assert secured.get(f"{secured.agent_url}/readyz", None)[0] == 200
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"{secured.agent_url}/healthz", timeout=10, context=ssl.create_default_context())
