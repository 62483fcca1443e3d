"""Fixtures: the local chat-completions server, findings with sensitive names, and services on both SDKs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from devtools.llm_server import FakeLLMServer
from resource_agent.api.findings import Action, ActionType, Category, Evidence, Finding, Sensitive, Severity, Target, TargetKind
from resource_agent.api.samples import GpuProcess
from resource_agent.api.summary import (
    CpuSummary,
    GpuSection,
    GpuSummary,
    LMCacheInstanceSummary,
    LMCacheSection,
    MemorySummary,
    NodeInventory,
    NodeSummary,
    PressureSummary,
    Stat,
    Window,
)
from resource_agent.llm.metrics import LLMMetrics
from resource_agent.llm.providers import build_provider
from resource_agent.llm.service import InsightService
from resource_agent.llm.settings import LLMSettings, ProviderKind

NODE = "gpu-node-a17.prod.example"
POD = "vllm-llama3-70b-7f9c4d-x2k8p"
NAMESPACE = "inference-team"
POD_UID = "5b1c7e0a-93d2-4f6b-8a41-2c9e7d3f1a66"
GPU_UUID = "GPU-3f2a1b4c-1234-5678-9abc-def012345678"
NODE_IP = "10.42.7.19"


def memory_finding(pod: str = POD, observed: float = 97.5, severity: Severity = Severity.WARNING) -> Finding:
    return Finding(
        rule="gpu-memory-pressure",
        category=Category.GPU,
        severity=severity,
        node_name=NODE,
        target=Target(kind=TargetKind.PROCESS, name=pod, namespace=NAMESPACE, gpu_index=0, gpu_uuid=GPU_UUID, pod_uid=POD_UID),
        summary=f"Pod {NAMESPACE}/{pod} on {NODE} ({NODE_IP}) keeps GPU {GPU_UUID} memory at {observed}%.",
        evidence=[Evidence(metric="gpu_memory_used_percent", statistic="p95", observed=observed, threshold=90.0)],
        action=Action(type=ActionType.REDUCE_GPU_MEMORY_USAGE, parameters={"gpuIndex": 0, "targetPercent": 85.0}),
        expected_impact="Fewer out-of-memory restarts.",
        sensitive=[Sensitive(unmasked=pod, masked="pod-8b11cfe3"), Sensitive(unmasked=NODE_IP, masked="?")],
    )


def thermal_finding(severity: Severity = Severity.CRITICAL) -> Finding:
    return Finding(
        rule="gpu-thermal-throttle",
        category=Category.HARDWARE,
        severity=severity,
        node_name=NODE,
        target=Target(kind=TargetKind.GPU, name="gpu0", gpu_index=0, gpu_uuid=GPU_UUID),
        summary=f"GPU 0 on {NODE} throttles for heat 40% of the time.",
        evidence=[Evidence(metric="gpu_clock_event_share", statistic="share", observed=0.4, threshold=0.1)],
        action=Action(type=ActionType.CHECK_COOLING, parameters={"gpuIndex": 0}),
        expected_impact="Full clocks restore throughput.",
    )


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        yield running


@pytest.fixture(params=[ProviderKind.GROQ, ProviderKind.OPENAI_COMPATIBLE], ids=["groq", "openai"])
def provider_kind(request: pytest.FixtureRequest) -> ProviderKind:
    return request.param


ServiceFactory = Callable[..., InsightService]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def make_service(
    server: FakeLLMServer, provider_kind: ProviderKind, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ServiceFactory]:
    """Builds services on the real SDK of `provider_kind`, pointed at the local server."""
    for name in ("GROQ_API_KEY", "OPENAI_API_KEY", "GROQ_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    made: list[InsightService] = []

    def make(clock: Callable[[], float] | None = None, **overrides: object) -> InsightService:
        base_url = server.groq_base_url if provider_kind is ProviderKind.GROQ else server.openai_base_url
        values: dict[str, object] = {
            "provider": provider_kind,
            "model": "openai/gpt-oss-20b",
            "base_url": base_url,
            "api_key": "test-key",
            "timeout_seconds": 5.0,
            "max_retries": 0,
        }
        values.update(overrides)
        settings = LLMSettings(**values)
        provider = build_provider(settings)
        assert provider is not None
        timing = {"clock": clock} if clock is not None else {}
        service = InsightService(provider, settings, LLMMetrics(registry), **timing)
        made.append(service)
        return service

    yield make
    for service in made:
        await service.close()



def hot_node_summary() -> NodeSummary:
    """A node with a throttling, nearly full GPU whose process belongs to a pod with an LMCache instance."""

    def stat(mean: float, top: float | None = None) -> Stat:
        return Stat(mean=mean, p95=top or mean, max=top or mean, min=mean, last=mean)

    gib = 2**30
    return NodeSummary(
        node_name=NODE,
        agent_version="test",
        window=Window(start=1000.0, end=1295.0, samples=60, interval_seconds=5.0),
        inventory=NodeInventory(hostname=NODE, cpu_cores=64, memory_total_bytes=512 * gib),
        cpu=CpuSummary(utilization_percent=stat(30), load1=stat(20)),
        memory=MemorySummary(
            total_bytes=512 * gib,
            available_bytes=stat(300 * gib),
            used_bytes=stat(200 * gib),
            cached_bytes=stat(10 * gib),
            buffers_bytes=stat(1 * gib),
            available_percent=stat(58),
        ),
        pressure=PressureSummary(available=False, reason="no PSI"),
        gpu=GpuSection(
            available=True,
            devices=[
                GpuSummary(
                    index=0,
                    uuid=GPU_UUID,
                    name="NVIDIA H100 80GB HBM3",
                    sm_utilization_percent=stat(95, 99),
                    memory_used_percent=stat(98, 99.5),
                    memory_total_bytes=80 * gib,
                    temperature_celsius=stat(88, 91),
                    slowdown_temperature_celsius=87,
                    shutdown_temperature_celsius=92,
                    power_watts=stat(650, 700),
                    power_limit_watts=700,
                    clock_event_reasons={"hw_thermal_slowdown": 0.6, "sw_thermal_slowdown": 0.6},
                    processes=[GpuProcess(pid=4242, used_memory_bytes=78 * gib, name="python3 -m vllm", pod_uid=POD_UID)],
                )
            ],
        ),
        lmcache=LMCacheSection(
            instances=[
                LMCacheInstanceSummary(
                    instance=f"{NAMESPACE}/{POD}",
                    pod=POD,
                    namespace=NAMESPACE,
                    urls=[f"http://{NODE_IP}:6999"],
                    lookup_tokens=1_000_000,
                    lookup_hits=10_000,
                    lookup_hit_rate=0.01,
                    requested_tokens=10_000,
                    hit_tokens=10_000,
                    token_hit_rate=1.0,
                    evictions=50_000,
                )
            ]
        ),
    )
