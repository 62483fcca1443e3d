"""Where the API server is and how to authenticate: in-cluster (the pod's ServiceAccount), or a kubeconfig."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeConfigError(ValueError):
    """The in-cluster files or the kubeconfig do not say how to reach the API server."""


@dataclass(frozen=True)
class Connection:
    """The API server's address, whom to trust and how to authenticate (PEM as bytes)."""

    server: str
    ca: bytes | None = None  # None: the system's trusted CAs
    verify: bool = True
    client_cert: bytes | None = None
    client_key: bytes | None = None
    token: str | None = None
    token_file: Path | None = None  # read before every request: projected ServiceAccount tokens rotate

    def bearer_token(self) -> str | None:
        if self.token_file is not None:
            return self.token_file.read_text().strip()
        return self.token


def load_connection(kubeconfig: str | None = None, service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> Connection:
    """The pod's ServiceAccount in a cluster (no `kubeconfig` given), else `kubeconfig`, $KUBECONFIG or ~/.kube/config."""
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster_connection(service_account_dir)
    if kubeconfig is not None:
        return kubeconfig_connection([Path(kubeconfig)])
    paths = [Path(p) for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return kubeconfig_connection(paths or [Path.home() / ".kube" / "config"])


def in_cluster_connection(service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> Connection:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST", ""), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    token_file, ca_file = service_account_dir / "token", service_account_dir / "ca.crt"
    if not host or not token_file.is_file():
        raise KubeConfigError(f"not in a cluster: KUBERNETES_SERVICE_HOST unset or no ServiceAccount token at {token_file}")
    host = f"[{host}]" if ":" in host else host  # IPv6
    return Connection(server=f"https://{host}:{port}", ca=ca_file.read_bytes() if ca_file.is_file() else None, token_file=token_file)


def kubeconfig_connection(paths: list[Path]) -> Connection:
    """The current context of the kubeconfig files, merged as kubectl does (the first file to name an entry wins)."""
    merged: dict[str, dict[str, Any]] = {"clusters": {}, "users": {}, "contexts": {}}
    current, base_of = None, {}
    for path in paths:
        if not path.is_file():
            continue
        document = yaml.safe_load(path.read_text()) or {}
        current = current or document.get("current-context")
        for kind, entries in merged.items():
            for entry in document.get(kind) or []:
                if entry.get("name") not in entries:
                    entries[entry["name"]] = entry.get(kind[:-1]) or {}
                    base_of[kind, entry["name"]] = path.parent
    if not current or current not in merged["contexts"]:
        raise KubeConfigError(f"no current context in kubeconfig {os.pathsep.join(map(str, paths))}")
    context = merged["contexts"][current]
    cluster, user = merged["clusters"].get(context.get("cluster")), merged["users"].get(context.get("user"), {})
    if cluster is None or not cluster.get("server"):
        raise KubeConfigError(f"kubeconfig context {current!r}: no cluster with a server")
    if "exec" in user or "auth-provider" in user:
        raise KubeConfigError(f"kubeconfig context {current!r}: credential plugins (exec, auth-provider) are not supported "
                              "by the agent; use a token, a token file or a client certificate")
    cluster_dir, user_dir = base_of["clusters", context["cluster"]], base_of.get(("users", context.get("user")), Path())
    token_file = user.get("tokenFile")
    return Connection(
        server=cluster["server"].rstrip("/"),
        ca=_pem(cluster, "certificate-authority", cluster_dir),
        verify=not cluster.get("insecure-skip-tls-verify", False),
        client_cert=_pem(user, "client-certificate", user_dir),
        client_key=_pem(user, "client-key", user_dir),
        token=user.get("token"),
        token_file=user_dir / token_file if token_file else None,
    )


def _pem(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    """`key-data` (base64) or the file `key` names (relative to its kubeconfig)."""
    data, path = entry.get(f"{key}-data"), entry.get(key)
    if data:
        return base64.b64decode(str(data))
    return (base / str(path)).read_bytes() if path else None
