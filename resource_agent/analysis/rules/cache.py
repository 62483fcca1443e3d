"""KV-cache (LMCache) rules, read from the summary's LMCache instances."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from resource_agent.analysis.policy import Policy
from resource_agent.analysis.registry import rule
from resource_agent.analysis.support import GIB, action, evidence, gib, lmcache_sensitive, lmcache_target, make_finding
from resource_agent.api.findings import ActionType, Category, Evidence, Finding, Severity
from resource_agent.api.summary import LMCacheInstanceSummary, NodeSummary

UNREACHABLE = "lmcache-unreachable"
NEVER_HIT = "lmcache-never-hit"
LOW_HIT_RATE = "lmcache-low-hit-rate-evicting"
NEAR_FULL = "lmcache-usage-near-full"
BACKEND = "lmcache-backend-degraded"

MAX_LOCAL_CPU_SIZE = "max_local_cpu_size"  # LMCache's setting, in GB (x 1024**3 bytes)


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
def unreachable(summary: NodeSummary, policy: Policy) -> list[Finding]:
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
                UNREACHABLE,
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
    defaults={"requested_tokens_min": 100000.0, "hit_rate_max": 0.01},
)
def never_hit(summary: NodeSummary, policy: Policy) -> list[Finding]:
    """A cache that serves many requests but (almost) never hits stores KV for nothing: the
    workload shares no prefixes. Turning it off frees the host memory it pins."""
    limits = policy.thresholds(NEVER_HIT)
    findings = []
    for instance in _serving(summary):
        rate = instance.token_hit_rate
        if rate is None or instance.requested_tokens < limits["requested_tokens_min"] or rate > limits["hit_rate_max"]:
            continue
        held = instance.max_local_cpu_size_bytes or (instance.local_cpu_usage_bytes.last if instance.local_cpu_usage_bytes else 0.0)
        findings.append(
            make_finding(
                summary,
                NEVER_HIT,
                severity=Severity.INFO,
                target=lmcache_target(instance),
                text=f"LMCache {instance.instance} hit {rate:.1%} of {instance.requested_tokens:,.0f} requested tokens",
                evidence=[
                    evidence(summary, "lmcache.token_hit_rate", "window", rate, limits["hit_rate_max"], "<="),
                    evidence(summary, "lmcache.requested_tokens", "increase", instance.requested_tokens, limits["requested_tokens_min"]),
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
        "requested_tokens_min": 10000.0,
        "hit_rate_min": 0.01,
        "hit_rate_max": 0.3,
        "evictions_min": 1.0,
        "host_memory_reserve_fraction": 0.2,
        "growth_factor": 2.0,
        "max_local_cpu_size_cap_gb": 256.0,
        "increase_min_gb": 1.0,
    },
)
def low_hit_rate_evicting(summary: NodeSummary, policy: Policy) -> list[Finding]:
    """A low hit rate while the cache keeps evicting means reusable KV is thrown out before it
    is reused: the cache is too small for the working set. When the host has spare memory
    (the lowest available memory in the window minus a reserve), raise max_local_cpu_size
    (in GB, as LMCache's config takes it): at most doubling, never beyond the spare memory or
    the policy cap. LMCache reads it at start, so the change is not runtime-effective.
    Caches that never hit are left to lmcache-never-hit."""
    limits = policy.thresholds(LOW_HIT_RATE)
    memory = summary.memory
    spare = memory.available_bytes.min - memory.total_bytes * limits["host_memory_reserve_fraction"]
    findings = []
    for instance in _serving(summary):
        rate, current = instance.token_hit_rate, instance.max_local_cpu_size_bytes
        if rate is None or not current or instance.requested_tokens < limits["requested_tokens_min"]:
            continue
        if not (limits["hit_rate_min"] < rate < limits["hit_rate_max"]) or instance.evictions < limits["evictions_min"]:
            continue
        current_gb = current / GIB
        proposed = raised_cpu_size_gb(current_gb, spare, limits)
        if proposed is None:
            continue
        findings.append(
            make_finding(
                summary,
                LOW_HIT_RATE,
                severity=Severity.WARNING,
                target=lmcache_target(instance),
                text=f"LMCache {instance.instance} hits {rate:.0%} of tokens and evicted {instance.evictions:,.0f} times; "
                f"raise {MAX_LOCAL_CPU_SIZE} from {current_gb:g} to {proposed} GB",
                evidence=[
                    evidence(summary, "lmcache.token_hit_rate", "window", rate, limits["hit_rate_max"], "<"),
                    evidence(summary, "lmcache.evictions", "increase", instance.evictions, limits["evictions_min"]),
                    evidence(summary, "memory.spare_bytes", "min", spare, (proposed - current_gb) * GIB, ">=", "B"),
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
def usage_near_full(summary: NodeSummary, policy: Policy) -> list[Finding]:
    """A CPU tier that is nearly full but has not started evicting will evict as soon as the
    working set grows. It is an early notice; once evictions hurt the hit rate,
    lmcache-low-hit-rate-evicting proposes a larger size."""
    limits = policy.thresholds(NEAR_FULL)
    findings = []
    for instance in _serving(summary):
        usage = instance.local_cpu_usage_percent
        if usage is None or usage.p95 < limits["usage_percent_p95_min"] or instance.evictions > limits["evictions_max"]:
            continue
        findings.append(
            make_finding(
                summary,
                NEAR_FULL,
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
def backend_degraded(summary: NodeSummary, policy: Policy) -> list[Finding]:
    """Errors talking to the remote backend (Redis, Mooncake, ...), slow retrievals or a slow
    ping make cache hits cost more than recomputing the prefill. Check the backend."""
    limits = policy.thresholds(BACKEND)
    findings = []
    for instance in _serving(summary):
        signals: list[Evidence] = []
        if instance.remote_errors >= limits["remote_errors_min"]:
            signals.append(evidence(summary, "lmcache.remote_errors", "increase", instance.remote_errors, limits["remote_errors_min"]))
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
                BACKEND,
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
