"""The lmcache collector against simulated instances: combination, faults, budget, resets, redaction."""

from __future__ import annotations

import json
import logging
import time

import pytest

from resource_agent.api.samples import CollectorState
from resource_agent.lmcache.client import Scraper
from resource_agent.node_agent.collectors.base import REGISTRY, CollectorContext, run_collectors
from resource_agent.node_agent.collectors.lmcache import LMCacheCollector

SECRET = "s3cr3t-Pa55"
AWS = "AKIAEXAMPLESECRETKEY"


def instances(collector: LMCacheCollector, timestamp: float = 0.0):
    sample = run_collectors([collector], timestamp=timestamp)
    assert sample.collectors[0].state is CollectorState.OK, sample.collectors[0].reason
    return {instance.instance: instance for instance in sample.lmcache.instances}


def test_registered_and_unavailable_without_instances():
    assert REGISTRY["lmcache"].enabled_by_default
    collector = REGISTRY["lmcache"].factory(CollectorContext())
    try:
        sample = run_collectors([collector])
    finally:
        collector.close()
    assert sample.collectors[0].state is CollectorState.UNAVAILABLE
    assert sample.collectors[0].reason == "no LMCache instances configured or discovered"


def test_healthy_instance_all_ports_combined(make_sim, clock, collect):
    sim = make_sim("healthy", workers=2, max_local_cpu_size=4.0)
    collector = collect(sim.spec())
    first = instances(collector)[sim.urls()[0]]
    clock.now += 10
    second = instances(collector)[sim.urls()[0]]
    assert second.reachable and second.healthy and second.error is None
    assert second.urls == sim.urls()
    # 20 req/s x 1500 tokens x 10 s looked up, counted once across the two TP ranks; 65% found
    assert second.lookup_tokens_total - first.lookup_tokens_total == pytest.approx(300_000)
    assert (second.lookup_hits_total - first.lookup_hits_total) / (second.lookup_tokens_total - first.lookup_tokens_total) == pytest.approx(0.65)
    # the v1 adapter retrieves only what the lookup found, and all of it loads
    assert second.requested_tokens_total - first.requested_tokens_total == pytest.approx(0.65 * 300_000)
    assert second.hit_tokens_total - first.hit_tokens_total == pytest.approx(second.requested_tokens_total - first.requested_tokens_total)
    assert second.max_local_cpu_size_bytes == 2 * 4 * 2**30  # per rank x 2 ranks
    assert second.local_cpu_usage_bytes == pytest.approx(0.55 * 2 * 4 * 2**30)
    assert first.retrieve_latency_seconds is None  # no interval yet
    assert second.retrieve_latency_seconds == pytest.approx(0.015)
    assert second.kv_bytes_per_token == 32 * 8 * 128 * 2 * 2  # Llama-3.1-8B, bf16, both ranks
    assert second.remote_backend is None


def test_thrash_profile_shows_evictions_and_low_hit_rate(make_sim, clock, collect):
    sim = make_sim("thrash", workers=1)
    collector = collect(sim.spec())
    first = instances(collector)[sim.urls()[0]]
    clock.now += 5
    second = instances(collector)[sim.urls()[0]]
    assert second.evictions_total - first.evictions_total == pytest.approx(200)
    assert second.lookup_hits_total / second.lookup_tokens_total < 0.1  # the hit rate is the lookup hit rate
    assert second.local_cpu_usage_bytes / second.max_local_cpu_size_bytes > 0.99


def test_malformed_and_500_instances_do_not_affect_others(make_sim, collect):
    good, malformed, failing = make_sim(), make_sim(workers=0), make_sim(workers=1)
    malformed.set_fault(malformed.ports[0], "malformed")
    failing.set_fault(failing.ports[1], "error")
    got = instances(collect(good.spec(), malformed.spec(), failing.spec()))
    assert got[good.urls()[0]].reachable and got[good.urls()[0]].healthy
    bad = got[malformed.urls()[0]]
    assert not bad.reachable and "malformed Prometheus exposition" in bad.error
    partial = got[failing.urls()[0]]
    assert partial.reachable and partial.healthy is False and "HTTP 500" in partial.error


def test_slow_instance_does_not_delay_the_collector_beyond_its_budget(make_sim, collect):
    good, slow = make_sim(workers=1), make_sim(workers=1)
    slow.set_fault(slow.ports[1], "slow:3")
    collector = collect(good.spec(), slow.spec(), budget=1.0, timeout=0.4)
    started = time.perf_counter()
    got = instances(collector)
    assert time.perf_counter() - started < 1.5
    assert got[good.urls()[0]].reachable
    assert "timed out" in got[slow.urls()[0]].error
    slow.set_fault(slow.ports[1], None)


def test_counter_reset_keeps_interval_means_sane(make_sim, clock, collect):
    sim = make_sim(workers=1)
    collector = collect(sim.spec())
    instances(collector)
    clock.now += 20
    before = instances(collector)[sim.urls()[0]]
    for port in sim.ports:
        sim.reset_metrics(port)
    clock.now += 2
    after = instances(collector)[sim.urls()[0]]
    assert after.requested_tokens_total < before.requested_tokens_total  # raw counters reset; the window handles it
    assert after.retrieve_latency_seconds == pytest.approx(0.015)


def test_instance_that_disappears_is_unreachable_not_a_failure(make_sim, collect, caplog):
    sim = make_sim(workers=1)
    collector = collect(sim.spec())
    assert instances(collector)[sim.urls()[0]].reachable
    sim.stop()
    with caplog.at_level(logging.WARNING):
        gone = instances(collector)[sim.urls()[0]]
    assert not gone.reachable and "connection failed" in gone.error
    assert any("unreachable" in record.getMessage() for record in caplog.records)


def test_bad_url_spec_is_reported_and_the_rest_collected(make_sim, collect):
    sim = make_sim(workers=0)
    got = instances(collect("http://user:pw@host:notaport", sim.spec()))
    assert got[sim.urls()[0]].reachable
    bad = [instance for instance in got.values() if not instance.reachable]
    assert len(bad) == 1 and "bad LMCache URL" in bad[0].error and "pw" not in bad[0].model_dump_json()


def test_no_credential_from_conf_reaches_the_sample_or_logs(make_sim, clock, collect, caplog):
    sim = make_sim(
        workers=1,
        remote_url=f"redis://default:{SECRET}@redis.cache:6379",
        extra_config={"aws_secret_access_key": AWS, "s3_endpoint": f"https://k:{SECRET}@s3.local"},
    )
    collector = collect(sim.spec())
    with caplog.at_level(logging.DEBUG):
        instances(collector)
        sim.set_fault(sim.ports[1], "error")
        clock.now += 1
        got = instances(collector)[sim.urls()[0]]
    assert got.remote_backend == "redis"
    dumped = json.dumps(got.to_wire())
    for secret in (SECRET, AWS):
        assert secret not in dumped
        assert secret not in caplog.text


def test_pod_discovery_finds_annotated_pods_and_keeps_them_when_the_api_fails(make_sim, clock, collect):
    sim = make_sim(workers=1)
    pods = [{"metadata": {"name": "vllm-0", "namespace": "llm",
                          "annotations": {"resource.optiinfra.io/lmcache-port": str(sim.ports[0]),
                                          "resource.optiinfra.io/lmcache-workers": "1"}},
             "status": {"phase": "Running", "podIP": "127.0.0.1"}},
            {"metadata": {"name": "other", "namespace": "llm"}, "status": {"phase": "Running", "podIP": "10.0.0.9"}}]
    calls: list[str] = []

    def list_pods(node: str):
        calls.append(node)
        if len(calls) > 1:
            raise ConnectionError("api server away")
        return pods

    context = CollectorContext(node_name="gpu-1", options={"lmcache.discover-pods": "true", "lmcache.discovery-interval": "30"})
    collector = LMCacheCollector(context, scraper=Scraper(0.5, 1.0), list_pods=list_pods, clock=clock)
    try:
        got = instances(collector)
        clock.now += 31
        again = instances(collector)
    finally:
        collector.close()
    assert calls == ["gpu-1", "gpu-1"]
    assert got["llm/vllm-0"].pod == "vllm-0" and got["llm/vllm-0"].urls == sim.urls()
    assert again["llm/vllm-0"].reachable
