"""The openssl-made PKI: certificates chain to the CA and work in a real TLS handshake."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from devtools.devcluster import pki


@pytest.fixture
def ca(tmp_path: Path) -> pki.KeyPair:
    return pki.make_ca(tmp_path)


def _text(cert: Path) -> str:
    return subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-text"], check=True, capture_output=True, text=True
    ).stdout


def test_issued_certificates_verify_against_the_ca(ca: pki.KeyPair, tmp_path: Path) -> None:
    server = pki.issue(ca, tmp_path, "server", "kube-apiserver", dns_names=("kubernetes",),
                       ip_addresses=("127.0.0.1",), server=True)  # fmt: skip
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca.cert), str(server.cert)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = _text(server.cert)
    assert "DNS:kubernetes" in text and "IP Address:127.0.0.1" in text
    assert "TLS Web Server Authentication" in text
    assert "CA:TRUE" in _text(ca.cert)
    assert oct(server.key.stat().st_mode & 0o777) == "0o600"


def test_client_certificate_carries_user_and_groups(ca: pki.KeyPair, tmp_path: Path) -> None:
    admin = pki.issue(ca, tmp_path, "admin", "kubernetes-admin", organizations=("system:masters",), client=True)
    text = _text(admin.cert)
    assert "O = system:masters, CN = kubernetes-admin" in text
    assert "TLS Web Client Authentication" in text


def test_mutual_tls_handshake(ca: pki.KeyPair, tmp_path: Path) -> None:
    server = pki.issue(ca, tmp_path, "server", "server", dns_names=("localhost",), server=True)
    client = pki.issue(ca, tmp_path, "client", "someone", organizations=("team",), client=True)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca.cert))
    server_ctx.load_cert_chain(server.cert, server.key)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(cafile=str(ca.cert))
    client_ctx.load_cert_chain(client.cert, client.key)

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: dict[str, object] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            seen["peer"] = tls.getpeercert()
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve)
    thread.start()
    with socket.create_connection(("127.0.0.1", port)) as raw, client_ctx.wrap_socket(
        raw, server_hostname="localhost"
    ) as tls:
        assert tls.recv(2) == b"ok"
    thread.join(5)
    listener.close()
    subject = dict(item[0] for item in seen["peer"]["subject"])  # type: ignore[index]
    assert subject == {"organizationName": "team", "commonName": "someone"}


def test_a_certificate_needs_a_purpose(ca: pki.KeyPair, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        pki.issue(ca, tmp_path, "nothing", "nobody")


def test_service_account_public_key(tmp_path: Path) -> None:
    key = pki.new_key(tmp_path / "sa.key")
    pub = pki.public_key(key, tmp_path / "sa.pub")
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in pub.read_text()
