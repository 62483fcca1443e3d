"""Window maths: stats bounds and counter increases, by property."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from resource_agent.node_agent.stats import increase, ratio_percent, stat

values = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)
columns = st.lists(st.one_of(st.none(), values), min_size=1, max_size=200)


@given(columns)
def test_stat_bounds_hold_and_last_is_last(column: list[float | None]) -> None:
    result = stat(column)
    present = [v for v in column if v is not None]
    if not present:
        assert result is None
        return
    assert result is not None
    assert result.min <= result.mean <= result.max
    assert result.min <= result.p95 <= result.max
    assert result.last == present[-1]
    assert result.min == min(present) and result.max == max(present)


def test_p95_is_nearest_rank() -> None:
    result = stat(list(range(1, 101)))
    assert result is not None and result.p95 == 95 and result.mean == 50.5


def test_non_finite_values_are_dropped() -> None:
    result = stat([1.0, math.nan, 3.0, math.inf])
    assert result is not None and (result.min, result.max, result.last) == (1.0, 3.0, 3.0)


counters = st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=1e15)), max_size=200)


@given(counters)
def test_counter_increase_is_never_negative_and_exact_without_resets(column: list[float | None]) -> None:
    assert increase(column) >= 0
    monotonic = sorted(v for v in column if v is not None)
    if monotonic:
        assert math.isclose(increase(monotonic), monotonic[-1] - monotonic[0], rel_tol=1e-9, abs_tol=1e-3)


def test_counter_reset_counts_the_value_after_the_reset() -> None:
    # 100 -> 150 (+50), restart at 0 -> 20 (+20), -> 30 (+10)
    assert increase([100, 150, 20, 30]) == 80
    assert increase([5, None, 7]) == 2
    assert increase([]) == 0


def test_ratio_percent_skips_missing_and_zero_denominators() -> None:
    assert ratio_percent([1, None, 5, 2], [4, 4, 0, None]) == [25.0, None, None, None]
