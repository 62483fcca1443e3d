"""Fixtures: recorded LMCache expositions and simulated instances on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.demo.stack import free_port_block
from devtools.lmcache_simulator import SimulatedInstance
from resource_agent.lmcache.client import Scraper
from resource_agent.node_agent.collectors.base import CollectorContext
from resource_agent.node_agent.collectors.lmcache import LMCacheCollector

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lmcache"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_sim(clock: Clock) -> Iterator:
    started: list[SimulatedInstance] = []

    def make(profile: str = "healthy", workers: int = 2, **conf: object) -> SimulatedInstance:
        sim = SimulatedInstance(port=free_port_block(workers + 1), workers=workers, profile=profile, clock=clock, conf=conf)
        started.append(sim.start())
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def collect() -> Iterator:
    """Make lmcache collectors for URL specs (short timeouts); closed after the test."""
    made: list[LMCacheCollector] = []

    def make(*specs: str, budget: float = 1.0, timeout: float = 0.5, **kwargs: object) -> LMCacheCollector:
        collector = LMCacheCollector(CollectorContext(lmcache_urls=specs), scraper=Scraper(timeout=timeout, budget=budget), **kwargs)  # type: ignore[arg-type]
        made.append(collector)
        return collector

    yield make
    for collector in made:
        collector.close()
