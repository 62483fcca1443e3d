"""lmcache-remote-gets-timing-out (a runtime-effective change) and per-process cache sizing."""

import pytest

from resource_agent.analysis.engine import analyze
from resource_agent.analysis.policy import Policy
from resource_agent.analysis.rules import cache as rules
from resource_agent.api.findings import ActionType, Severity
from resource_agent.lmcache.apply import plan_config_change
from tests.analysis.analysis_builders import GIB, fired, lmcache, node, st

POLICY = Policy()
# 30 failed blocking gets in the window, each of which waited the whole 10 s timeout (300 s of the 320 s
# that 200 gets spent, lmcache:remote_time_to_get_sync); the redis backend answered 6 pings in 2 ms and
# took every put
TIMING_OUT = dict(remote_backend="redis", remote_errors=30.0, remote_get_failures=30.0, remote_put_failures=0.0,
                  remote_ping_errors=0.0, remote_ping_successes=6.0, remote_ping_seconds=st(0.002),
                  remote_gets=200.0, remote_get_time_seconds=320.0, remote_get_seconds=st(1.6, 9.8),
                  blocking_timeout_seconds=10.0, worker_ranks=2)


def test_failed_gets_on_an_answering_backend_raise_blocking_timeout_secs():
    summary = node(caches=[lmcache(**TIMING_OUT), lmcache("llm/vllm-1")])
    findings = rules.remote_gets_timing_out(summary, POLICY)
    assert fired(findings) == [("lmcache-remote-gets-timing-out", "vllm-0")]
    finding = findings[0]
    assert finding.severity is Severity.WARNING
    assert finding.action.type is ActionType.SET_LMCACHE_CONFIG and finding.action.operator_applies
    assert finding.action.parameters == {"instance": "llm/vllm-0", "key": "blocking_timeout_secs", "value": "20",
                                         "previous": "10", "runtimeEffective": True}
    assert [e.metric for e in finding.evidence] == [
        "lmcache.remote_get_failures", "lmcache.remote_get_timed_out_share", "lmcache.remote_ping_successes",
        "lmcache.remote_ping_errors", "lmcache.blocking_timeout_seconds", "lmcache.remote_get_seconds",
        "lmcache.remote_ping_seconds",
    ]
    assert "from 10 to 20 s" in finding.summary
    # the operator turns it into a POST /conf, no restart
    plan = plan_config_change(finding.action, {"blocking_timeout_secs": 10})
    assert plan.runtime_effective and plan.body == {"blocking_timeout_secs": 20} and plan.patch is None


def test_the_same_failures_are_not_reported_twice():
    summary = node(caches=[lmcache(**TIMING_OUT)])
    assert rules.backend_degraded(summary, POLICY) == []
    assert [f.rule for f in analyze(summary).findings] == ["lmcache-remote-gets-timing-out"]
    # just raised: the window still holds the failures from before, none since; neither rule fires
    raised = node(caches=[lmcache(**{**TIMING_OUT, "remote_get_failures": 0.0, "blocking_timeout_seconds": 20.0})])
    assert analyze(raised).findings == []
    # a few failed gets on an answering backend with room to raise the timeout: not the backend's fault
    few = node(caches=[lmcache(**{**TIMING_OUT, "remote_get_failures": 3.0, "remote_errors": 3.0})])
    assert analyze(few).findings == []
    # with the timeout rule off, the failed gets are the backend's again
    off = Policy.from_mapping({"disabled_rules": [rules.GET_TIMEOUTS]})
    degraded = rules.backend_degraded(summary, off)
    assert [(e.metric, e.observed) for f in degraded for e in f.evidence] == [("lmcache.remote_errors", 30.0)]


@pytest.mark.parametrize(
    "changes",
    [
        {"remote_ping_errors": 3.0, "remote_errors": 33.0},  # the backend does not answer every ping
        {"remote_ping_seconds": st(0.05, 0.3)},  # it answers slowly
        {"remote_put_failures": 2.0, "remote_errors": 32.0},  # writes fail too
        {"remote_ping_successes": 0.0},  # no ping in the window: no proof it answers
        {"remote_ping_errors": None},  # LMCache without the ping counters
        {"remote_put_failures": None},
        {"remote_get_failures": 4.0, "remote_errors": 4.0},  # too few failures
        {"remote_get_failures": None},  # LMCache without get_blocking_failed_count
        {"blocking_timeout_seconds": None},  # /conf did not answer
        {"blocking_timeout_seconds": 20.0},  # already at the cap
        {"healthy": False},  # lmcache-unreachable reports it
    ],
)
def test_no_raise_without_a_backend_that_answers_or_without_room(changes):
    summary = node(caches=[lmcache(**{**TIMING_OUT, **changes})])
    assert rules.remote_gets_timing_out(summary, POLICY) == []


def test_backend_trouble_stays_with_lmcache_backend_degraded():
    for changes in ({"remote_ping_errors": 3.0, "remote_errors": 33.0}, {"blocking_timeout_seconds": 20.0}):
        summary = node(caches=[lmcache(**{**TIMING_OUT, **changes})])
        assert fired(rules.backend_degraded(summary, POLICY)) == [("lmcache-backend-degraded", "vllm-0")]


def test_the_raise_is_bounded_by_the_policy_cap_and_rounds_up_to_whole_seconds():
    capped = Policy.from_mapping({"rules": {rules.GET_TIMEOUTS: {"thresholds": {"blocking_timeout_cap_secs": 15}}}})
    summary = node(caches=[lmcache(**TIMING_OUT)])
    assert rules.remote_gets_timing_out(summary, capped)[0].action.parameters["value"] == "15"
    limits = rules.remote_gets_timing_out.thresholds(POLICY)
    assert rules.raised_blocking_timeout(lmcache(**{**TIMING_OUT, "blocking_timeout_seconds": 7.5}), limits) == 15
    slow = {**TIMING_OUT, "remote_get_time_seconds": 30 * 45.0}
    assert rules.raised_blocking_timeout(lmcache(**{**slow, "blocking_timeout_seconds": 15.0}), limits) == 20


def test_misses_are_not_timeouts():
    """Failed gets that came back at once (misses, errors): 30 failures x 10 s would be 300 s,
    the gets spent 12 s in all. A longer timeout would only stall requests longer."""
    misses = node(caches=[lmcache(**{**TIMING_OUT, "remote_get_time_seconds": 12.0, "remote_get_seconds": st(0.06, 0.1)})])
    assert rules.remote_gets_timing_out(misses, POLICY) == []
    unknown = node(caches=[lmcache(**{**TIMING_OUT, "remote_get_time_seconds": None, "remote_gets": None})])
    assert rules.remote_gets_timing_out(unknown, POLICY) == []  # cannot tell: no raise


def test_the_cap_protects_time_to_first_token():
    limits = rules.remote_gets_timing_out.thresholds(POLICY)
    assert limits["blocking_timeout_cap_secs"] <= 20
    slow = lmcache(**{**TIMING_OUT, "blocking_timeout_seconds": 16.0, "remote_get_time_seconds": 30 * 16.0})
    assert rules.raised_blocking_timeout(slow, limits) == 20  # not 32


def test_max_local_cpu_size_is_raised_per_process():
    # two worker ranks with 5 GB each hold 10 GB together; LMCache's setting is the 5
    thrash = lmcache(lookup_hit_rate=0.12, lookup_hits=120_000.0, evictions=5000.0, local_cpu_usage_percent=st(99),
                     max_local_cpu_size_bytes=10 * GIB, worker_ranks=2)
    finding = rules.low_hit_rate_evicting(node(caches=[thrash]), POLICY)[0]
    assert finding.action.parameters["previous"] == "5" and finding.action.parameters["value"] == "10"
    assert "from 5 to 10 GB per process (2 workers)" in finding.summary
    spare = next(e for e in finding.evidence if e.metric == "memory.spare_bytes")
    assert spare.threshold == 2 * 5 * GIB  # both processes allocate the raise
