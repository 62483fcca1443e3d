"""The agent's small client (`kubeclient.rest`) and its configuration (`kubeclient.config`) against a real API server."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from resource_agent.kubeclient.config import Connection, KubeConfigError, in_cluster_connection, kubeconfig_connection, load_connection
from resource_agent.kubeclient.rest import ApiError, ApiUnreachable, KubeClient, shared_client


def _token(api: client.ApiClient, namespace: str) -> str:
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))
    return str(client.CoreV1Api(api).create_namespaced_service_account_token("default", namespace, request).status.token)


def _admin(cluster: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    return document


def test_kubeconfig_client_certificate_as_data_and_as_files(cluster: Any, tmp_path: Path) -> None:
    document = _admin(cluster)
    with KubeClient(kubeconfig_connection([Path(cluster.kubeconfig)])) as api:
        assert api.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"
    # The same credentials as files named relative to the kubeconfig, and the kubeconfig found through $KUBECONFIG.
    user = document["users"][0]["user"]
    cluster_entry = document["clusters"][0]["cluster"]
    if "client-certificate-data" not in user or "certificate-authority-data" not in cluster_entry:
        pytest.skip("this cluster's kubeconfig has no inline client certificate and CA")
    (tmp_path / "pki").mkdir()
    for key, name in (("client-certificate", "admin.crt"), ("client-key", "admin.key")):
        (tmp_path / "pki" / name).write_bytes(base64.b64decode(user.pop(f"{key}-data")))
        user[key] = f"pki/{name}"
    (tmp_path / "pki" / "ca.crt").write_bytes(base64.b64decode(cluster_entry.pop("certificate-authority-data")))
    cluster_entry["certificate-authority"] = "pki/ca.crt"
    (tmp_path / "config").write_text(yaml.safe_dump(document))
    with KubeClient(kubeconfig_connection([tmp_path / "missing", tmp_path / "config"])) as api:
        assert api.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"


def test_in_cluster_token_is_reread_when_it_rotates(cluster: Any, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = _admin(cluster)["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    admin = kubeconfig_connection([Path(cluster.kubeconfig)])
    assert admin.ca is not None
    (tmp_path / "ca.crt").write_bytes(admin.ca)
    (tmp_path / "token").write_text("not-a-token")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    with cluster.api_client() as admin_api:
        token = _token(admin_api, namespace)
    with KubeClient(load_connection(service_account_dir=tmp_path)) as api:
        with pytest.raises(ApiError) as refused:
            api.get("/api/v1/nodes/none")
        assert refused.value.status == 401
        (tmp_path / "token").write_text(token + "\n")  # the kubelet rotated the projected token
        with pytest.raises(ApiError) as forbidden:
            api.get("/api/v1/nodes/none")
    # Authenticated now, as the ServiceAccount; RBAC answers, with the API server's message.
    assert forbidden.value.status == 403
    assert f"system:serviceaccount:{namespace}:default" in forbidden.value.message
    assert str(forbidden.value).startswith("HTTP 403 Forbidden: ")


def test_apply_is_server_side_apply_under_the_field_manager(cluster: Any, namespace: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied", "namespace": namespace}, "data": {"a": "1"}}
    with KubeClient(load_connection(str(cluster.kubeconfig))) as api:
        created = api.apply(f"/api/v1/namespaces/{namespace}/configmaps/applied", body, "rest-test")
        assert created["data"] == {"a": "1"}
        assert [entry["manager"] for entry in created["metadata"]["managedFields"]] == ["rest-test"]
        with pytest.raises(ApiError) as missing:
            api.get(f"/api/v1/namespaces/{namespace}/configmaps/absent")
    assert missing.value.status == 404 and "not found" in missing.value.message


def test_in_cluster_address_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    with pytest.raises(KubeConfigError, match="not in a cluster"):
        in_cluster_connection(tmp_path)
    (tmp_path / "token").write_text("t1")
    connection = load_connection(service_account_dir=tmp_path)
    assert (connection.server, connection.ca, connection.bearer_token()) == ("https://[fd00::1]:443", None, "t1")


def test_kubeconfig_errors_say_what_is_missing(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(yaml.safe_dump({"clusters": [{"name": "c", "cluster": {"server": "https://k:6443"}}]}))
    with pytest.raises(KubeConfigError, match="no current context"):
        kubeconfig_connection([config])
    config.write_text(yaml.safe_dump({
        "current-context": "x",
        "clusters": [{"name": "c", "cluster": {"server": "https://k:6443/", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"tokenFile": "token"}}, {"name": "e", "user": {"exec": {"command": "aws"}}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}, {"name": "y", "context": {"cluster": "c", "user": "e"}}],
    }))
    (tmp_path / "token").write_text("t1\n")
    connection = kubeconfig_connection([config])
    assert (connection.server, connection.verify, connection.bearer_token()) == ("https://k:6443", False, "t1")
    document = yaml.safe_load(config.read_text()) | {"current-context": "y"}
    config.write_text(yaml.safe_dump(document))
    with pytest.raises(KubeConfigError, match="credential plugins"):
        kubeconfig_connection([config])


def test_shared_client_is_kept_until_the_configuration_changes() -> None:
    first = shared_client(Connection("https://127.0.0.1:1", verify=False), 3.0)
    assert shared_client(Connection("https://127.0.0.1:1", verify=False), 3.0) is first
    second = shared_client(Connection("https://127.0.0.1:1", verify=False, token="rotated"), 3.0)
    assert second is not first
    assert first.closed and not second.closed


class _Relay:
    """A loopback TCP relay to the API server that can cut every open connection, as a load balancer or NAT that
    forgets an idle one does."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream, self.accepted = upstream, 0
        self._open: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(self.upstream)
            self._open += [downstream, upstream]
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        for sock in self._open:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # the peer sees the connection end; the pumps' recv returns
            sock.close()
        self._open.clear()

    def close(self) -> None:
        self.cut()
        self._listener.close()


@contextmanager
def _relay_to(cluster: Any) -> Iterator[tuple[_Relay, Connection]]:
    admin = kubeconfig_connection([Path(cluster.kubeconfig)])
    host, port = admin.server.removeprefix("https://").rsplit(":", 1)
    relay = _Relay((host, int(port)))
    try:
        yield relay, Connection(f"https://{host}:{relay.port}", admin.ca, admin.verify, admin.client_cert, admin.client_key, admin.token)
    finally:
        relay.close()


def test_one_connection_is_kept_alive_and_a_cut_one_is_replaced(cluster: Any) -> None:
    with _relay_to(cluster) as (relay, connection), KubeClient(connection, timeout=10) as api:
        for _ in range(3):
            assert api.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"
        assert relay.accepted == 1  # keep-alive: one TLS handshake for all three
        relay.cut()
        assert api.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"  # retried on a new connection
        assert relay.accepted == 2


def test_an_api_server_that_is_not_there_is_a_clear_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with KubeClient(Connection(f"https://127.0.0.1:{port}", verify=False), timeout=2) as api, pytest.raises(ApiUnreachable) as refused:
        api.get("/api/v1/nodes")
    assert str(refused.value).startswith(f"https://127.0.0.1:{port}: ConnectionRefusedError")
    assert isinstance(refused.value, OSError)
    with pytest.raises(ApiUnreachable, match="closed"):
        api.get("/api/v1/nodes")
    with pytest.raises(ValueError, match="not an http"):
        KubeClient(Connection("unix:///var/run/k8s.sock"))
