"""The kubernetes client's configuration (the operator, kopf and the access reviews): in-cluster or a kubeconfig.

The agent's report writer uses `resource_agent.kubeclient` instead; this module imports kubernetes only when
`load_api_client` runs.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubernetes import client


def load_api_client(kubeconfig: str | None = None, connection_pool_maxsize: int | None = None) -> client.ApiClient:
    """A kubernetes ApiClient for the pod's ServiceAccount in a cluster, else for KUBECONFIG/~/.kube/config.

    `connection_pool_maxsize`: HTTP connections kept per host; at least the number of threads that call at
    once (urllib3 otherwise warns "Connection pool is full" and opens a connection per call).
    """
    from kubernetes import client, config

    configuration = client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]  # kubernetes.config is untyped
    else:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]  # kubernetes.config is untyped
    if connection_pool_maxsize is not None:
        configuration.connection_pool_maxsize = connection_pool_maxsize
    return client.ApiClient(configuration)
