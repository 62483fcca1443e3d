"""Cost control: a requests-per-minute limit, a daily token budget, an insight cache, a per-node debounce
and a backoff from a failing provider.

All five are pure in-memory state with injectable clocks, so tests drive time.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from resource_agent.api.insight import Insight
from resource_agent.llm.fingerprint import is_material_change

Identity = tuple[str, str, str]
JITTER = 0.2  # a backoff period is 80-100% of its nominal length, so operators restarted together spread out
RETRY_AFTER_MAX_SECONDS = 3600.0  # a longer Retry-After is taken as this


def utc_today() -> date:
    return datetime.now(UTC).date()


class RateLimiter:
    """At most `per_minute` requests in any sliding 60 s window; never waits."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._sent: deque[float] = deque()

    def try_acquire(self) -> bool:
        now = self._clock()
        while self._sent and now - self._sent[0] >= 60.0:
            self._sent.popleft()
        if len(self._sent) >= self._per_minute:
            return False
        self._sent.append(now)
        return True


class TokenBudget:
    """Tokens (prompt + completion) per UTC day. A request starts only if its worst case still fits."""

    def __init__(self, daily_tokens: int, today: Callable[[], date] = utc_today) -> None:
        self.daily_tokens = daily_tokens
        self._today = today
        self._day = today()
        self._used = 0

    @property
    def used(self) -> int:
        self._roll()
        return self._used

    def allows(self, estimated_tokens: int) -> bool:
        return self.used + estimated_tokens <= self.daily_tokens

    def record(self, tokens: int) -> None:
        self._roll()
        self._used += tokens

    def _roll(self) -> None:
        today = self._today()
        if today != self._day:
            self._day, self._used = today, 0


class InsightCache:
    """Least-recently-used insights by findings fingerprint; size 0 turns it off."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, Insight] = OrderedDict()

    def get(self, fingerprint: str) -> Insight | None:
        insight = self._entries.get(fingerprint)
        if insight is not None:
            self._entries.move_to_end(fingerprint)
            return insight.model_copy(deep=True)
        return None

    def put(self, fingerprint: str, insight: Insight) -> None:
        if self._size == 0:
            return
        self._entries[fingerprint] = insight.model_copy(deep=True)
        self._entries.move_to_end(fingerprint)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


@dataclass
class _Explained:
    at: float
    severities: Mapping[Identity, int]


class Debouncer:
    """Per node: explain again only after `seconds`, unless the findings changed materially.

    Due when the node was never explained, when `seconds` have passed since its
    last explanation, or when a finding appeared or got more severe since then.
    Findings that resolved or became milder wait for the period.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._last: dict[str, _Explained] = {}

    def due(self, node_name: str, severities: Mapping[Identity, int]) -> bool:
        last = self._last.get(node_name)
        if last is None or self._clock() - last.at >= self._seconds:
            return True
        return is_material_change(last.severities, severities)

    def mark(self, node_name: str, severities: Mapping[Identity, int]) -> None:
        self._last[node_name] = _Explained(self._clock(), dict(severities))

    def forget(self, node_name: str) -> None:
        self._last.pop(node_name, None)


class Backoff:
    """No requests for a while after a failure: `seconds` doubling per consecutive failure up to `max_seconds`.

    Each period is cut by up to `JITTER`; a longer Retry-After from the provider wins (at most an hour).
    A failure while a period runs (a request sent before it began) does not extend it; a success ends it.
    """

    def __init__(
        self,
        seconds: float,
        max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._seconds = seconds
        self._max_seconds = max_seconds
        self._clock = clock
        self._jitter = jitter
        self.failures = 0
        self._until = 0.0

    def remaining(self) -> float:
        return max(self._until - self._clock(), 0.0)

    def failed(self, retry_after: float | None = None) -> float | None:
        """Count a failure; the length of the period it starts, or None when one already runs or backoff is off."""
        if self._seconds <= 0 or self.remaining() > 0:
            return None
        self.failures += 1
        nominal = min(self._seconds * 2.0 ** min(self.failures - 1, 32), self._max_seconds)
        period = max(nominal * (1 - JITTER * self._jitter()), min(retry_after or 0.0, RETRY_AFTER_MAX_SECONDS))
        self._until = self._clock() + period
        return period

    def succeeded(self) -> None:
        self.failures, self._until = 0, 0.0
