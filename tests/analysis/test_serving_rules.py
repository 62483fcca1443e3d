"""Serving rules on windows of a simulated vLLM/SGLang (devtools.serving_simulator, the engines'
own metric families): each fires on its condition and stays silent on the healthy neighbour."""

from __future__ import annotations

import pytest

from devtools.serving_simulator import PROFILES, SimulatedEngine
from resource_agent.analysis.engine import analyze
from resource_agent.analysis.policy import Policy
from resource_agent.analysis.rules import gpu, serving
from resource_agent.api.findings import ActionType, Severity, TargetKind
from resource_agent.api.samples import GpuProcess, ServingSample
from resource_agent.api.summary import NodeSummary
from resource_agent.node_agent.window import summarize
from resource_agent.serving.discovery import Endpoint
from resource_agent.serving.metrics import parse_exposition
from resource_agent.serving.sample import instance_samples
from tests.node_agent.agent_samples import sample

POLICY = Policy()


def window(profile: str, engine: str = "vllm", steps: int = 24, interval: float = 5.0, sm: float | None = None,
           lmcache_hit_rate: float | None = None, **changes: float) -> NodeSummary:
    clock = [0.0]
    sim = SimulatedEngine(engine, PROFILES[profile], seed=7, clock=lambda: clock[0])
    if changes:
        sim.set_profile(profile, **changes)
    endpoint = Endpoint(id="llm/vllm-0", engine=engine, url="http://10.1.0.4:8000/metrics", pod="vllm-0", namespace="llm", pod_uid="uid-vllm-0")
    samples = []
    for step in range(steps):
        clock[0] = step * interval
        item = sample(step, interval=interval)
        assert item.gpu is not None and item.lmcache is not None
        device = item.gpu.devices[0]
        updates: dict = {"processes": [GpuProcess(pid=100, used_memory_bytes=70 * 1024**3, pod_uid="uid-vllm-0", started_at=0.0)]}
        if sm is not None:
            updates["sm_utilization_percent"] = sm
        item.gpu.devices[0] = device.model_copy(update=updates)
        cache = item.lmcache.instances[0]
        if lmcache_hit_rate is None:
            item.lmcache = None
        else:
            tokens = 10_000.0 * step
            item.lmcache.instances[0] = cache.model_copy(update={
                "instance": "llm/vllm-0", "pod": "vllm-0", "namespace": "llm",
                "lookup_tokens_total": tokens, "lookup_hits_total": tokens * lmcache_hit_rate,
            })
        item.serving = ServingSample(instances=instance_samples(endpoint, parse_exposition(sim.exposition(), engine)))
        samples.append(item)
    return summarize(samples, "gpu-node-1")


def test_window_links_the_engine_to_its_gpu_and_lmcache() -> None:
    summary = window("healthy", lmcache_hit_rate=0.5)
    [engine] = summary.serving.instances
    assert engine.gpu_indices == [0] and engine.lmcache_instance == "llm/vllm-0"
    assert engine.kv_cache_usage_percent is not None and engine.kv_cache_usage_percent.last == pytest.approx(55.0)
    assert engine.requests_per_second == pytest.approx(6.0, rel=0.15)
    assert engine.ttft_seconds is not None and 0.1 < engine.ttft_seconds.p50 < 0.3  # type: ignore[operator]


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_kv_cache_bound(engine: str) -> None:
    [finding] = serving.kv_cache_bound(window("kv-bound", engine), POLICY)
    assert finding.severity is Severity.WARNING and finding.target.kind is TargetKind.SERVING_INSTANCE
    assert "KV-cache bound" in finding.summary
    if engine == "vllm":  # gpu_memory_utilization 0.9 from cache_config_info: raise it
        assert finding.action.type is ActionType.TUNE_SERVING_ENGINE
        assert finding.action.parameters["setting"] == "gpu_memory_utilization" and finding.action.parameters["value"] == "0.95"
    assert not serving.kv_cache_bound(window("healthy", engine), POLICY)
    assert not serving.kv_cache_bound(window("scheduler-bound", engine), POLICY)


def test_kv_cache_bound_at_the_memory_limit_offloads_or_scales() -> None:
    summary = window("kv-bound")
    [engine] = summary.serving.instances
    summary.serving.instances[0] = engine.model_copy(update={"gpu_memory_utilization": 0.95})
    [finding] = serving.kv_cache_bound(summary, POLICY)
    assert finding.action.parameters["setting"] == "kv_transfer_config"  # no LMCache yet
    linked = window("kv-bound", lmcache_hit_rate=0.2)
    linked.serving.instances[0] = linked.serving.instances[0].model_copy(update={"gpu_memory_utilization": 0.95})
    [finding] = serving.kv_cache_bound(linked, POLICY)
    assert finding.action.type is ActionType.SCALE_SERVING_REPLICAS and finding.action.parameters["direction"] == "up"


def test_scheduler_bound() -> None:
    [finding] = serving.scheduler_bound(window("scheduler-bound", sm=35.0), POLICY)
    assert finding.action.type is ActionType.TUNE_SERVING_ENGINE and finding.action.parameters["setting"] == "max_num_seqs"
    assert not serving.scheduler_bound(window("kv-bound", sm=35.0), POLICY)  # waits, but for KV room
    assert not serving.scheduler_bound(window("healthy", sm=35.0), POLICY)
    assert not serving.scheduler_bound(window("scheduler-bound", sm=95.0), POLICY)  # the GPU is the limit


def test_idle_replica_is_information_then_a_warning_over_a_long_window() -> None:
    [short] = serving.idle_replica(window("idle"), POLICY)
    assert short.severity is Severity.INFO and short.action.parameters["direction"] == "zero"
    [long] = serving.idle_replica(window("idle", interval=200.0), POLICY)
    assert long.severity is Severity.WARNING
    assert not serving.idle_replica(window("healthy"), POLICY)


def test_latency_slo_names_the_likely_cause() -> None:
    [kv] = serving.latency_slo(window("kv-bound"), POLICY)
    assert "time to first token p95" in kv.summary and "KV cache is full" in kv.summary
    [queued] = serving.latency_slo(window("scheduler-bound"), POLICY)
    assert "queued while the KV cache has room" in queued.summary and queued.action.parameters["setting"] == "max_num_seqs"
    assert not serving.latency_slo(window("healthy"), POLICY)
    strict = Policy.model_validate({"rules": {"serving-latency-slo": {"thresholds": {"ttft_p95_seconds_max": 0.1}}}})
    [breach] = serving.latency_slo(window("healthy"), strict)  # the SLO is the policy's
    assert "0.1 s SLO" in breach.summary


def test_low_prefix_cache_hit_rate() -> None:
    [alone] = serving.prefix_cache_low_hit_rate(window("low-prefix-hit"), POLICY)
    assert alone.severity is Severity.INFO  # no sign the prefixes repeat
    [repeated] = serving.prefix_cache_low_hit_rate(window("low-prefix-hit", lmcache_hit_rate=0.6), POLICY)
    assert repeated.severity is Severity.WARNING and repeated.action.parameters["setting"] == "routing"
    assert not serving.prefix_cache_low_hit_rate(window("healthy", lmcache_hit_rate=0.6), POLICY)


def test_gpu_underutilized_defers_to_a_queueing_engine() -> None:
    assert gpu.underutilized_gpu(window("healthy", requests_per_second=1.0, running=3, sm=15.0), POLICY)
    assert not gpu.underutilized_gpu(window("scheduler-bound", sm=15.0), POLICY)


def test_one_replica_one_recommendation() -> None:
    findings = [f for f in analyze(window("kv-bound"), POLICY).findings if f.target.kind is TargetKind.SERVING_INSTANCE]
    [finding] = [f for f in findings if f.severity is not Severity.INFO]
    assert set(finding.rules()) == {"serving-kv-cache-bound", "serving-latency-slo"}
