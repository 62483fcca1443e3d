"""Prometheus metrics of LLM insight, registered in the registry given (the default one in the operator)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


class LLMMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.requests = Counter(
            "resource_agent_llm_requests_total",
            "Provider requests by outcome (ok, invalid, error).",
            ["provider", "outcome"],
            registry=registry,
        )
        self.tokens = Counter(
            "resource_agent_llm_tokens_total",
            "Tokens used, as reported by the provider.",
            ["provider", "kind"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "resource_agent_llm_cache_hits_total",
            "Insights served from the fingerprint cache without a request.",
            registry=registry,
        )
        self.skipped = Counter(
            "resource_agent_llm_skipped_total",
            "Insights not requested: budget_exhausted or rate_limited.",
            ["reason"],
            registry=registry,
        )
        self.errors = Counter(
            "resource_agent_llm_errors_total",
            "Failures: timeout, connection, rate_limited, server_error, client_error, bad_response, "
            "invalid_json, schema_violation.",
            ["reason"],
            registry=registry,
        )
        self.backoffs = Counter(
            "resource_agent_llm_backoffs_total",
            "Backoff periods started after a failed request: no requests to the provider until it ends.",
            registry=registry,
        )
        self.backoff_remaining = Gauge(
            "resource_agent_llm_backoff_remaining_seconds",
            "Seconds left of the current backoff period (0: requests allowed).",
            registry=registry,
        )
        self.duration = Histogram(
            "resource_agent_llm_request_duration_seconds",
            "Provider request time, SDK retries included.",
            ["provider"],
            buckets=(0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
            registry=registry,
        )
        self.daily_tokens_used = Gauge(
            "resource_agent_llm_daily_tokens_used",
            "Tokens used so far this UTC day (the budget's counter).",
            registry=registry,
        )
