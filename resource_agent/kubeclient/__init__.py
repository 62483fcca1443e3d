"""The agent's small Kubernetes client: GET and server-side apply over stdlib http.client (`rest`), configured in-cluster or from
a kubeconfig (`config`).

The agent needs a few calls (read its Node, list the pods on it, apply its ResourceReport and the status
subresource); the kubernetes client would cost it ~35 MiB of generated models and API classes for them. The
operator keeps the kubernetes client and kopf. No import of kubernetes here.
"""
