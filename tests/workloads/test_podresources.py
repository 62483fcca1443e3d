"""The pod-resources client and collector against a real gRPC server serving the kubelet's proto on a unix socket."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from resource_agent.api.samples import AllocationSource, GpuDeviceSample, GpuProcess, GpuSample, Sample
from resource_agent.node_agent.collectors.base import CollectorContext, CollectorUnavailable, run_collectors
from resource_agent.node_agent.collectors.podresources import SOCKET_OPTION, PodResourcesCollector, _factory
from resource_agent.workloads.attribution import attribute
from resource_agent.workloads.kubelet import PodResourcesClient
from resource_agent.workloads.podresources import api_pb2, api_pb2_grpc

UUID_A = "GPU-11111111-2222-3333-4444-555555555555"
UUID_B = "GPU-66666666-7777-8888-9999-000000000000"
UUID_C = "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def _pod(namespace: str, name: str, containers: list[tuple[str, str, list[str]]]) -> api_pb2.PodResources:
    return api_pb2.PodResources(
        name=name, namespace=namespace,
        containers=[
            api_pb2.ContainerResources(name=container, devices=[api_pb2.ContainerDevices(resource_name=resource, device_ids=ids)])
            for container, resource, ids in containers
        ],
    )


class FakeKubelet(api_pb2_grpc.PodResourcesListerServicer):
    def __init__(self) -> None:
        self.pods = [
            _pod("llm", "vllm-7d9f-abcde", [("vllm", "nvidia.com/gpu", [UUID_A])]),
            # time-slicing replicas of one GPU, two pods
            _pod("batch", "worker-0", [("main", "nvidia.com/gpu", [f"{UUID_B}::0"])]),
            _pod("batch", "worker-1", [("main", "nvidia.com/gpu", [f"{UUID_B}::3"])]),
            # another device plugin's resource: not a GPU
            _pod("net", "sriov", [("app", "intel.com/sriov", ["0000:3b:00.1"])]),
            _pod("idle", "no-devices", []),
        ]
        self.calls = 0

    def List(self, request: api_pb2.ListPodResourcesRequest, context: grpc.ServicerContext) -> api_pb2.ListPodResourcesResponse:
        self.calls += 1
        return api_pb2.ListPodResourcesResponse(pod_resources=self.pods)


@pytest.fixture
def kubelet(tmp_path: Path) -> Iterator[tuple[Path, FakeKubelet]]:
    socket_path = tmp_path / "pod-resources" / "kubelet.sock"
    socket_path.parent.mkdir()
    servicer = FakeKubelet()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_pb2_grpc.add_PodResourcesListerServicer_to_server(servicer, server)
    server.add_insecure_port(f"unix://{socket_path}")
    server.start()
    yield socket_path, servicer
    server.stop(grace=None)


def _gpu(uuid: str, index: int, processes: list[GpuProcess] | None = None) -> GpuDeviceSample:
    return GpuDeviceSample(index=index, uuid=uuid, name="NVIDIA H100 80GB HBM3", processes=processes or [])


def test_client_lists_gpu_assignments_only(kubelet: tuple[Path, FakeKubelet]) -> None:
    socket_path, servicer = kubelet
    client = PodResourcesClient(socket_path)
    try:
        listed = client.list_devices()
    finally:
        client.close()
    assert servicer.calls == 1
    assert [(d.namespace, d.pod, d.container, d.device_id) for d in listed.devices] == [
        ("llm", "vllm-7d9f-abcde", "vllm", UUID_A),
        ("batch", "worker-0", "main", f"{UUID_B}::0"),
        ("batch", "worker-1", "main", f"{UUID_B}::3"),
    ]
    assert {d.resource_name for d in listed.devices} == {"nvidia.com/gpu"}


def test_collector_and_attribution_map_device_ids_to_the_sample_gpus(kubelet: tuple[Path, FakeKubelet]) -> None:
    socket_path, _ = kubelet
    collector = _factory(CollectorContext(options={SOCKET_OPTION: str(socket_path)}))
    pod_uid = "0b7a4c2e-1d2f-4a3b-9c8d-7e6f5a4b3c2d"

    class FakeGpu(PodResourcesCollector):
        name = "gpu"

        def update(self, sample: Sample) -> None:
            sample.gpu = GpuSample(devices=[
                _gpu(UUID_A, 0, [GpuProcess(pid=42, pod_uid=pod_uid)]), _gpu(UUID_B, 1), _gpu(UUID_C, 2),
            ])

    try:
        sample = run_collectors([FakeGpu(Path("/nonexistent")), collector])
    finally:
        collector.close()
    attribute(sample)
    assert [status.state.value for status in sample.collectors] == ["ok", "ok"]
    assert sample.gpu is not None
    first, second, third = sample.gpu.devices
    assert [(a.namespace, a.pod, a.container, a.pod_uid, a.source) for a in first.allocated_to] == [
        ("llm", "vllm-7d9f-abcde", "vllm", pod_uid, AllocationSource.KUBELET)
    ]
    assert [(a.namespace, a.pod) for a in second.allocated_to] == [("batch", "worker-0"), ("batch", "worker-1")]
    assert third.allocated_to == []  # not allocated: free


def test_no_socket_is_unavailable_not_a_failure(tmp_path: Path) -> None:
    collector = PodResourcesCollector(tmp_path / "missing.sock")
    with pytest.raises(CollectorUnavailable, match="no kubelet pod-resources socket"):
        collector.update(Sample(timestamp=0.0))


def test_a_dead_kubelet_is_a_failure(tmp_path: Path) -> None:
    socket_path = tmp_path / "kubelet.sock"
    socket_path.touch()  # there, but nothing serves it
    collector = PodResourcesCollector(socket_path, timeout_seconds=0.5)
    try:
        sample = run_collectors([collector])
    finally:
        collector.close()
    assert sample.collectors[0].state.value == "failed"
    assert sample.pod_resources is None


def test_without_the_kubelet_the_process_cgroups_attribute_the_gpu() -> None:
    uid = "0b7a4c2e-1d2f-4a3b-9c8d-7e6f5a4b3c2d"
    sample = Sample(timestamp=0.0, gpu=GpuSample(devices=[
        _gpu(UUID_A, 0, [GpuProcess(pid=1, pod_uid=uid), GpuProcess(pid=2, pod_uid=uid), GpuProcess(pid=3)]),
        _gpu(UUID_B, 1),
    ]))
    attribute(sample)
    assert sample.gpu is not None
    assert [(a.pod_uid, a.source) for a in sample.gpu.devices[0].allocated_to] == [(uid, AllocationSource.CGROUP)]
    assert sample.gpu.devices[1].allocated_to == []


def test_the_window_summary_carries_the_latest_allocation() -> None:
    from resource_agent.node_agent.gpu_summary import GpuReducer

    sample = Sample(timestamp=0.0, gpu=GpuSample(devices=[_gpu(UUID_A, 0, [GpuProcess(pid=1, pod_uid="u-1")])]))
    attribute(sample)
    reducer = GpuReducer()
    reducer.add(sample.gpu)
    (summary,) = reducer.summaries()
    assert [(a.pod_uid, a.source) for a in summary.allocated_to] == [("u-1", AllocationSource.CGROUP)]
