"""Window maths: stats bounds and counter increases, by property."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resource_agent.api.summary import Stat
from resource_agent.node_agent.stats import SELECT_FROM, increase, p95_and_max, ratio_percent, stat

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


# --- against the plain definitions ------------------------------------------------------------------
# stat, increase and ratio_percent take C-level shortcuts (one fsum pass, a p95 selected among the top
# values of long columns, counter steps summed by reduce); these pin them to the textbook definitions.


def reference_stat(column: list[float | int | None]) -> tuple[str, ...] | None:
    """(mean, p95, max, min, last) as the reprs of the floats a Stat holds: bit for bit, -0.0 is not 0.0."""
    present = [v for v in column if v is not None and math.isfinite(v)]
    if not present:
        return None
    ordered = sorted(present)
    mean = min(max(math.fsum(present) / len(present), ordered[0]), ordered[-1])
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return tuple(repr(float(value)) for value in (mean, p95, ordered[-1], ordered[0], present[-1]))


def as_tuple(result: Stat | None) -> tuple[str, ...] | None:
    return None if result is None else tuple(repr(value) for value in (result.mean, result.p95, result.max, result.min, result.last))


def reference_increase(column: list[float | int | None]) -> float:
    total, previous = 0.0, None
    for value in column:
        if value is None or not math.isfinite(value):
            continue
        if previous is not None:
            total += value - previous if value >= previous else value
        previous = value
    return total


messy = st.one_of(st.none(), st.integers(-5, 5), st.sampled_from([0.0, -0.0, 2.5, math.nan, math.inf, -math.inf]), values)


@given(st.lists(messy, max_size=300))
def test_stat_equals_the_definition_on_short_messy_columns(column: list[float | int | None]) -> None:
    assert as_tuple(stat(column)) == reference_stat(column)


@given(
    base=st.lists(st.one_of(st.none(), st.integers(0, 50), st.floats(0, 100, allow_nan=False)), min_size=1, max_size=40),
    length=st.integers(SELECT_FROM, 3 * SELECT_FROM),
    period=st.integers(1, 64),
)
def test_stat_equals_the_definition_on_long_columns_with_ties_and_periods(base: list, length: int, period: int) -> None:
    # long enough to take the selection path; few distinct values (many ties) and periodic
    # layouts (which can mislead the strided probe) must still give the exact nearest rank
    column = [base[(i // period) % len(base)] for i in range(length)]
    assert as_tuple(stat(column)) == reference_stat(column)


def test_stat_selection_path_matches_sorting_on_random_and_sorted_columns() -> None:
    rng = random.Random(7)
    columns = [
        [rng.gauss(60, 15) for _ in range(17_280)],
        sorted(rng.random() for _ in range(5_000)),
        sorted((rng.random() for _ in range(5_000)), reverse=True),
        [float(i % 16 == 0) * 100 for i in range(4_096)],  # the probe (every 16th) sees only the top value
        [None if i % 3 else rng.randint(0, 10**12) for i in range(9_000)],
    ]
    for column in columns:
        assert as_tuple(stat(column)) == reference_stat(column)


def test_ties_report_the_value_sorting_puts_there() -> None:
    # -0.0 == 0.0 but serialises differently: min is the first of equal lowest values, max the last
    for column in ([0.0, -0.0], [-0.0, 0.0], [-1.0, 0.0, -0.0, -0.0], [-0.0] + [-1.0] * SELECT_FROM + [0.0, -0.0]):
        assert as_tuple(stat(column)) == reference_stat(column)


def test_p95_and_max_is_exact_for_every_length_around_the_threshold() -> None:
    rng = random.Random(11)
    for length in range(SELECT_FROM - 3, SELECT_FROM + 40):
        column = [rng.randint(0, 30) for _ in range(length)]
        ordered = sorted(column)
        assert p95_and_max(column) == (ordered[max(0, math.ceil(0.95 * length) - 1)], ordered[-1])


@given(st.lists(st.one_of(st.none(), st.integers(0, 10**6), st.floats(0, 1e9, allow_nan=False), st.just(math.nan))))
def test_increase_equals_the_definition_with_resets_gaps_and_ints(column: list[float | int | None]) -> None:
    result = increase(column)
    assert result == reference_increase(column) and type(result) is float


def test_increase_sums_the_steps_in_order() -> None:
    # steps of very different magnitudes, where the order of the additions shows in the last bits
    rng = random.Random(0)
    column = sorted(rng.random() * 10 ** rng.randint(0, 15) for _ in range(200))
    assert increase(column) == reference_increase(column)  # bit for bit, not approximately
    column[100] = 1.0  # a restart
    assert increase(column) == reference_increase(column)


@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 10**12), values), st.one_of(st.none(), st.integers(-3, 10**12), values))))
def test_ratio_percent_equals_the_definition(pairs: list[tuple]) -> None:
    numerators, denominators = [n for n, _ in pairs], [d for _, d in pairs]
    expected = [None if n is None or d is None or d <= 0 else 100.0 * n / d for n, d in pairs]
    assert ratio_percent(numerators, denominators) == expected


def test_ratio_percent_rejects_columns_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        ratio_percent([1.0], [1.0, 2.0])
