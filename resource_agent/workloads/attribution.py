"""Which pod and container hold each GPU of a sample (pure).

The kubelet's pod-resources API is the source: the device ids it lists are GPU UUIDs (NVIDIA device
plugin), or `<uuid>::<n>` for a time-sliced replica of a GPU; a MIG device (`MIG-…`) maps to its
parent only where the sample lists it, so MIG ids are matched exactly. Where the kubelet socket is
not mounted the sample has no `pod_resources`, and the pods of the processes running on each GPU
(their cgroups, `GpuProcess.pod_uid`) are the fallback: they name the pod UID only, and only while
the pod runs work on the GPU.
"""

from __future__ import annotations

from resource_agent.api.samples import AllocationSource, GpuAllocation, GpuDeviceSample, PodResourcesSample, Sample

REPLICA_SEPARATOR = "::"  # the NVIDIA device plugin's time-slicing replica ids: "<uuid>::<replica>"


def device_uuid(device_id: str) -> str:
    """The GPU UUID of a device plugin id (the replica suffix of time-slicing removed)."""
    return device_id.split(REPLICA_SEPARATOR, 1)[0]


def attribute(sample: Sample) -> None:
    """Fill `allocated_to` of every GPU in the sample (in place)."""
    if sample.gpu is None:
        return
    for device in sample.gpu.devices:
        device.allocated_to = allocations(device, sample.pod_resources)


def allocations(device: GpuDeviceSample, pod_resources: PodResourcesSample | None) -> list[GpuAllocation]:
    """Who holds `device`: the kubelet's assignments when the sample has them, else its processes' pods."""
    pod_uids = sorted({process.pod_uid for process in device.processes if process.pod_uid})
    if pod_resources is not None:
        held: dict[tuple[str, str, str], GpuAllocation] = {}
        for assignment in pod_resources.devices:
            if device_uuid(assignment.device_id) != device.uuid:
                continue
            key = (assignment.namespace, assignment.pod, assignment.container)
            held.setdefault(key, GpuAllocation(
                namespace=assignment.namespace, pod=assignment.pod, container=assignment.container,
                resource_name=assignment.resource_name, source=AllocationSource.KUBELET,
            ))
        result = [held[key] for key in sorted(held)]
        if len(result) == 1 and len(pod_uids) == 1:  # one holder: its processes' pod is that pod
            result[0].pod_uid = pod_uids[0]
        return result
    return [GpuAllocation(pod_uid=uid, source=AllocationSource.CGROUP) for uid in pod_uids]
