"""Planning and applying set-lmcache-config against the simulator's LMCache /conf semantics."""

from __future__ import annotations

import httpx
import pytest

from resource_agent.api.findings import Action, ActionType
from resource_agent.lmcache.apply import APPLIED, SKIPPED, PlanError, apply_config_change, plan_config_change
from resource_agent.lmcache.config import GIB
from resource_agent.operator.lmcache_apply import apply_lmcache_action
from tests.analysis.analysis_builders import lmcache, node


def action(key: str, value: str, instance: str = "llm/vllm-0") -> Action:
    return Action(type=ActionType.SET_LMCACHE_CONFIG, parameters={"instance": instance, "key": key, "value": value})


def test_runtime_effective_key_is_a_post():
    plan = plan_config_change(action("min_retrieve_tokens", "256"), {"min_retrieve_tokens": 0})
    assert plan.runtime_effective and not plan.restart_required
    assert plan.body == {"min_retrieve_tokens": 256} and plan.previous == 0 and plan.patch is None


def test_startup_key_is_a_restart_patch_bounded_by_spare_memory_and_cap():
    plan = plan_config_change(action("max_local_cpu_size", "40"), {"max_local_cpu_size": 5.0},
                              spare_memory_bytes=20 * GIB, policy_cap_bytes=64 * GIB, ranks=2)
    assert plan.restart_required and plan.body is None
    assert plan.value == 15.0  # 5 GB + 20 GiB spare shared by 2 ranks
    assert plan.patch == {"env": {"LMCACHE_MAX_LOCAL_CPU_SIZE": "15.0"}, "kvConnectorExtraConfig": {"lmcache.max_local_cpu_size": 15.0}}
    capped = plan_config_change(action("max_local_cpu_size", "40"), {"max_local_cpu_size": 5.0}, policy_cap_bytes=8 * GIB)
    assert capped.value == 8.0 and any("capped" in note for note in capped.notes)


@pytest.mark.parametrize(
    ("act", "conf", "message"),
    [
        (action("remote_url", "redis://x"), {}, "credentials"),
        (action("extra_config", "{}"), {}, "credentials"),
        (action("no_such_option", "1"), {}, "unsupported"),
        (action("lookup_timeout_ms", "soon"), {}, "bad value"),
        (action("save_decode_cache", "true"), {"save_decode_cache": True}, "already"),
        (Action(type=ActionType.DISABLE_LMCACHE, parameters={"instance": "a"}), {}, "only set-lmcache-config"),
    ],
)
def test_unsafe_or_unsupported_changes_are_refused(act, conf, message):
    with pytest.raises(PlanError, match=message):
        plan_config_change(act, conf)


async def test_apply_posts_to_every_port_and_reads_back(make_sim):
    sim = make_sim(workers=2)
    plan = plan_config_change(action("lookup_timeout_ms", "1500"), sim.get_conf(sim.ports[0], None))
    result = await apply_config_change(plan, sim.urls(), backoff=0.01)
    assert result.ok and result.before == 3000 and result.after == 1500 and result.attempts == 1
    assert all(sim.configs[port]["lookup_timeout_ms"] == 1500 for port in sim.ports)
    assert set(result.ports.values()) == {"applied"}


async def test_restart_required_plan_posts_nothing(make_sim):
    sim = make_sim(workers=1)
    plan = plan_config_change(action("max_local_cpu_size", "8"), sim.get_conf(sim.ports[0], None))
    result = await apply_config_change(plan, sim.urls())
    assert result.restart_required and result.attempts == 0 and result.patch == plan.patch
    assert sim.configs[sim.ports[0]]["max_local_cpu_size"] == 5.0


async def test_apply_posts_only_to_the_ports_without_the_value(make_sim):
    """An apply cut short after port 0 took the value: the next one writes port 1 only, and then nothing."""
    sim = make_sim(workers=1)
    plan = plan_config_change(action("blocking_timeout_secs", "20"), sim.get_conf(sim.ports[1], None))
    sim.post_conf(sim.ports[0], {"blocking_timeout_secs": 20})  # the interrupted apply's one write
    result = await apply_config_change(plan, sim.urls(), backoff=0.01)
    assert result.ok and (result.before, result.after, result.attempts) == (10, 20, 1)
    assert sim.posts() == [sim.ports[1]]  # exactly one write
    assert result.ports == {sim.urls()[0]: SKIPPED, sim.urls()[1]: APPLIED}
    assert [sim.configs[port]["blocking_timeout_secs"] for port in sim.ports] == [20, 20]
    again = await apply_config_change(plan, sim.urls(), backoff=0.01)
    assert again.ok and again.attempts == 0 and set(again.ports.values()) == {SKIPPED}
    assert sim.posts() == [sim.ports[1]]


async def test_operator_finishes_a_partial_apply_and_names_the_skipped_port(make_sim):
    sim = make_sim(workers=1)
    urls = sim.urls()
    act = Action(type=ActionType.SET_LMCACHE_CONFIG,
                 parameters={"instance": urls[0], "key": "blocking_timeout_secs", "value": "20", "previous": "10"})
    instance = lmcache(urls=urls, worker_ranks=1)
    sim.post_conf(sim.ports[0], {"blocking_timeout_secs": 20})  # port 0 got it before the operator was killed
    result = await apply_lmcache_action(act, instance, node(caches=[instance]))
    assert result.succeeded and result.attempts == 1, result.error
    assert (result.before, result.after) == ({"blocking_timeout_secs": "10"}, {"blocking_timeout_secs": "20"})
    assert sim.posts() == [sim.ports[1]]
    assert result.message == (f"blocking_timeout_secs set to 20 on 1 port(s) ({urls[1]}); "
                              f"already 20 on 1 port(s), not posted again ({urls[0]})")
    replayed = await apply_lmcache_action(act, instance, node(caches=[instance]))
    assert replayed.succeeded and "nothing to post" in (replayed.message or "") and sim.posts() == [sim.ports[1]]


def test_simulator_post_conf_follows_lmcache_semantics(make_sim):
    sim = make_sim(workers=0)
    url = f"{sim.urls()[0]}/conf"
    ok = httpx.post(url, json={"save_decode_cache": "1", "bogus": 1})
    assert ok.status_code == 200 and ok.json() == {"updated": {"save_decode_cache": True}, "errors": {"bogus": "Unknown config"}}
    bad = httpx.post(url, json={"lookup_timeout_ms": "soon"})
    assert bad.status_code == 400 and bad.json()["errors"] == {"lookup_timeout_ms": "Failed to set config value"}
    assert httpx.post(url, content=b"[1]").json() == {"error": "Request body must be a JSON object"}


async def test_transient_failures_are_retried_with_backoff_then_succeed(make_sim):
    sim = make_sim(workers=0)
    calls: list[str] = []
    real = httpx.AsyncHTTPTransport()

    class Flaky(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                calls.append("post")
                if len(calls) <= 2:
                    return httpx.Response(503)
            return await real.handle_async_request(request)

    plan = plan_config_change(action("blocking_timeout_secs", "5"), sim.get_conf(sim.ports[0], None))
    result = await apply_config_change(plan, sim.urls(), retries=3, backoff=0.01, transport=Flaky())
    assert result.ok and result.attempts == 3 and result.after == 5


async def test_unreachable_port_fails_after_retries_with_the_reason(make_sim):
    sim = make_sim(workers=1)
    plan = plan_config_change(action("save_unfull_chunk", "true"), sim.get_conf(sim.ports[0], None))
    urls = [*sim.urls(), "http://127.0.0.1:9"]  # nothing listens on the discard port
    result = await apply_config_change(plan, urls, retries=2, backoff=0.01, timeout=0.5)
    assert not result.ok and result.attempts == 3
    assert "127.0.0.1:9: connection failed" in result.error and "after 3 attempts" in result.error
    assert result.ports[sim.urls()[0]] == "applied"


async def test_permanent_rejection_is_not_retried(make_sim):
    sim = make_sim(workers=0)
    plan = plan_config_change(action("min_retrieve_tokens", "64"), {})
    sim.configs[sim.ports[0]].pop("min_retrieve_tokens")  # an older LMCache without the key
    from devtools import lmcache_simulator as simulator

    definitions = dict(simulator.CONFIG_DEFINITIONS)
    simulator.CONFIG_DEFINITIONS.pop("min_retrieve_tokens")
    try:
        result = await apply_config_change(plan, sim.urls(), retries=3, backoff=0.01)
    finally:
        simulator.CONFIG_DEFINITIONS.clear()
        simulator.CONFIG_DEFINITIONS.update(definitions)
    assert result.attempts == 1 and "Unknown config" in result.error
