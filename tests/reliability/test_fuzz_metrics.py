"""Fuzzing the LMCache and serving-engine /metrics handling: only ExpositionError, never a crash.

Inputs are arbitrary text and the real expositions of tests/fixtures with a few lines broken.
What is returned holds finite numbers only (a NaN or inf would reach the report), and `combine`,
the window's reduction of it, never raises either.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resource_agent.lmcache import metrics as lmcache_metrics
from resource_agent.serving import metrics as serving_metrics
from tests.reliability.fuzzing import FUZZ, mutated

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LMCACHE = {name: (FIXTURES / "lmcache" / name).read_text() for name in ("scheduler.prom", "worker0.prom", "worker1.prom")}
SERVING = {path.name: path.read_text() for path in sorted((FIXTURES / "serving").glob("*.prom"))}


def _engine(name: str) -> str:
    return "sglang" if name.startswith("sglang") else "vllm"


def _check_lmcache(text: str) -> lmcache_metrics.PortMetrics | None:
    try:
        port = lmcache_metrics.parse_exposition(text)
    except lmcache_metrics.ExpositionError:
        return None
    assert all(math.isfinite(value) for by_rank in port.values.values() for value in by_rank.values())
    combined = lmcache_metrics.combine([port])
    numbers = [*combined.totals.values(), combined.local_cpu_usage_bytes, combined.local_disk_usage_bytes, combined.remote_ping_seconds]
    numbers += [value for histogram in combined.histograms.values() for value in (histogram.sum, histogram.count)]
    assert all(math.isfinite(value) for value in numbers if value is not None), numbers
    return port


def _check_serving(text: str, engine: str) -> list[serving_metrics.EngineMetrics] | None:
    try:
        groups = serving_metrics.parse_exposition(text, engine)
    except serving_metrics.ExpositionError:
        return None
    for group in groups:
        values = [*group.gauges.values(), *group.counters.values(), *group.finished_by_reason.values()]
        for histogram in group.histograms.values():
            assert len(histogram.counts) == len(histogram.bounds) + 1
            assert all(math.isfinite(bound) for bound in histogram.bounds)
            values += [*histogram.counts, histogram.sum]
        assert all(math.isfinite(value) for value in values), values
    return groups


@FUZZ
@given(st.text(max_size=2000))
def test_lmcache_arbitrary_text_raises_only_exposition_error(text: str) -> None:
    _check_lmcache(text)


@FUZZ
@given(st.sampled_from(sorted(LMCACHE)).flatmap(lambda name: mutated(LMCACHE[name])))
def test_lmcache_mutated_real_exposition_raises_only_exposition_error(text: str) -> None:
    _check_lmcache(text)


@FUZZ
@given(st.text(max_size=2000), st.sampled_from(["vllm", "sglang"]))
def test_serving_arbitrary_text_raises_only_exposition_error(text: str, engine: str) -> None:
    _check_serving(text, engine)


@FUZZ
@given(st.sampled_from(sorted(SERVING)).flatmap(lambda name: st.tuples(st.just(name), mutated(SERVING[name]))))
def test_serving_mutated_real_exposition_raises_only_exposition_error(case: tuple[str, str]) -> None:
    name, text = case
    _check_serving(text, _engine(name))


@pytest.mark.parametrize("name", sorted(LMCACHE))
def test_lmcache_one_bad_line_keeps_the_other_series(name: str) -> None:
    """A single unparseable sample line costs that series, not the whole scrape."""
    lines = LMCACHE[name].splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith("lmcache:num_requested_tokens_total"))
    lines[index] = 'lmcache:num_requested_tokens_total{role="worker" 12 garbage\n'
    port = lmcache_metrics.parse_exposition("".join(lines))
    assert "num_requested_tokens_total" not in port.values
    assert "num_hit_tokens_total" in port.values
    assert any("line" in problem for problem in port.problems)


@pytest.mark.parametrize("name", sorted(SERVING))
def test_serving_one_bad_line_keeps_the_other_series(name: str) -> None:
    lines = SERVING[name].splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if not line.startswith("#") and line.strip())
    broken = lines[index].split("{")[0]
    lines[index] = broken + '{model_name="x" 1 2 3 garbage\n'
    clean = _check_serving(SERVING[name], _engine(name))
    groups = _check_serving("".join(lines), _engine(name))
    assert clean and groups
    assert sum(len(g.histograms) for g in groups) == sum(len(g.histograms) for g in clean)


@pytest.mark.parametrize("le", ["0 .01", "abc", "NaN", "-Inf", ""])
def test_serving_histogram_with_a_bad_bound_is_skipped_not_fatal(le: str) -> None:
    """Regression (found by the fuzzer): float(le) raised ValueError out of parse_exposition."""
    body = (
        'vllm:num_requests_running{model_name="m"} 3.0\n'
        f'vllm:time_to_first_token_seconds_bucket{{le="{le}",model_name="m"}} 1.0\n'
        'vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} 2.0\n'
        'vllm:time_to_first_token_seconds_sum{model_name="m"} 0.5\n'
    )
    (group,) = serving_metrics.parse_exposition(body, "vllm")
    assert group.gauges["requests_running"] == 3.0
    assert "ttft" not in group.histograms


def test_non_finite_values_are_dropped_with_the_rest_kept() -> None:
    """Regression: serving kept +Inf gauges (only NaN was skipped); LMCache rejected the whole body for one."""
    (group,) = serving_metrics.parse_exposition('vllm:num_requests_running{model_name="m"} +Inf\nvllm:num_requests_waiting{model_name="m"} 2\n', "vllm")
    assert group.gauges == {"requests_waiting": 2.0}
    port = lmcache_metrics.parse_exposition('lmcache:local_cache_usage{role="worker",worker_id="0"} +Inf\nlmcache:num_hit_tokens_total{role="worker",worker_id="0"} 5\n')
    assert port.values == {"num_hit_tokens_total": {("worker", "0"): 5.0}}
    assert port.problems == ("non-finite value in lmcache:local_cache_usage",)
