"""Kubernetes client configuration: in-cluster, or a kubeconfig file."""

from __future__ import annotations

import os

from kubernetes import client, config


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """An ApiClient for the pod's ServiceAccount in a cluster, else for KUBECONFIG/~/.kube/config."""
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]  # kubernetes.config is untyped
        return client.ApiClient(configuration)
    api_client: client.ApiClient = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]  # kubernetes.config is untyped
    return api_client
