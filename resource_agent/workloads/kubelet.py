"""The kubelet pod-resources API (gRPC `v1.PodResourcesLister/List` on a unix socket), as dcgm-exporter reads it.

The kubelet lists, per pod and container on its node, the device ids each device plugin assigned.
For the NVIDIA device plugin the ids are GPU UUIDs (`GPU-…`), MIG UUIDs (`MIG-…`) with MIG, and
`<uuid>::<n>` per replica with time-slicing. The socket is
/var/lib/kubelet/pod-resources/kubelet.sock (`node_agent.collectors.podresources.DEFAULT_SOCKET`); the chart mounts
its directory read-only.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from resource_agent.api.samples import DeviceAssignment, PodResourcesSample
from resource_agent.workloads.podresources import api_pb2, api_pb2_grpc

GPU_RESOURCE_PREFIXES = ("nvidia.com/",)  # nvidia.com/gpu, and nvidia.com/mig-<profile> with the mixed MIG strategy
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # dcgm-exporter's limit: a node with many pods answers with a large list


class PodResourcesClient:
    """A channel to the kubelet's pod-resources socket; `list_devices` is one List call."""

    def __init__(self, socket_path: Path, timeout_seconds: float = 5.0) -> None:
        self.socket_path = socket_path
        self.timeout_seconds = timeout_seconds
        self._channel = grpc.insecure_channel(
            f"unix://{socket_path}", options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
        )
        self._stub = api_pb2_grpc.PodResourcesListerStub(self._channel)  # type: ignore[no-untyped-call]

    def list_devices(self, resource_prefixes: tuple[str, ...] = GPU_RESOURCE_PREFIXES) -> PodResourcesSample:
        """The devices whose resource name starts with one of `resource_prefixes`, per container."""
        response = self._stub.List(api_pb2.ListPodResourcesRequest(), timeout=self.timeout_seconds)
        return assignments(response, resource_prefixes)

    def close(self) -> None:
        self._channel.close()


def assignments(response: api_pb2.ListPodResourcesResponse, resource_prefixes: tuple[str, ...]) -> PodResourcesSample:
    devices = [
        DeviceAssignment(
            resource_name=device.resource_name, device_id=device_id,
            namespace=pod.namespace, pod=pod.name, container=container.name,
        )
        for pod in response.pod_resources
        for container in pod.containers
        for device in container.devices
        if device.resource_name.startswith(resource_prefixes)
        for device_id in device.device_ids
    ]
    return PodResourcesSample(devices=devices)
