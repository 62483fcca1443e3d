"""KV-cache (LMCache) rules, read from the summary's LMCache instances."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from resource_agent.analysis.rule import RuleContext, rule
from resource_agent.analysis.support import GIB, action, evidence, gib, lmcache_sensitive, lmcache_target, make_finding
from resource_agent.api.findings import ActionType, Category, Evidence, Finding, Severity
from resource_agent.api.summary import LMCacheInstanceSummary, NodeSummary

UNREACHABLE = "lmcache-unreachable"
NEVER_HIT = "lmcache-never-hit"
LOW_HIT_RATE = "lmcache-low-hit-rate-evicting"
NEAR_FULL = "lmcache-usage-near-full"
BACKEND = "lmcache-backend-degraded"
GET_TIMEOUTS = "lmcache-remote-gets-timing-out"

MAX_LOCAL_CPU_SIZE = "max_local_cpu_size"  # LMCache's setting, in GB (x 1024**3 bytes), per process
BLOCKING_TIMEOUT = "blocking_timeout_secs"  # LMCache's setting, whole seconds, read on every remote get


def _serving(summary: NodeSummary) -> Iterator[LMCacheInstanceSummary]:
    """Instances that answered and did not report themselves unhealthy."""
    for instance in summary.lmcache.instances:
        if instance.reachable and instance.healthy is not False:
            yield instance


@rule(
    UNREACHABLE,
    actions=(ActionType.INVESTIGATE,),
    family="cache",
    category=Category.CACHE,
    weight=60,
    defaults={},
    sustained=False,
)
def unreachable(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """An LMCache instance whose API server does not answer, or reports itself unhealthy,
    cannot be measured and may not be caching at all; the other cache rules skip it."""
    findings = []
    for instance in summary.lmcache.instances:
        if instance.reachable and instance.healthy is not False:
            continue
        state = "unreachable" if not instance.reachable else "unhealthy"
        detail = f": {instance.error}" if instance.error else ""
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.WARNING,
                target=lmcache_target(instance),
                text=f"LMCache instance {instance.instance} is {state}{detail}",
                evidence=[evidence(summary, f"lmcache.{state}", "last", 1, 1)],
                action=action(ActionType.INVESTIGATE, hint=f"LMCache {state}{detail}"),
                impact="A working cache avoids recomputing prefills.",
                sensitive=lmcache_sensitive(instance),
            )
        )
    return findings


@rule(
    NEVER_HIT,
    actions=(ActionType.DISABLE_LMCACHE,),
    family="cache",
    category=Category.CACHE,
    weight=30,
    defaults={"lookup_tokens_min": 100000.0, "hit_rate_max": 0.01},
)
def never_hit(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """A cache that is asked about many tokens but (almost) never finds them stores KV for
    nothing: the workload shares no prefixes. Turning it off frees the host memory it pins.
    The hit rate is lookup hits / lookup tokens (`lmcache:num_lookup_hits` /
    `lmcache:num_lookup_tokens`): vLLM's v1 adapter retrieves only tokens the lookup found,
    so retrieved / requested tokens is ~1 by construction (load success, not a hit rate)."""
    limits = ctx.limits
    findings = []
    for instance in _serving(summary):
        rate = instance.lookup_hit_rate
        if rate is None or instance.lookup_tokens < limits["lookup_tokens_min"] or rate > limits["hit_rate_max"]:
            continue
        held = instance.max_local_cpu_size_bytes or (instance.local_cpu_usage_bytes.last if instance.local_cpu_usage_bytes else 0.0)
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.INFO,
                target=lmcache_target(instance),
                text=f"LMCache {instance.instance} found {rate:.1%} of {instance.lookup_tokens:,.0f} looked-up tokens",
                evidence=[
                    evidence(summary, "lmcache.lookup_hit_rate", "window", rate, limits["hit_rate_max"], "<="),
                    evidence(summary, "lmcache.lookup_tokens", "increase", instance.lookup_tokens, limits["lookup_tokens_min"]),
                ],
                action=action(ActionType.DISABLE_LMCACHE, instance=instance.instance),
                impact=f"Frees up to {gib(held)} of pinned host memory." if held else "Frees the cache's host memory.",
                sensitive=lmcache_sensitive(instance),
            )
        )
    return findings


def raised_cpu_size_gb(current_gb: float, spare_bytes: float, limits: Mapping[str, float]) -> int | None:
    """The new max_local_cpu_size in whole GB, or None when no worthwhile raise fits."""
    spare_gb = spare_bytes / GIB
    proposed = math.floor(min(current_gb * limits["growth_factor"], current_gb + spare_gb, limits["max_local_cpu_size_cap_gb"]))
    return proposed if proposed - current_gb >= limits["increase_min_gb"] else None


@rule(
    LOW_HIT_RATE,
    actions=(ActionType.SET_LMCACHE_CONFIG,),
    family="cache",
    category=Category.CACHE,
    weight=55,
    defaults={
        "lookup_tokens_min": 10000.0,
        "hit_rate_min": 0.01,
        "hit_rate_max": 0.3,
        "evictions_min": 1.0,
        "host_memory_reserve_fraction": 0.2,
        "growth_factor": 2.0,
        "max_local_cpu_size_cap_gb": 256.0,
        "increase_min_gb": 1.0,
    },
)
def low_hit_rate_evicting(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """A low hit rate while the cache keeps evicting means reusable KV is thrown out before it
    is reused: the cache is too small for the working set. When the host has spare memory
    (the lowest available memory in the window minus a reserve), raise max_local_cpu_size
    (in GB, as LMCache's config takes it): at most doubling, never beyond the spare memory or
    the policy cap. The setting is per process and every worker process allocates it, so the
    raise is sized per process and the spare memory is shared by the worker ranks. LMCache
    reads it at start, so the change is not runtime-effective. Caches that never hit are left
    to lmcache-never-hit. The hit rate is the lookup hit rate (lookup hits / lookup tokens)."""
    limits = ctx.limits
    memory = summary.memory
    spare = memory.available_bytes.min - memory.total_bytes * limits["host_memory_reserve_fraction"]
    findings = []
    for instance in _serving(summary):
        rate, current = instance.lookup_hit_rate, instance.max_local_cpu_size_bytes
        if rate is None or not current or instance.lookup_tokens < limits["lookup_tokens_min"]:
            continue
        if not (limits["hit_rate_min"] < rate < limits["hit_rate_max"]) or instance.evictions < limits["evictions_min"]:
            continue
        ranks = max(instance.worker_ranks or 1, 1)
        current_gb = current / GIB / ranks  # the instance's capacity is the per-process size x worker ranks
        proposed = raised_cpu_size_gb(current_gb, spare / ranks, limits)
        if proposed is None:
            continue
        per_process = f" per process ({ranks} workers)" if ranks > 1 else ""
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.WARNING,
                target=lmcache_target(instance),
                text=f"LMCache {instance.instance} finds {rate:.0%} of looked-up tokens and evicted {instance.evictions:,.0f} times; "
                f"raise {MAX_LOCAL_CPU_SIZE} from {current_gb:g} to {proposed} GB{per_process}",
                evidence=[
                    evidence(summary, "lmcache.lookup_hit_rate", "window", rate, limits["hit_rate_max"], "<"),
                    evidence(summary, "lmcache.evictions", "increase", instance.evictions, limits["evictions_min"]),
                    evidence(summary, "memory.spare_bytes", "min", spare, (proposed - current_gb) * GIB * ranks, ">=", "B"),
                ],
                action=action(
                    ActionType.SET_LMCACHE_CONFIG,
                    instance=instance.instance,
                    key=MAX_LOCAL_CPU_SIZE,
                    value=str(proposed),
                    previous=f"{current_gb:g}",
                    runtimeEffective=False,
                ),
                impact=f"A {proposed / current_gb:.1f}x larger CPU tier keeps more reusable KV and saves prefill compute.",
                sensitive=lmcache_sensitive(instance),
            )
        )
    return findings


@rule(
    NEAR_FULL,
    actions=(ActionType.INVESTIGATE,),
    family="cache",
    category=Category.CACHE,
    weight=15,
    defaults={"usage_percent_p95_min": 95.0, "evictions_max": 0.0},
)
def usage_near_full(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """A CPU tier that is nearly full but has not started evicting will evict as soon as the
    working set grows. It is an early notice; once evictions hurt the hit rate,
    lmcache-low-hit-rate-evicting proposes a larger size."""
    limits = ctx.limits
    findings = []
    for instance in _serving(summary):
        usage = instance.local_cpu_usage_percent
        if usage is None or usage.p95 < limits["usage_percent_p95_min"] or instance.evictions > limits["evictions_max"]:
            continue
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.INFO,
                target=lmcache_target(instance),
                text=f"LMCache {instance.instance} CPU tier is {usage.p95:.0f}% full (p95) and about to evict",
                evidence=[evidence(summary, "lmcache.local_cpu_usage_percent", "p95", usage.p95, limits["usage_percent_p95_min"], unit="%")],
                action=action(ActionType.INVESTIGATE, hint=f"watch the hit rate; raise {MAX_LOCAL_CPU_SIZE} if it drops"),
                impact="Knowing the headroom avoids a hit-rate drop when traffic grows.",
                sensitive=lmcache_sensitive(instance),
            )
        )
    return findings


@rule(
    BACKEND,
    actions=(ActionType.CHECK_LMCACHE_BACKEND,),
    family="cache",
    category=Category.CACHE,
    weight=50,
    defaults={"remote_errors_min": 1.0, "retrieve_latency_p95_max": 0.5, "remote_ping_p95_max": 0.1},
)
def backend_degraded(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """Errors talking to the remote backend (Redis, Mooncake, ...), slow retrievals or a slow
    ping make cache hits cost more than recomputing the prefill. Check the backend. Failed
    gets on a backend that answers every ping and takes every put are timeouts, left to
    lmcache-remote-gets-timing-out when it is enabled; they count here only when
    blocking_timeout_secs is unknown or already at that rule's cap."""
    limits = ctx.limits
    timeout_limits = ctx.thresholds_of(remote_gets_timing_out)
    findings = []
    for instance in _serving(summary):
        signals: list[Evidence] = []
        errors = instance.remote_errors
        if timeout_limits is not None and backend_answers(instance, timeout_limits):
            # no ping errors, no put failures: every error is a failed get, at most a timeout to raise
            timeout = instance.blocking_timeout_seconds
            raisable = timeout is not None and timeout < math.floor(timeout_limits["blocking_timeout_cap_secs"])
            errors = 0.0 if raisable else (instance.remote_get_failures or 0.0)
        if errors >= limits["remote_errors_min"]:
            signals.append(evidence(summary, "lmcache.remote_errors", "increase", errors, limits["remote_errors_min"]))
        latency = instance.retrieve_latency_seconds
        if latency is not None and latency.p95 >= limits["retrieve_latency_p95_max"]:
            signals.append(evidence(summary, "lmcache.retrieve_latency_seconds", "p95", latency.p95, limits["retrieve_latency_p95_max"], unit="s"))
        ping = instance.remote_ping_seconds
        if ping is not None and ping.p95 >= limits["remote_ping_p95_max"]:
            signals.append(evidence(summary, "lmcache.remote_ping_seconds", "p95", ping.p95, limits["remote_ping_p95_max"], unit="s"))
        if not signals:
            continue
        backend = instance.remote_backend or "remote"
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.WARNING,
                target=lmcache_target(instance),
                text=f"LMCache {instance.instance} {backend} backend: "
                + ", ".join(f"{item.metric.removeprefix('lmcache.')} {item.statistic} {item.observed:g}" for item in signals),
                evidence=signals,
                action=action(ActionType.CHECK_LMCACHE_BACKEND, instance=instance.instance, backend=instance.remote_backend),
                impact="A healthy backend makes remote hits cheaper than recomputing prefills.",
                sensitive=lmcache_sensitive(instance),
            )
        )
    return findings


def backend_answers(instance: LMCacheInstanceSummary, limits: Mapping[str, float]) -> bool:
    """The remote backend answered pings in the window, every one of them and quickly, and took every put."""
    if not instance.remote_ping_successes or instance.remote_ping_errors is None or instance.remote_ping_errors > 0:
        return False  # no proof it answers, or it does not
    ping = instance.remote_ping_seconds
    if ping is not None and ping.p95 >= limits["remote_ping_p95_max"]:
        return False
    return instance.remote_put_failures is not None and instance.remote_put_failures == 0  # writes fail: the backend is in trouble


def timed_out_share(instance: LMCacheInstanceSummary) -> float | None:
    """How much of the time the failed gets would have waited, had each run into the timeout,
    the blocking gets did spend (lmcache:remote_time_to_get_sync, which LMCache observes for
    failed gets too): ~1 or more when the failures are timeouts, far below 1 when they are
    misses or errors that come back at once. None when the get time is not known."""
    failures, current, spent = instance.remote_get_failures, instance.blocking_timeout_seconds, instance.remote_get_time_seconds
    if not failures or not current or spent is None:
        return None
    return spent / (failures * current)


def raised_blocking_timeout(instance: LMCacheInstanceSummary, limits: Mapping[str, float]) -> int | None:
    """The new blocking_timeout_secs when the instance's failed remote gets are timeouts on a
    backend that answers (see remote_gets_timing_out), else None."""
    failures, current = instance.remote_get_failures, instance.blocking_timeout_seconds
    if failures is None or current is None or failures < limits["get_failures_min"]:
        return None
    if not backend_answers(instance, limits):
        return None
    share = timed_out_share(instance)
    if share is None or share < limits["timed_out_share_min"]:
        return None  # misses (or no get times): a longer timeout would only stall requests longer
    proposed = min(math.ceil(current * limits["growth_factor"]), math.floor(limits["blocking_timeout_cap_secs"]))
    return proposed if proposed > current else None


@rule(
    GET_TIMEOUTS,
    actions=(ActionType.SET_LMCACHE_CONFIG,),
    family="cache",
    category=Category.CACHE,
    weight=52,
    defaults={
        "get_failures_min": 5.0,
        "remote_ping_p95_max": 0.1,
        "timed_out_share_min": 0.8,
        "growth_factor": 2.0,
        "blocking_timeout_cap_secs": 20.0,
    },
)
def remote_gets_timing_out(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """LMCache's remote backend waits blocking_timeout_secs for each blocking get
    (`future.result(config.blocking_timeout_secs)` in RemoteBackend.get_blocking and
    batched_get_blocking) and counts a get that timed out, raised or came back empty in
    get_blocking_failed_count (LMCache 0.5.6). When those failures grow (counted since
    blocking_timeout_secs took its current value, so a raise is judged on what follows it)
    while the backend answers every health ping quickly and accepts every put, the backend is
    up. That alone does not make them timeouts: a get that comes back empty (a miss) counts
    too. LMCache observes every blocking get's time in lmcache:remote_time_to_get_sync (ms),
    failed ones included, so a timed-out get records about blocking_timeout_secs: only when
    the get time spent in the window is at least timed_out_share_min of failures x timeout
    are the failures timeouts (multi-MB chunks over a loaded link or a busy store); misses
    return fast and are left alone, and without the get time the rule does not fire. Each such get has already stalled the request for the whole
    timeout and is then recomputed anyway, and once get_blocking_failed_threshold (10)
    failures land in one health-check interval, LMCache's remote health check marks the
    engine unhealthy and, with the default recompute fallback, skips every store and
    retrieve for waiting_time_for_recovery (300 s). Raise blocking_timeout_secs (at most
    doubling, never beyond blocking_timeout_cap_secs) so that gets just over the limit
    complete. The cap protects time to first token: a blocking get holds the request's
    prefill for up to the timeout, so past a few seconds recomputing the prefill is faster
    than waiting for the cache; keep the cap at the longest stall the service's TTFT
    objective allows (default 20 s, LMCache's default timeout is 10 s):
    LMCache reads it on every get, so POST /conf changes it at once, no restart. Ping
    errors, slow pings or failed puts point at the backend instead and are left to
    lmcache-backend-degraded."""
    limits = ctx.limits
    findings = []
    for instance in _serving(summary):
        proposed = raised_blocking_timeout(instance, limits)
        current = instance.blocking_timeout_seconds
        if proposed is None or current is None:
            continue
        failures = instance.remote_get_failures or 0.0
        backend = instance.remote_backend or "remote"
        signals = [
            evidence(summary, "lmcache.remote_get_failures", "increase", failures, limits["get_failures_min"]),
            evidence(summary, "lmcache.remote_get_timed_out_share", "window", timed_out_share(instance) or 0.0, limits["timed_out_share_min"]),
            evidence(summary, "lmcache.remote_ping_successes", "increase", instance.remote_ping_successes or 0.0, 1),
            evidence(summary, "lmcache.remote_ping_errors", "increase", instance.remote_ping_errors or 0.0, 0, "<="),
            evidence(summary, "lmcache.blocking_timeout_seconds", "last", current, limits["blocking_timeout_cap_secs"], "<", "s"),
        ]
        if instance.remote_get_seconds is not None:
            signals.append(evidence(summary, "lmcache.remote_get_seconds", "p95", instance.remote_get_seconds.p95, current, ">=", "s"))
        if instance.remote_ping_seconds is not None:
            signals.append(evidence(summary, "lmcache.remote_ping_seconds", "p95", instance.remote_ping_seconds.p95,
                                    limits["remote_ping_p95_max"], "<", "s"))
        findings.append(
            make_finding(
                summary,
                ctx,
                severity=Severity.WARNING,
                target=lmcache_target(instance),
                text=f"LMCache {instance.instance}: {failures:,.0f} remote gets failed while the {backend} backend "
                f"answered every ping; raise {BLOCKING_TIMEOUT} from {current:g} to {proposed} s",
                evidence=signals,
                action=action(
                    ActionType.SET_LMCACHE_CONFIG,
                    instance=instance.instance,
                    key=BLOCKING_TIMEOUT,
                    value=str(proposed),
                    previous=f"{current:g}",
                    runtimeEffective=True,
                ),
                impact="Remote hits that now time out load instead of stalling the request for the whole timeout "
                "and then recomputing the prefill, and LMCache's health check stops bypassing the remote tier.",
                sensitive=lmcache_sensitive(instance),
            )
        )
    return findings


RULES = (unreachable, never_hit, low_hit_rate_evicting, usage_near_full, backend_degraded, remote_gets_timing_out)
