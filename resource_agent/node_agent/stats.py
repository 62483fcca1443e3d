"""Pure window statistics: gauge stats and counter increases over a series.

Inputs are columns (one value per sample, `None` where the sample had no
value). Non-finite values (NaN, inf) are dropped: they cannot be serialised
to JSON and say nothing about the window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from resource_agent.api.summary import Stat

P95 = 0.95


def finite(values: Iterable[float | int | None]) -> list[float | int]:
    """The finite values of a column, in order."""
    present = [value for value in values if value is not None]
    if math.isfinite(math.fsum(present)):  # one C-level pass; filter value by value only when needed
        return present
    return [value for value in present if math.isfinite(value)]


def stat(values: Iterable[float | int | None]) -> Stat | None:
    """Mean, nearest-rank p95, max, min and last of a column; None when it holds no value."""
    present = finite(values)
    if not present:
        return None
    ordered = sorted(present)
    count = len(ordered)
    low, high = ordered[0], ordered[-1]
    mean = min(max(math.fsum(ordered) / count, low), high)  # fsum rounding must not escape [min, max]
    p95 = ordered[max(0, math.ceil(P95 * count) - 1)]
    return Stat(mean=mean, p95=p95, max=high, min=low, last=present[-1])


def increase(values: Iterable[float | int | None]) -> float:
    """Increase of a cumulative counter over the column, Prometheus-style.

    A value lower than the previous one is a reset (the counter restarted
    from zero), so it counts as increase in full. Gaps (`None`) are skipped.
    Never negative.
    """
    total = 0.0
    previous: float | None = None
    for value in finite(values):
        if previous is not None:
            total += value - previous if value >= previous else value
        previous = value
    return total


def last(values: Sequence[object | None]) -> object | None:
    """The last value that is not None."""
    for value in reversed(values):
        if value is not None:
            return value
    return None


def ratio_percent(numerators: Sequence[float | int | None], denominators: Sequence[float | int | None]) -> list[float | None]:
    """Per-sample numerator/denominator x 100; None where either is missing or the denominator is not positive."""
    return [
        None if n is None or d is None or d <= 0 else 100.0 * n / d
        for n, d in zip(numerators, denominators, strict=True)
    ]
