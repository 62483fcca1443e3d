"""Short, seed-independent names of finding targets, as scenario expectations use them."""

from __future__ import annotations

from resource_agent.api.findings import Target, TargetKind


def describe_target(target: Target) -> str:
    """'node', 'gpu3', 'disk:nvme0n1', 'nic:eth0', 'lmcache:llm/vllm-0' or 'process:<name>'."""
    if target.kind is TargetKind.NODE:
        return "node"
    if target.kind is TargetKind.GPU:
        return f"gpu{target.gpu_index}"
    if target.kind is TargetKind.LMCACHE_INSTANCE:
        return f"lmcache:{target.lmcache_instance or target.name}"
    if target.kind is TargetKind.SERVING_INSTANCE:
        return f"serving:{target.serving_instance or target.name}"
    prefix = {TargetKind.DISK: "disk", TargetKind.NETWORK_INTERFACE: "nic", TargetKind.PROCESS: "process"}[target.kind]
    return f"{prefix}:{target.name}"
