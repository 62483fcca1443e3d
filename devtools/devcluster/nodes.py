"""Simulated nodes: kwok-managed Node objects that look like GPU (or CPU-only) hosts.

The labels are the ones NVIDIA's GPU feature discovery sets, so selectors and
tolerations written for real GPU nodes work unchanged:

    add_nodes(api_client, [NodeSpec("gpu-node-a"), NodeSpec("gpu-node-b", gpu_product="NVIDIA-A100-SXM4-80GB")])
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
DEFAULT_GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"


@dataclass(frozen=True)
class NodeSpec:
    """One simulated node; ``gpus=0`` makes a CPU-only node."""

    name: str
    gpus: int = 8
    gpu_product: str = DEFAULT_GPU_PRODUCT
    cpu: str = "96"
    memory: str = "1536Gi"
    pods: str = "110"
    gpu_taint: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    gfd_labels: bool = True  # GPU feature discovery's nvidia.com/gpu.* labels (False: only capacity and `labels`)

    @property
    def is_gpu(self) -> bool:
        return self.gpus > 0


def gpu_nodes(
    count: int, prefix: str = "gpu-node", *, product: str = DEFAULT_GPU_PRODUCT, taint: bool = False
) -> list[NodeSpec]:
    """``count`` GPU nodes named ``<prefix>-0`` ... with 8 GPUs of ``product`` each."""
    return [NodeSpec(f"{prefix}-{i}", gpu_product=product, gpu_taint=taint) for i in range(count)]


def cpu_nodes(count: int, prefix: str = "cpu-node") -> list[NodeSpec]:
    """``count`` CPU-only nodes named ``<prefix>-0`` ..."""
    return [NodeSpec(f"{prefix}-{i}", gpus=0, cpu="32", memory="128Gi") for i in range(count)]


def node_body(spec: NodeSpec) -> dict[str, Any]:
    """The Node object for ``spec`` (status included: kwok keeps the capacity it is given)."""
    labels = {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
    }
    capacity = {"cpu": spec.cpu, "memory": spec.memory, "pods": spec.pods}
    if spec.is_gpu and spec.gfd_labels:
        labels |= {
            GPU_PRESENT_LABEL: "true",
            "nvidia.com/gpu.product": spec.gpu_product,
            "nvidia.com/gpu.count": str(spec.gpus),
        }
    if spec.is_gpu:
        capacity[GPU_RESOURCE] = str(spec.gpus)
    labels |= dict(spec.labels)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels, "annotations": dict(KWOK_ANNOTATION)},
        "spec": {"taints": [dict(GPU_TAINT)] if spec.is_gpu and spec.gpu_taint else []},
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }


def _ready(node: Any) -> bool:
    conditions = node.status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def add_nodes(api_client: ApiClient, specs: Iterable[NodeSpec], timeout: float = 60.0) -> list[str]:
    """Create the nodes (existing ones are left as they are) and wait until kwok reports them Ready."""
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    core = CoreV1Api(api_client)
    names = []
    for spec in specs:
        try:
            body: Any = node_body(spec)  # the client takes plain dicts as well as its models
            core.create_node(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
        names.append(spec.name)
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        pending = {name for name in pending if not _ready(core.read_node(name))}
        if not pending:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"nodes not Ready after {timeout:.0f}s (is kwok running?): {sorted(pending)}")
        time.sleep(0.2)
    return names
