"""The insight workflow: findings -> cached, budgeted, redacted LLM explanation -> `Insight`.

`explain` never raises for provider or answer problems: it logs, counts and
returns None, and the rule-based recommendations stand on their own. After a
failed request (the SDK's retries spent, or two invalid answers) it sends
nothing until a backoff period ends (see `Backoff`), then one explanation at a
time until one succeeds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import date

from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import ValidationError

from resource_agent.api.findings import Finding
from resource_agent.api.insight import IMPACT_MAX, RISK_MAX, STEP_MAX, SUMMARY_MAX, Insight, InsightAnswer
from resource_agent.api.summary import NodeSummary
from resource_agent.api.timestamps import utc_now
from resource_agent.llm.budget import Backoff, Debouncer, InsightCache, RateLimiter, TokenBudget, utc_today
from resource_agent.llm.fingerprint import fingerprint, severities
from resource_agent.llm.metrics import LLMMetrics
from resource_agent.llm.prompts import (
    Message,
    answer_json_schema,
    build_messages,
    correction_messages,
    describe_validation_error,
)
from resource_agent.llm.providers import Provider, ProviderError, build_provider
from resource_agent.llm.redaction import Redactor
from resource_agent.llm.settings import LLMSettings

log = logging.getLogger(__name__)

ATTEMPTS = 2  # the first answer, and one retry with the validation error appended
CHARS_PER_TOKEN = 3  # a conservative prompt-size estimate for the budget check
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class AnswerError(Exception):
    """The model's text is not a valid InsightAnswer; `reason` is invalid_json or schema_violation."""

    def __init__(self, reason: str, problem: str) -> None:
        super().__init__(problem)
        self.reason = reason
        self.problem = problem


def parse_answer(text: str) -> InsightAnswer:
    """Validate the model's text (a ```json fence around it is tolerated)."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    try:
        data = json.loads(fenced.group(1) if fenced else stripped)
    except json.JSONDecodeError as error:
        raise AnswerError("invalid_json", f"not valid JSON ({error.msg} at character {error.pos})") from error
    if not isinstance(data, dict):
        raise AnswerError("schema_violation", "the answer must be a JSON object")
    try:
        return InsightAnswer.model_validate(data)
    except ValidationError as error:
        raise AnswerError("schema_violation", describe_validation_error(error)) from error


class InsightService:
    """Explains a node's findings with an LLM, within the configured cost limits."""

    def __init__(
        self,
        provider: Provider,
        settings: LLMSettings,
        metrics: LLMMetrics,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], date] = utc_today,
    ) -> None:
        self._provider = provider
        self._settings = settings
        self._metrics = metrics
        self._limiter = RateLimiter(settings.requests_per_minute, clock)
        self._budget = TokenBudget(settings.daily_token_budget, today)
        self._cache = InsightCache(settings.cache_size)
        self._debouncer = Debouncer(settings.debounce_seconds, clock)
        self._backoff = Backoff(settings.backoff_seconds, settings.backoff_max_seconds, clock)
        self._probing = False
        metrics.backoff_remaining.set_function(self._backoff.remaining)
        self._locks: dict[str, asyncio.Lock] = {}
        self._schema = answer_json_schema()

    def due(self, node_name: str, findings: Sequence[Finding]) -> bool:
        """Whether the node's findings should be explained now (see `Debouncer` for the rule)."""
        return self._debouncer.due(node_name, severities(findings))

    async def explain(
        self, node_name: str, findings: Sequence[Finding], summary: NodeSummary | None = None
    ) -> Insight | None:
        """One insight for the node's findings: from the cache, or one (at most two) provider requests.

        None when there are no findings, or when the provider, the answer, the
        rate limit, the budget or a backoff from a failing provider says no (logged and counted, never raised).
        """
        if not findings:
            return None
        key = fingerprint(node_name, findings)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                insight = self._cache.get(key)
                if insight is not None:
                    self._metrics.cache_hits.inc()
                else:
                    insight = await self._generate(node_name, findings, summary, key)
                    if insight is not None:
                        self._cache.put(key, insight)
        finally:
            if not lock.locked():
                self._locks.pop(key, None)
        if insight is not None:
            self._debouncer.mark(node_name, severities(findings))
        return insight

    async def explain_each(
        self, node_name: str, findings: Sequence[Finding], summary: NodeSummary | None = None
    ) -> dict[str, Insight]:
        """The node's insight for each finding's ResourceRecommendation name (empty when there is none).

        The insight is node-level: every recommendation of the node stores the same one.
        """
        insight = await self.explain(node_name, findings, summary)
        if insight is None:
            return {}
        return {finding.resource_name(): insight for finding in findings}

    async def close(self) -> None:
        await self._provider.close()

    async def _generate(
        self, node_name: str, findings: Sequence[Finding], summary: NodeSummary | None, key: str
    ) -> Insight | None:
        """After a failure, one explanation at a time tries the provider until one succeeds."""
        if not self._backoff.failures:
            return await self._ask(node_name, findings, summary, key)
        if self._probing:
            log.debug("LLM insight for %s skipped: another request tries the failing provider", node_name)
            return None
        self._probing = True
        try:
            return await self._ask(node_name, findings, summary, key)
        finally:
            self._probing = False

    async def _ask(
        self, node_name: str, findings: Sequence[Finding], summary: NodeSummary | None, key: str
    ) -> Insight | None:
        redactor = Redactor.for_findings(node_name, findings, summary, enabled=self._settings.redact)
        messages = build_messages(node_name, findings, summary, redactor)
        prompt_tokens = completion_tokens = 0
        latency = 0.0
        for _ in range(ATTEMPTS):
            if not self._may_send(messages):
                return None
            started = time.perf_counter()
            try:
                completion = await self._provider.complete(messages, self._schema)
            except ProviderError as error:
                self._count_failure("error", error.reason)
                log.warning("LLM insight for %s failed: %s", node_name, error)
                self._back_off(error.retry_after)
                return None
            finally:
                elapsed = time.perf_counter() - started
                latency += elapsed
                self._metrics.duration.labels(self._provider.name).observe(elapsed)
            prompt_tokens += completion.prompt_tokens
            completion_tokens += completion.completion_tokens
            self._record_tokens(completion.prompt_tokens, completion.completion_tokens)
            try:
                answer = parse_answer(completion.text)
            except AnswerError as error:
                self._count_failure("invalid", error.reason)
                log.warning("LLM insight for %s: invalid answer (%s)", node_name, error.problem)
                messages = [*messages, *correction_messages(completion.text, error.problem)]
                continue
            self._metrics.requests.labels(self._provider.name, "ok").inc()
            self._recovered()
            return _insight(
                answer, redactor, completion.model, self._provider.name, key, latency, prompt_tokens, completion_tokens
            )
        log.warning("LLM insight for %s: giving up after %d invalid answers", node_name, ATTEMPTS)
        self._back_off(None)
        return None

    def _may_send(self, messages: Sequence[Message]) -> bool:
        if self._backoff.remaining() > 0:
            log.debug("LLM insight skipped: backing off from the provider for %.0f s", self._backoff.remaining())
            return False
        prompt_chars = sum(len(message["content"]) for message in messages)
        worst_case = prompt_chars // CHARS_PER_TOKEN + self._settings.max_completion_tokens
        if not self._budget.allows(worst_case):
            self._metrics.skipped.labels("budget_exhausted").inc()
            log.info("LLM insight skipped: daily token budget of %d used up", self._budget.daily_tokens)
            return False
        if not self._limiter.try_acquire():
            self._metrics.skipped.labels("rate_limited").inc()
            log.info("LLM insight skipped: %d requests per minute reached", self._settings.requests_per_minute)
            return False
        return True

    def _back_off(self, retry_after: float | None) -> None:
        period = self._backoff.failed(retry_after)
        if period is not None:
            self._metrics.backoffs.inc()
            log.warning(
                "LLM provider %s failed %d time(s) in a row: no requests for %.0f s; recommendations go without insight",
                self._provider.name,
                self._backoff.failures,
                period,
            )

    def _recovered(self) -> None:
        if self._backoff.failures:
            log.info("LLM provider %s answers again after %d failed request(s)", self._provider.name, self._backoff.failures)
        self._backoff.succeeded()

    def _record_tokens(self, prompt: int, completion: int) -> None:
        self._budget.record(prompt + completion)
        self._metrics.tokens.labels(self._provider.name, "prompt").inc(prompt)
        self._metrics.tokens.labels(self._provider.name, "completion").inc(completion)
        self._metrics.daily_tokens_used.set(self._budget.used)

    def _count_failure(self, outcome: str, reason: str) -> None:
        self._metrics.requests.labels(self._provider.name, outcome).inc()
        self._metrics.errors.labels(reason).inc()


def build_insight_service(
    settings: LLMSettings, registry: CollectorRegistry = REGISTRY
) -> InsightService | None:
    """The service for these settings, or None when LLM insight is off (provider none, or misconfigured)."""
    provider = build_provider(settings)
    if provider is None:
        return None
    return InsightService(provider, settings, LLMMetrics(registry))


def _insight(
    answer: InsightAnswer,
    redactor: Redactor,
    model: str,
    provider: str,
    key: str,
    latency: float,
    prompt_tokens: int,
    completion_tokens: int,
) -> Insight:
    def restored(text: str, limit: int) -> str:
        return redactor.restore(text)[:limit]

    return Insight(
        summary=restored(answer.summary, SUMMARY_MAX),
        priority=answer.priority,
        steps=[restored(step, STEP_MAX) for step in answer.steps],
        expected_impact=restored(answer.expected_impact, IMPACT_MAX),
        risks=[restored(risk, RISK_MAX) for risk in answer.risks],
        confidence=answer.confidence,
        model=model[:200],
        provider=provider,
        latency_seconds=round(latency, 3),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        fingerprint=key,
        generated_at=utc_now().replace(microsecond=0),
    )
