"""Act as a pod: ServiceAccount tokens bound to a pod, and clients that use them.

A token from :func:`pod_bound_token` is what the kubelet mounts into a pod, so
a test that uses it exercises RBAC (and the node claims in the token) exactly
as the agent on that node would.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


def wait_for_node_name(api_client: ApiClient, namespace: str, pod_name: str, timeout: float = 60.0) -> Any:
    """The pod, once the scheduler has bound it to a node (``spec.nodeName`` set)."""
    from kubernetes.client import CoreV1Api

    core = CoreV1Api(api_client)
    deadline = time.monotonic() + timeout
    while True:
        pod = core.read_namespaced_pod(pod_name, namespace)
        if pod.spec is not None and pod.spec.node_name:
            return pod
        if time.monotonic() > deadline:
            raise TimeoutError(f"pod {namespace}/{pod_name} not scheduled after {timeout:.0f}s")
        time.sleep(0.2)


def pod_bound_token(
    api_client: ApiClient,
    namespace: str,
    service_account: str,
    pod_name: str,
    *,
    audiences: list[str] | None = None,
    expiration_seconds: int = 3600,
    timeout: float = 60.0,
) -> str:
    """A TokenRequest token for ``service_account`` bound to the pod ``pod_name``.

    Waits for the pod to be scheduled first: only then does the token carry the
    node claims (``authentication.kubernetes.io/node-name`` in the user's extra info).
    """
    from kubernetes.client import CoreV1Api

    pod = wait_for_node_name(api_client, namespace, pod_name, timeout)
    body: Any = {  # the client takes plain dicts as well as its models
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": audiences or [],
            "expirationSeconds": expiration_seconds,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod_name, "uid": pod.metadata.uid},
        },
    }
    response = CoreV1Api(api_client).create_namespaced_service_account_token(service_account, namespace, body)
    if response.status is None or not response.status.token:
        raise RuntimeError(f"TokenRequest for {namespace}/{service_account} returned no token")
    return response.status.token


def token_api_client(admin: ApiClient, token: str) -> ApiClient:
    """An ApiClient for the same server as ``admin`` that authenticates with ``token`` only."""
    from kubernetes.client import ApiClient, Configuration

    source = admin.configuration
    configuration = Configuration(host=source.host, api_key={"authorization": f"Bearer {token}"})
    configuration.ssl_ca_cert = source.ssl_ca_cert
    configuration.verify_ssl = source.verify_ssl
    return ApiClient(configuration)


def token_kubeconfig(admin_kubeconfig: Path, token: str, path: Path, user: str = "pod-token") -> Path:
    """Write a kubeconfig at ``path`` for the admin kubeconfig's cluster, authenticating with ``token``."""
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    context_name = admin["current-context"]
    context = next(c["context"] for c in admin["contexts"] if c["name"] == context_name)
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
        "current-context": user,
    }
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
