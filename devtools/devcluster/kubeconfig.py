"""Self-contained kubeconfig files (certificates embedded, one context)."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig(
    server: str,
    ca_cert: Path,
    *,
    user: str,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    token: str | None = None,
    cluster: str = "resource-agent-dev",
) -> dict[str, object]:
    """A kubeconfig document for ``user`` authenticating with a client certificate or a bearer token."""
    credentials: dict[str, str] = {}
    if client_cert is not None and client_key is not None:
        credentials = {"client-certificate-data": _b64(client_cert), "client-key-data": _b64(client_key)}
    elif token is not None:
        credentials = {"token": token}
    else:
        raise ValueError("a kubeconfig needs a client certificate and key, or a token")
    context = f"{user}@{cluster}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
        "preferences": {},
    }


def write_kubeconfig(path: Path, document: dict[str, object]) -> Path:
    """Write ``document`` to ``path``, readable only by its owner (it holds credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
