import pytest

from resource_agent.analysis.policy import Policy
from resource_agent.analysis.rules import cache as rules
from resource_agent.api.findings import ActionType, Severity, TargetKind
from tests.analysis.analysis_builders import GIB, fired, lmcache, node, st

POLICY = Policy()
THRASH = dict(lookup_hit_rate=0.12, lookup_hits=120_000.0, evictions=5000.0, local_cpu_usage_percent=st(99))


def test_low_hit_rate_with_evictions_raises_max_local_cpu_size():
    findings = rules.low_hit_rate_evicting(node(caches=[lmcache(**THRASH), lmcache("llm/vllm-1")]), POLICY)
    assert fired(findings) == [("lmcache-low-hit-rate-evicting", "vllm-0")]
    finding = findings[0]
    assert finding.target.kind is TargetKind.LMCACHE_INSTANCE and finding.target.namespace == "llm"
    assert finding.action.type is ActionType.SET_LMCACHE_CONFIG
    assert finding.action.parameters == {
        "instance": "llm/vllm-0",
        "key": "max_local_cpu_size",
        "value": "40",
        "previous": "20",
        "runtimeEffective": False,
    }
    assert finding.action.operator_applies
    assert {"llm/vllm-0", "vllm-0", "llm", "http://10.0.0.5:6999"} <= {s.unmasked for s in finding.sensitive}


def test_raise_is_bounded_by_spare_memory_and_the_policy_cap():
    total = 2048 * GIB
    tight = node(caches=[lmcache(**THRASH)])
    # spare = lowest available (0.6 x total) - 20% reserve = 819 GiB: doubling 20 -> 40 fits
    assert rules.raised_cpu_size_gb(20, 0.4 * total, rules.low_hit_rate_evicting.thresholds(POLICY)) == 40
    assert rules.raised_cpu_size_gb(20, 5.5 * GIB, rules.low_hit_rate_evicting.thresholds(POLICY)) == 25
    assert rules.raised_cpu_size_gb(20, 0.5 * GIB, rules.low_hit_rate_evicting.thresholds(POLICY)) is None
    capped = Policy.from_mapping({"rules": {rules.LOW_HIT_RATE: {"thresholds": {"max_local_cpu_size_cap_gb": 30}}}})
    assert rules.low_hit_rate_evicting(tight, capped)[0].action.parameters["value"] == "30"
    full_host = tight.model_copy(update={"memory": tight.memory.model_copy(update={"available_bytes": st(0.2 * total)})})
    assert rules.low_hit_rate_evicting(full_host, POLICY) == []


def test_low_hit_rate_needs_evictions_and_traffic():
    no_evictions = lmcache(**{**THRASH, "evictions": 0.0})
    quiet = lmcache(**{**THRASH, "lookup_tokens": 500.0})
    assert rules.low_hit_rate_evicting(node(caches=[no_evictions, quiet]), POLICY) == []


def test_never_hit_disables_the_cache_and_is_exclusive_with_thrash():
    unused = lmcache(lookup_hit_rate=0.0, lookup_hits=0.0, requested_tokens=0.0, hit_tokens=0.0, token_hit_rate=None, evictions=100.0)
    summary = node(caches=[unused])
    findings = rules.never_hit(summary, POLICY)
    assert fired(findings) == [("lmcache-never-hit", "vllm-0")]
    assert findings[0].action.parameters == {"instance": "llm/vllm-0"}
    assert "20.0 GiB" in findings[0].expected_impact
    assert rules.low_hit_rate_evicting(summary, POLICY) == []
    few = lmcache(lookup_hit_rate=0.0, lookup_hits=0.0, lookup_tokens=5000.0)
    assert rules.never_hit(node(caches=[few]), POLICY) == []


def test_usage_near_full_before_evictions_start():
    full = lmcache(local_cpu_usage_percent=st(96, 97, 98, 94))
    assert [f.severity for f in rules.usage_near_full(node(caches=[full]), POLICY)] == [Severity.INFO]
    assert rules.usage_near_full(node(caches=[lmcache(**THRASH)]), POLICY) == []
    assert rules.usage_near_full(node(caches=[lmcache()]), POLICY) == []


@pytest.mark.parametrize(
    ("changes", "metric"),
    [
        ({"remote_errors": 12.0}, "lmcache.remote_errors"),
        ({"retrieve_latency_seconds": st(0.3, 0.9, 1.2, 0.1)}, "lmcache.retrieve_latency_seconds"),
        ({"remote_ping_seconds": st(0.2)}, "lmcache.remote_ping_seconds"),
    ],
)
def test_backend_degraded(changes, metric):
    findings = rules.backend_degraded(node(caches=[lmcache(remote_backend="redis", **changes)]), POLICY)
    assert [e.metric for f in findings for e in f.evidence] == [metric]
    assert findings[0].action.parameters == {"instance": "llm/vllm-0", "backend": "redis"}


def test_healthy_cache_has_no_findings_and_unreachable_ones_are_reported_once():
    healthy = lmcache()
    down = lmcache("llm/vllm-9", reachable=False, error="connection refused", lookup_hit_rate=0.0, lookup_hits=0.0)
    sick = lmcache("llm/vllm-8", healthy=False, remote_errors=50.0)
    summary = node(caches=[healthy, down, sick])
    unreachable = rules.unreachable(summary, POLICY)
    assert fired(unreachable) == [("lmcache-unreachable", "vllm-9"), ("lmcache-unreachable", "vllm-8")]
    assert "connection refused" in unreachable[0].action.parameters["hint"]
    for check in (rules.never_hit, rules.low_hit_rate_evicting, rules.usage_near_full, rules.backend_degraded):
        assert check(summary, POLICY) == []
