"""Cost-control parts with driven clocks: rate limit, daily budget, cache, debounce, backoff, fingerprint."""

from __future__ import annotations

from datetime import date

from resource_agent.api.findings import Severity
from resource_agent.api.insight import Insight
from resource_agent.llm.budget import RETRY_AFTER_MAX_SECONDS, Backoff, Debouncer, InsightCache, RateLimiter, TokenBudget
from resource_agent.llm.fingerprint import fingerprint, severities
from tests.llm.conftest import NODE, memory_finding, thermal_finding


def test_rate_limiter_is_a_sliding_minute() -> None:
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])

    assert limiter.try_acquire() and limiter.try_acquire()
    assert not limiter.try_acquire()
    now[0] = 59.9
    assert not limiter.try_acquire()
    now[0] = 60.0
    assert limiter.try_acquire()


def test_token_budget_resets_each_utc_day() -> None:
    day = [date(2025, 1, 1)]
    budget = TokenBudget(1000, today=lambda: day[0])
    budget.record(900)

    assert budget.allows(100) and not budget.allows(101)
    day[0] = date(2025, 1, 2)
    assert budget.used == 0 and budget.allows(1000)


def _insight(summary: str) -> Insight:
    return Insight(
        summary=summary, priority=3, confidence=0.5, model="m", provider="p", latency_seconds=0.1,
        prompt_tokens=1, completion_tokens=1, fingerprint="f", generated_at="2025-01-01T00:00:00Z",
    )


def test_cache_evicts_least_recently_used_and_returns_copies() -> None:
    cache = InsightCache(2)
    cache.put("a", _insight("a"))
    cache.put("b", _insight("b"))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", _insight("c"))

    assert cache.get("b") is None
    copy = cache.get("a")
    assert copy is not None
    copy.steps.append("changed by a caller")
    assert cache.get("a") == _insight("a")


def test_cache_of_size_zero_stores_nothing() -> None:
    cache = InsightCache(0)
    cache.put("a", _insight("a"))
    assert cache.get("a") is None


def test_fingerprint_ignores_measurements_and_order_but_not_identity() -> None:
    base = fingerprint(NODE, [memory_finding(observed=95.0), thermal_finding()])

    assert fingerprint(NODE, [thermal_finding(), memory_finding(observed=99.9)]) == base
    assert fingerprint(NODE, [memory_finding(observed=95.0)]) != base
    assert fingerprint(NODE, [memory_finding(severity=Severity.CRITICAL), thermal_finding()]) != base
    assert fingerprint(NODE, [memory_finding(pod="other-pod"), thermal_finding()]) != base
    assert fingerprint("other-node", [memory_finding(observed=95.0), thermal_finding()]) != base


def test_debouncer_rule() -> None:
    now = [0.0]
    debouncer = Debouncer(300, clock=lambda: now[0])
    critical = severities([thermal_finding(Severity.CRITICAL)])
    warning = severities([thermal_finding(Severity.WARNING)])

    assert debouncer.due(NODE, critical)
    debouncer.mark(NODE, critical)
    now[0] = 100
    assert not debouncer.due(NODE, critical)
    assert not debouncer.due(NODE, warning)  # milder
    assert debouncer.due(NODE, severities([thermal_finding(), memory_finding()]))  # new finding
    assert debouncer.due("another-node", critical)
    now[0] = 300
    assert debouncer.due(NODE, warning)
    debouncer.forget(NODE)
    now[0] = 301
    assert debouncer.due(NODE, critical)


def test_backoff_doubles_up_to_the_cap_with_jitter_and_resets_on_success() -> None:
    now, draw = [0.0], [0.0]
    backoff = Backoff(30, 300, clock=lambda: now[0], jitter=lambda: draw[0])

    periods = []
    for _ in range(6):
        period = backoff.failed()
        assert period is not None
        periods.append(period)
        now[0] += period
    assert periods == [30, 60, 120, 240, 300, 300]
    draw[0] = 1.0  # the most jitter cuts a period by a fifth
    assert backoff.failed() == 240
    backoff.succeeded()
    now[0] += 240
    assert backoff.failed() == 24 and backoff.failures == 1


def test_backoff_ignores_failures_while_a_period_runs() -> None:
    now = [0.0]
    backoff = Backoff(30, 300, clock=lambda: now[0], jitter=lambda: 0.0)

    assert backoff.failed() == 30
    now[0] = 10
    assert backoff.failed() is None  # a request sent before the period began
    assert (backoff.failures, backoff.remaining()) == (1, 20)


def test_backoff_takes_a_longer_retry_after_up_to_an_hour() -> None:
    now = [0.0]
    backoff = Backoff(30, 300, clock=lambda: now[0], jitter=lambda: 0.0)

    assert backoff.failed(retry_after=5) == 30
    now[0] = 30
    assert backoff.failed(retry_after=500) == 500  # above the cap: the provider knows best
    now[0] = 530
    assert backoff.failed(retry_after=10 * RETRY_AFTER_MAX_SECONDS) == RETRY_AFTER_MAX_SECONDS


def test_backoff_zero_seconds_is_off() -> None:
    backoff = Backoff(0, 300)
    assert backoff.failed(retry_after=60) is None
    assert backoff.remaining() == 0
