"""The soak benchmark's trend test (bench/soak.py) on synthetic series: it must catch growth and pass noise."""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


@pytest.fixture(scope="module")
def soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_soak", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_soak"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


TIMES = [5.0 * i for i in range(240)]  # 20 minutes at 5 s


def series(base: float, growth_percent: float, noise: float, seed: int = 0) -> list[float]:
    """`base` growing linearly by `growth_percent` over TIMES, plus gaussian noise of `noise`."""
    rng = random.Random(seed)
    span = TIMES[-1]
    return [base * (1 + growth_percent / 100 * t / span) + rng.gauss(0, noise) for t in TIMES]


def test_steady_growth_through_noise_is_growing(soak: ModuleType) -> None:
    found = soak.trend("operator", "rss_mib", TIMES, series(160, 20, 2))
    assert found.growing and 15 < found.growth_percent < 25 and found.t > 10


def test_flat_noise_is_not_growing(soak: ModuleType) -> None:
    for seed in range(20):
        found = soak.trend("operator", "rss_mib", TIMES, series(160, 0, 5, seed))
        assert not found.growing, found


def test_small_growth_is_significant_but_not_a_failure(soak: ModuleType) -> None:
    found = soak.trend("agent", "rss_mib", TIMES, series(160, 2, 0.1))
    assert found.t > soak.T_MIN and not found.growing  # real, but under GROWTH_PERCENT over the run


def test_large_swings_without_a_trend_are_not_growing(soak: ModuleType) -> None:
    values = [60 + 10 * math.sin(t / 30) for t in TIMES]  # asyncio tasks coming and going
    assert not soak.trend("operator", "asyncio_tasks", TIMES, values).growing


def test_constant_and_perfect_lines(soak: ModuleType) -> None:
    constant = soak.trend("agent", "fds", TIMES, [11.0] * len(TIMES))
    assert constant.slope_per_hour == 0 and constant.t == 0 and not constant.growing
    leak = soak.trend("agent", "fds", TIMES, [11.0 + t / 60 for t in TIMES])  # one fd a minute, exactly
    assert leak.growing and leak.t > 1e6 and leak.slope_per_hour == pytest.approx(60)


def test_too_few_samples_is_an_error(soak: ModuleType) -> None:
    with pytest.raises(ValueError, match="3 are needed"):
        soak.trend("agent", "fds", [0.0, 5.0], [1.0, 2.0])


def test_the_warm_up_is_left_out_and_every_series_is_judged(soak: ModuleType) -> None:
    samples = [{"t": t, "agent": {"rss_mib": 100 + (50 if t < 400 else 0), "fds": 11, "threads": 7},
                "operator": {"rss_mib": 160 + t / 10, "fds": 16, "threads": 9, "asyncio_tasks": 60}} for t in TIMES]
    result = {"problem": None, "samples": samples, "warmup": 1 / 3,
              "agent_report": {"lmcache_instances": 1, "serving_instances": 1, "collectors": {}}}
    status, found = soak.verdict(result)
    assert [(r.process, r.series) for r in found] == list(soak.SERIES)
    assert status == 1 and [r.series for r in found if r.growing] == ["rss_mib"]
    assert next(r for r in found if r.process == "agent" and r.series == "rss_mib").samples == len(TIMES) - 80
    result["agent_report"]["serving_instances"] = 0  # the real agent's collectors did not run: not a soak
    assert soak.verdict(result) == (2, []) and "serving" in result["problem"]
