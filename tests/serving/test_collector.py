"""The serving collector: discovery, failure isolation, budgets; and the discovery specs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from resource_agent.api.samples import (
    CollectorState,
    DeviceAssignment,
    GpuDeviceSample,
    GpuProcess,
    GpuSample,
    PodResourcesSample,
    Sample,
    ServingSample,
)
from resource_agent.node_agent.collectors.base import CollectorContext, run_collectors
from resource_agent.node_agent.collectors.serving import ServingCollector
from resource_agent.serving.client import Scraper
from resource_agent.serving.discovery import (
    DiscoveryError,
    endpoint_from_pod,
    endpoints_from_gpu_pods,
    endpoints_from_pods,
    merge,
    parse_url_spec,
)
from resource_agent.serving.metrics import parse_exposition
from resource_agent.serving.sample import instance_samples

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "serving"


def two_serving_samples() -> list[ServingSample]:
    """Two consecutive scrapes of a data-parallel vLLM, as the collector makes them."""
    endpoint = parse_url_spec("vllm=http://10.0.0.5:8000")
    return [
        ServingSample(instances=instance_samples(endpoint, parse_exposition((FIXTURES / name).read_text(), "vllm")))
        for name in ("vllm-0.11-dp2-scrape1.prom", "vllm-0.11-dp2-scrape2.prom")
    ]


def transport() -> httpx.MockTransport:
    bodies = {
        "10.0.0.5": (FIXTURES / "vllm-0.11-dp2-scrape1.prom").read_text(),
        "10.0.0.6": (FIXTURES / "sglang.prom").read_text(),
        "10.0.0.8": "# HELP up x\n# TYPE up gauge\nup 1\n",
    }

    async def handle(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host == "10.0.0.7":
            return httpx.Response(500)
        if host == "10.0.0.9":
            raise httpx.ConnectError("refused", request=request)
        if host == "10.0.0.10":
            import asyncio

            await asyncio.sleep(5)
        return httpx.Response(200, text=bodies.get(host, ""))

    return httpx.MockTransport(handle)


def test_one_broken_endpoint_never_hides_the_others() -> None:
    specs = (
        "vllm=http://10.0.0.5:8000",
        "sglang=http://10.0.0.6:30000",
        "vllm=http://10.0.0.7:8000",  # HTTP 500
        "vllm=http://10.0.0.8:8000",  # not vLLM's metrics
        "vllm=http://10.0.0.9:8000",  # refused
        "vllm=http://10.0.0.10:8000",  # hangs past the budget
        "tgi=http://10.0.0.11:8080",  # unknown engine
    )
    collector = ServingCollector(CollectorContext(serving_urls=specs), scraper=Scraper(timeout=0.3, budget=0.5, transport=transport()))
    try:
        sample = run_collectors([collector], timestamp=1.0)
    finally:
        collector.close()
    assert sample.collectors[0].state is CollectorState.OK
    assert sample.serving is not None
    by_instance: dict[str, list] = {}
    for instance in sample.serving.instances:
        by_instance.setdefault(instance.instance, []).append(instance)
    assert [i.engine_index for i in by_instance["http://10.0.0.5:8000"]] == ["0", "1"]
    assert by_instance["http://10.0.0.6:30000"][0].engine == "sglang" and by_instance["http://10.0.0.6:30000"][0].requests_running == 40
    errors = {name: instances[0].error for name, instances in by_instance.items() if not instances[0].reachable}
    assert "HTTP 500" in errors["http://10.0.0.7:8000"]
    assert "no vllm: series" in errors["http://10.0.0.8:8000"]
    assert "connection failed" in errors["http://10.0.0.9:8000"]
    assert "timed out" in errors["http://10.0.0.10:8000"] or "budget" in errors["http://10.0.0.10:8000"]
    assert "unknown engine" in errors["http://10.0.0.11:8080"]


def test_nothing_configured_is_unavailable() -> None:
    collector = ServingCollector(CollectorContext(), scraper=Scraper(transport=transport()))
    try:
        sample = run_collectors([collector])
    finally:
        collector.close()
    assert sample.collectors[0].state is CollectorState.UNAVAILABLE and sample.serving is None


def pod(name: str, annotations: dict[str, str], ip: str = "10.1.0.4", phase: str = "Running") -> dict:
    return {"metadata": {"name": name, "namespace": "llm", "uid": f"uid-{name}", "annotations": annotations}, "status": {"podIP": ip, "phase": phase}}


def test_pods_are_discovered_and_listed_again_only_after_the_interval() -> None:
    calls = []
    now = [0.0]

    def list_pods(node: str) -> list[dict]:
        calls.append(node)
        return [pod("vllm-0", {"resource.optiinfra.io/serving-engine": "vllm", "resource.optiinfra.io/serving-port": "8000"})]

    collector = ServingCollector(
        CollectorContext(node_name="gpu-1", options={"serving.discover-pods": "true"}),
        scraper=Scraper(transport=transport()), list_pods=list_pods, clock=lambda: now[0],
    )
    try:
        [endpoint] = collector.endpoints()
        assert (endpoint.id, endpoint.url, endpoint.pod_uid) == ("llm/vllm-0", "http://10.1.0.4:8000/metrics", "uid-vllm-0")
        collector.endpoints()
        now[0] = 61.0
        collector.endpoints()
    finally:
        collector.close()
    assert calls == ["gpu-1", "gpu-1"]


def test_url_specs() -> None:
    endpoint = parse_url_spec("sglang=10.0.0.6:30000")
    assert (endpoint.engine, endpoint.url, endpoint.id) == ("sglang", "http://10.0.0.6:30000/metrics", "http://10.0.0.6:30000")
    assert parse_url_spec("vllm=https://h:8443/custom/metrics").url == "https://h:8443/custom/metrics"
    for bad in ("http://h:8000", "vllm=http://h", "vllm=http://user:secret@h:8000", "vllm=ftp://h:21"):
        with pytest.raises(DiscoveryError) as error:
            parse_url_spec(bad)
        assert "secret" not in str(error.value)


def test_pod_annotations() -> None:
    assert endpoint_from_pod(pod("x", {})) is None
    assert endpoint_from_pod(pod("x", {"resource.optiinfra.io/serving-engine": "vllm", "resource.optiinfra.io/serving-port": "8000"}, phase="Pending")) is None
    endpoints, errors = endpoints_from_pods([
        pod("a", {"resource.optiinfra.io/serving-engine": "sglang", "resource.optiinfra.io/serving-port": "30000"}, ip="fd00::5"),
        pod("b", {"resource.optiinfra.io/serving-engine": "tgi", "resource.optiinfra.io/serving-port": "80"}),
        pod("c", {"resource.optiinfra.io/serving-engine": "vllm", "resource.optiinfra.io/serving-port": "http"}),
    ])
    assert [e.url for e in endpoints] == ["http://[fd00::5]:30000/metrics"]
    assert len(errors) == 2
    direct = parse_url_spec("sglang=http://[fd00::5]:30000")
    assert [e.id for e in merge([direct], endpoints)] == ["llm/a"]  # the pod's id wins


def test_sample_round_trips_as_a_recording_line() -> None:
    sample = Sample(timestamp=1.0, serving=two_serving_samples()[0])
    assert Sample.model_validate_json(sample.model_dump_json()) == sample


def gpu_pod(name: str, containers: list[dict], ip: str = "10.0.0.5", annotations: dict[str, str] | None = None) -> dict:
    return {
        "metadata": {"name": name, "namespace": "llm", "uid": f"uid-{name}", "annotations": annotations or {}},
        "spec": {"containers": containers},
        "status": {"podIP": ip, "phase": "Running"},
    }


def test_gpu_pods_without_annotations_are_guessed_from_their_containers() -> None:
    pods = [
        gpu_pod("named", [{"name": "server", "image": "vllm/vllm-openai:v0.11.0"}]),  # no ports declared: the default
        gpu_pod("port", [{"name": "sidecar", "image": "envoy"}, {"name": "main", "image": "registry/llm:1", "ports": [{"containerPort": 30000}]}]),
        gpu_pod("custom", [{"name": "sglang", "image": "lmsysorg/sglang", "ports": [{"containerPort": 9000, "name": "http"}]}]),
        gpu_pod("ambiguous", [{"name": "vllm", "ports": [{"containerPort": 9000}, {"containerPort": 9001}]}]),
        gpu_pod("unknown", [{"name": "trainer", "image": "pytorch", "ports": [{"containerPort": 6006}]}]),
        gpu_pod("annotated", [{"name": "vllm"}], annotations={"resource.optiinfra.io/serving-engine": "vllm", "resource.optiinfra.io/serving-port": "8000"}),
        gpu_pod("no-gpu", [{"name": "vllm"}]),
        {**gpu_pod("pending", [{"name": "vllm"}]), "status": {"phase": "Pending"}},
    ]
    holding = {"uid-named", "llm/port", "uid-custom", "uid-ambiguous", "uid-unknown", "uid-annotated", "uid-pending"}
    found = endpoints_from_gpu_pods(pods, holding)
    assert [(e.id, e.engine, e.url, e.pod_uid, e.guessed) for e in found] == [
        ("llm/named", "vllm", "http://10.0.0.5:8000/metrics", "uid-named", True),
        ("llm/port", "sglang", "http://10.0.0.5:30000/metrics", "uid-port", True),
        ("llm/custom", "sglang", "http://10.0.0.5:9000/metrics", "uid-custom", True),
    ]


def test_the_collector_scrapes_gpu_pods_and_drops_a_wrong_guess() -> None:
    """Pods from the list pod discovery makes anyway; which hold GPUs comes from the sample (cgroups, kubelet)."""
    pods = [
        gpu_pod("vllm-0", [{"name": "vllm", "image": "vllm/vllm-openai"}], ip="10.0.0.5"),
        gpu_pod("not-vllm", [{"name": "api", "ports": [{"containerPort": 8000}]}], ip="10.0.0.8"),  # port 8000, other metrics
        gpu_pod("idle-cpu-pod", [{"name": "vllm"}], ip="10.0.0.6"),  # holds no GPU
    ]
    collector = ServingCollector(
        CollectorContext(node_name="gpu-1", options={"serving.discover-pods": "true"}),
        scraper=Scraper(transport=transport()), list_pods=lambda node: pods,
    )
    sample = Sample(
        timestamp=1.0,
        gpu=GpuSample(devices=[GpuDeviceSample(index=0, uuid="GPU-0", name="H100", processes=[GpuProcess(pid=1, pod_uid="uid-vllm-0")])]),
        pod_resources=PodResourcesSample(devices=[DeviceAssignment(resource_name="nvidia.com/gpu", device_id="GPU-1", namespace="llm", pod="not-vllm", container="api")]),
    )
    try:
        collector.update(sample)
        assert sample.serving is not None
        assert {(i.instance, i.pod_uid, i.reachable) for i in sample.serving.instances} == {("llm/vllm-0", "uid-vllm-0", True)}
        # without GPU holders in the sample nothing is guessed
        assert collector.endpoints() == []
    finally:
        collector.close()
    off = ServingCollector(CollectorContext(node_name="gpu-1", options={"serving.discover-pods": "true", "serving.discover-gpu-pods": "false"}),
                           scraper=Scraper(transport=transport()), list_pods=lambda node: pods)
    try:
        assert off.endpoints({"uid-vllm-0"}) == []
    finally:
        off.close()
