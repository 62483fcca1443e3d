"""Pure window statistics: gauge stats and counter increases over a series.

Inputs are columns (one value per sample, `None` where the sample had no
value). Non-finite values (NaN, inf) are dropped: they cannot be serialised
to JSON and say nothing about the window.

These run on every column of every summary, and a replay of a day of an
8-GPU node has ~160 columns of 17,280 values. So a clean column costs a few
C-level passes (`math.fsum`, `min`, one filter) and the p95 of a long column
is selected among its top values instead of sorting all of them; the results
are exactly those of the plain definitions (sort, pick the nearest rank).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import reduce
from itertools import compress, pairwise, repeat
from operator import add, le, mul, sub, truediv
from typing import Any, TypeVar

from resource_agent.api.summary import Stat

P95 = 0.95
SELECT_FROM = 2048  # columns at least this long select the p95 among their top values
_PROBE_STRIDE = 16  # every 16th value estimates where the top values start
_PROBE_MARGIN = 0.05  # the estimate aims 5 percentage points below the rank, so it is rarely above it

Number = float | int
T = TypeVar("T")
Row = tuple[Any, ...]  # one sample's values of a section, in column order (reducers zip rows into columns)


def finite(values: Iterable[Number | None]) -> Sequence[Number]:
    """The finite values of a column, in order."""
    return _finite_and_sum(values)[0]


def _finite_and_sum(values: Iterable[Number | None]) -> tuple[Sequence[Number], float]:
    """The finite values of a column and their exactly rounded sum.

    A clean column (no None, all finite) costs one `math.fsum` pass and no copy;
    None and non-finite values are filtered out only when that pass finds some.
    """
    present = values if isinstance(values, list | tuple) else list(values)
    total = _clean_sum(present)
    if total is None:
        present = [value for value in present if value is not None and math.isfinite(value)]
        total = math.fsum(present)
    return present, total


def _clean_sum(values: Sequence[Number | None]) -> float | None:
    """`math.fsum` of the column; None when it holds a None, a NaN or an infinity."""
    try:
        total = math.fsum(values)  # type: ignore[arg-type]  # fast path: a None raises TypeError, caught below
    except (TypeError, ValueError):  # a None; inf + -inf
        return None
    return total if math.isfinite(total) else None


def stat(values: Iterable[Number | None]) -> Stat | None:
    """Mean, nearest-rank p95, max, min and last of a column; None when it holds no value."""
    present, total = _finite_and_sum(values)
    count = len(present)
    if not count:
        return None
    low = min(present)
    p95, high = p95_and_max(present)
    mean = min(max(total / count, low), high)  # fsum rounding must not escape [min, max]
    return Stat(mean=mean, p95=p95, max=high, min=low, last=present[-1])


def p95_rank(count: int) -> int:
    """Index of the nearest-rank 95th percentile in a sorted column of `count` values."""
    return max(0, math.ceil(P95 * count) - 1)


def p95_and_max(values: Sequence[Number]) -> tuple[Number, Number]:
    """`sorted(values)[p95_rank(len(values))]` and the maximum of a non-empty column of numbers.

    A long column is not sorted: a strided probe estimates a value `guess` a
    little below the p95, one C-level filter keeps the values >= guess (a
    suffix of the sorted column, ~10% of it), and only those are sorted. The
    suffix holds the rank exactly when it is at least `count - rank` long;
    when the probe was unlucky (a period in the data) the column is sorted.
    """
    count = len(values)
    rank = p95_rank(count)
    if count < SELECT_FROM:
        ordered = sorted(values)
        return ordered[rank], ordered[-1]
    probe = sorted(values[::_PROBE_STRIDE])
    guess = probe[max(0, len(probe) * rank // count - int(_PROBE_MARGIN * len(probe)))]
    top = list(compress(values, map(le, repeat(guess), values)))
    at_or_above_rank = count - rank
    if len(top) < at_or_above_rank:
        top = sorted(values)
    else:
        top.sort()
    return top[len(top) - at_or_above_rank], top[-1]


def increase(values: Iterable[Number | None]) -> float:
    """Increase of a cumulative counter over the column, Prometheus-style.

    A value lower than the previous one is a reset (the counter restarted
    from zero), so it counts as increase in full. Gaps (`None`) and
    non-finite values are skipped. Never negative.
    """
    column = values if isinstance(values, list | tuple) else list(values)
    if _steady(column):  # the usual case: the steps, summed in C in the same order as the loop below
        return reduce(add, map(sub, column[1:], column[:-1]), 0.0)
    present = finite(column)
    total = 0.0
    for previous, value in pairwise(present):
        total += value - previous if value >= previous else value
    return total


def _steady(column: Sequence[Number | None]) -> bool:
    """True when the column has no gap, no reset and no non-finite value."""
    if not column:
        return True
    try:
        # rising (False at a reset or a NaN), so an infinity could only be the first or the last value
        return all(map(le, column[:-1], column[1:])) and math.isfinite(column[0]) and math.isfinite(column[-1])  # type: ignore[arg-type]  # a None raises TypeError
    except TypeError:  # a None
        return False


def last(values: Sequence[T | None]) -> T | None:
    """The last value that is not None."""
    for value in reversed(values):
        if value is not None:
            return value
    return None


def ratio_percent(numerators: Sequence[Number | None], denominators: Sequence[Number | None]) -> list[float | None]:
    """Per-sample numerator/denominator x 100; None where either is missing or the denominator is not positive."""
    if len(numerators) != len(denominators):
        raise ValueError(f"ratio of columns of different lengths ({len(numerators)} and {len(denominators)})")
    try:
        if not denominators or min(denominators) > 0:  # type: ignore[type-var, operator]  # fast path: a None raises TypeError, see below
            return list(map(truediv, map(mul, repeat(100.0), numerators), denominators))
    except TypeError:  # a None in a column: the general case below
        pass
    return [None if n is None or d is None or d <= 0 else 100.0 * n / d for n, d in zip(numerators, denominators, strict=True)]
