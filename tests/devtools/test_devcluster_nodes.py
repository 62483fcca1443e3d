"""Simulated node objects look like GPU feature discovery labelled them."""

from __future__ import annotations

from devtools.devcluster.nodes import NodeSpec, cpu_nodes, gpu_nodes, node_body


def test_gpu_node_has_gpu_labels_capacity_and_kwok_annotation() -> None:
    body = node_body(NodeSpec("gpu-node-a", gpu_product="NVIDIA-A100-SXM4-80GB", gpus=4))
    labels = body["metadata"]["labels"]
    assert body["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"}
    assert labels["nvidia.com/gpu.present"] == "true"
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert labels["nvidia.com/gpu.count"] == "4"
    assert labels["type"] == "kwok"
    assert labels["kubernetes.io/hostname"] == "gpu-node-a"
    assert body["status"]["capacity"]["nvidia.com/gpu"] == "4"
    assert body["status"]["allocatable"] == body["status"]["capacity"]
    assert body["spec"]["taints"] == []


def test_gpu_taint_is_optional() -> None:
    (tainted,) = gpu_nodes(1, taint=True)
    assert node_body(tainted)["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]


def test_cpu_node_has_no_gpu_anything() -> None:
    (spec,) = cpu_nodes(1)
    body = node_body(spec)
    assert not spec.is_gpu
    assert not any(key.startswith("nvidia.com/") for key in body["metadata"]["labels"])
    assert "nvidia.com/gpu" not in body["status"]["capacity"]


def test_helpers_name_nodes_and_extra_labels_win() -> None:
    assert [s.name for s in gpu_nodes(2)] == ["gpu-node-0", "gpu-node-1"]
    assert [s.name for s in cpu_nodes(2, prefix="cpu")] == ["cpu-0", "cpu-1"]
    body = node_body(NodeSpec("n", labels={"type": "custom", "zone": "a"}))
    assert body["metadata"]["labels"]["type"] == "custom"
    assert body["metadata"]["labels"]["zone"] == "a"
