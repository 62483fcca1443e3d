"""Remote gets timing out: the simulator's slow-remote profile through the collector, the window,
the rules and the operator's apply path, and back (the failures stop once the timeout is raised)."""

from __future__ import annotations

import json

import httpx
import pytest

from resource_agent.analysis.engine import analyze
from resource_agent.api.samples import CollectorState, LMCacheInstanceSample, Sample
from resource_agent.node_agent.collectors.base import run_collectors
from resource_agent.node_agent.lmcache_summary import lmcache_instances
from resource_agent.node_agent.window import summarize
from resource_agent.operator.lmcache_apply import apply_lmcache_action
from resource_agent.scenarios import generate

SECRET = "t1meout-Pa55"
AWS = "AKIAEXAMPLETIMEOUTKEY"
RULE = "lmcache-remote-gets-timing-out"


def instances(collector, timestamp: float = 0.0) -> dict[str, LMCacheInstanceSample]:
    sample = run_collectors([collector], timestamp=timestamp)
    assert sample.collectors[0].state is CollectorState.OK, sample.collectors[0].reason
    return {instance.instance: instance for instance in sample.lmcache.instances}


def slow_remote(make_sim):
    return make_sim("slow-remote", workers=2, remote_url=f"redis://default:{SECRET}@redis.cache:6379",
                    extra_config={"aws_secret_access_key": AWS})


def test_failed_gets_reach_the_sample_and_stop_once_the_timeout_is_raised(make_sim, clock, collect):
    sim = slow_remote(make_sim)
    collector = collect(sim.spec())
    first = instances(collector)[sim.urls()[0]]
    clock.now += 10
    second = instances(collector)[sim.urls()[0]]
    # 0.5 slow gets/s on each of the two worker ranks, each over the default 10 s timeout
    assert second.remote_get_failures_total - first.remote_get_failures_total == pytest.approx(2 * 0.5 * 10)
    assert second.remote_put_failures_total == 0 and second.remote_ping_errors_total == 0
    assert second.remote_ping_successes_total > first.remote_ping_successes_total
    assert second.remote_errors_total == second.remote_get_failures_total
    assert second.blocking_timeout_seconds == 10 and second.worker_ranks == 2 and second.remote_backend == "redis"

    sim.post_conf(sim.ports[1], {"blocking_timeout_secs": 20})
    clock.now += 10
    partly = instances(collector)[sim.urls()[0]]
    assert partly.blocking_timeout_seconds == 10  # the tightest process counts
    assert partly.remote_get_failures_total - second.remote_get_failures_total == pytest.approx(0.5 * 10)  # worker 1 only

    sim.post_conf(sim.ports[2], {"blocking_timeout_secs": 20})
    sim.post_conf(sim.ports[0], {"blocking_timeout_secs": 20})
    clock.now += 10
    fixed = instances(collector)[sim.urls()[0]]
    assert fixed.blocking_timeout_seconds == 20
    assert fixed.remote_get_failures_total == partly.remote_get_failures_total


def test_the_simulator_logs_every_request_without_bodies(make_sim):
    sim = make_sim("healthy", workers=1, remote_url=f"redis://default:{SECRET}@redis.cache:6379")
    with httpx.Client(trust_env=False) as client:
        client.get(f"{sim.urls()[1]}/metrics")
        assert client.post(f"{sim.urls()[1]}/conf", json={"lookup_timeout_ms": 1000}).status_code == 200
        client.post(f"{sim.urls()[0]}/metrics/reset")
    assert sim.requests == [("GET", sim.ports[1], "/metrics"), ("POST", sim.ports[1], "/conf"),
                            ("POST", sim.ports[0], "/metrics/reset")]
    assert sim.posts() == [sim.ports[1]] and sim.posts("/metrics/reset") == [sim.ports[0]]


def test_the_window_keeps_the_parts_and_leaves_unknown_ones_empty():
    def sample(timestamp: float, **values: float) -> Sample:
        return Sample(timestamp=timestamp, lmcache={"instances": [LMCacheInstanceSample(instance="a", **values)]})

    samples = [
        sample(0, remote_get_failures_total=4, remote_ping_successes_total=1, blocking_timeout_seconds=10, worker_ranks=2),
        sample(5, remote_get_failures_total=9, remote_ping_successes_total=2, blocking_timeout_seconds=10, worker_ranks=2),
        sample(10, remote_get_failures_total=2, remote_ping_successes_total=3, blocking_timeout_seconds=10, worker_ranks=2),
    ]
    seen = lmcache_instances(samples)[0]
    assert seen.remote_get_failures == 5 + 2  # a drop is a restart: the new value is the increase
    assert seen.remote_ping_successes == 2
    assert seen.remote_ping_errors is None and seen.remote_put_failures is None  # not exposed: unknown, not zero
    assert seen.blocking_timeout_seconds == 10 and seen.worker_ranks == 2
    # the timeout was raised: failed gets count from the first sample at the new value on
    raised = lmcache_instances([
        *samples,
        sample(15, remote_get_failures_total=5, remote_ping_successes_total=4, blocking_timeout_seconds=20),
        sample(20, remote_get_failures_total=5, remote_ping_successes_total=5, blocking_timeout_seconds=20),
        sample(25, remote_get_failures_total=6, remote_ping_successes_total=6),  # /conf did not answer this time
    ])[0]
    assert raised.remote_get_failures == 1 and raised.blocking_timeout_seconds == 20
    assert raised.remote_ping_successes == 5 and raised.worker_ranks == 2


async def test_slow_remote_becomes_a_runtime_change_that_clears_it(make_sim, clock, collect):
    sim = slow_remote(make_sim)
    collector = collect(sim.spec())

    def window(count: int):
        """The agent's window: host and GPUs from the healthy-busy scenario, LMCache from the simulator."""
        samples = []
        for sample in generate("healthy-busy", samples=count, interval_seconds=5.0, gpus=2):
            clock.now += 5
            scraped = run_collectors([collector], timestamp=sample.timestamp)
            assert scraped.collectors[0].state is CollectorState.OK
            sample.lmcache = scraped.lmcache
            samples.append(sample)
        return summarize(samples, "gpu-1")

    summary = window(12)
    findings = analyze(summary).findings
    assert [f.rule for f in findings] == [RULE]
    action = findings[0].action
    assert action.parameters == {"instance": sim.urls()[0], "key": "blocking_timeout_secs", "value": "20",
                                 "previous": "10", "runtimeEffective": True}
    instance = summary.lmcache.instances[0]
    assert instance.remote_get_failures == pytest.approx(2 * 0.5 * 55)  # 11 intervals of 5 s

    result = await apply_lmcache_action(action, instance, summary)
    assert result.succeeded and not result.restart_required, result.error
    assert result.before == {"blocking_timeout_secs": "10"} and result.after == {"blocking_timeout_secs": "20"}
    assert sorted(sim.posts()) == sorted(sim.ports)  # one POST /conf per process
    assert all(sim.configs[port]["blocking_timeout_secs"] == 20 for port in sim.ports)
    # a replayed approval finds the value in place: the same before/after, nothing posted again
    again = await apply_lmcache_action(action, instance, summary)
    assert again.succeeded and (again.before, again.after) == (result.before, result.after)
    assert "already 20" in again.message and sorted(sim.posts()) == sorted(sim.ports)

    assert analyze(window(12)).findings == []  # the gets complete now
    wire = json.dumps([summary.to_wire(), [f.model_dump(mode="json") for f in findings], result.model_dump(mode="json")])
    for secret in (SECRET, AWS):
        assert secret not in wire


async def test_a_start_up_change_posts_nothing(make_sim, clock, collect):
    sim = make_sim("thrash", workers=2, max_local_cpu_size=5.0)
    collector = collect(sim.spec())
    samples = []
    for sample in generate("healthy-busy", samples=12, interval_seconds=5.0, gpus=2):
        clock.now += 5
        sample.lmcache = run_collectors([collector], timestamp=sample.timestamp).lmcache
        samples.append(sample)
    summary = summarize(samples, "gpu-1")
    finding = next(f for f in analyze(summary).findings if f.rule == "lmcache-low-hit-rate-evicting")
    # the setting is per process: 5 GB on each of the two workers, not the 10 GB they hold together
    assert finding.action.parameters["previous"] == "5" and finding.action.parameters["value"] == "10"
    result = await apply_lmcache_action(finding.action, summary.lmcache.instances[0], summary)
    assert result.succeeded and result.restart_required
    assert result.before == {"max_local_cpu_size": "5.0"} and result.after == {"max_local_cpu_size": "10.0"}
    assert json.loads(result.patch) == {"env": {"LMCACHE_MAX_LOCAL_CPU_SIZE": "10.0"},
                                        "kvConnectorExtraConfig": {"lmcache.max_local_cpu_size": 10.0}}
    assert sim.posts() == [] and all(sim.configs[port]["max_local_cpu_size"] == 5.0 for port in sim.ports)
