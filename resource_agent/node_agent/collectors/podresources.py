"""GPU -> pod attribution from the kubelet pod-resources API (`v1.PodResourcesLister/List`).

The socket is /var/lib/kubelet/pod-resources/kubelet.sock on the host (option
`podresources.socket` to change it; the chart mounts the directory read-only). No socket is
"unavailable", not a failure: the GPUs' processes' cgroups are the fallback
(`resource_agent.workloads.attribution`, run by the sampler after every collector).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from resource_agent.api.samples import Sample
from resource_agent.node_agent.collectors.base import Collector, CollectorContext, CollectorUnavailable, register_collector

if TYPE_CHECKING:
    from resource_agent.workloads.kubelet import PodResourcesClient

DEFAULT_SOCKET = Path("/var/lib/kubelet/pod-resources/kubelet.sock")
SOCKET_OPTION = "podresources.socket"
TIMEOUT_OPTION = "podresources.timeout-seconds"


class PodResourcesCollector(Collector):
    name = "podresources"

    def __init__(self, socket_path: Path, timeout_seconds: float = 5.0) -> None:
        self.socket_path = socket_path
        self.timeout_seconds = timeout_seconds
        self._client: PodResourcesClient | None = None

    def update(self, sample: Sample) -> None:
        if not self.socket_path.exists():
            raise CollectorUnavailable(f"no kubelet pod-resources socket at {self.socket_path}; GPUs are attributed from process cgroups")
        if not os.access(self.socket_path, os.W_OK):
            raise CollectorUnavailable(
                f"no permission to connect to {self.socket_path} (the kubelet creates it for root); GPUs are attributed from process cgroups"
            )
        if self._client is None:
            from resource_agent.workloads.kubelet import PodResourcesClient  # grpc only where the socket is

            self._client = PodResourcesClient(self.socket_path, self.timeout_seconds)
        sample.pod_resources = self._client.list_devices()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@register_collector("podresources")
def _factory(context: CollectorContext) -> Collector:
    socket_path = Path(context.options.get(SOCKET_OPTION, str(DEFAULT_SOCKET)))
    return PodResourcesCollector(socket_path, float(context.options.get(TIMEOUT_OPTION, "5")))
