"""resource_agent_operator_asyncio_tasks: the event loop's unfinished tasks, read from the scrape's thread."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from resource_agent.operator.metrics import OperatorMetrics


async def test_the_gauge_counts_the_loops_unfinished_tasks_from_another_thread() -> None:
    metrics = OperatorMetrics(CollectorRegistry())
    metrics.watch_loop(asyncio.get_running_loop())

    def scrape() -> float | None:  # the metrics server's thread, as in the operator
        return metrics.registry.get_sample_value("resource_agent_operator_asyncio_tasks")

    before = await asyncio.to_thread(scrape)
    assert before is not None and before >= 1  # this test's own task
    gate = asyncio.Event()
    waiting = [asyncio.create_task(gate.wait()) for _ in range(5)]
    await asyncio.sleep(0)
    assert await asyncio.to_thread(scrape) == before + 5
    gate.set()
    await asyncio.gather(*waiting)
    assert await asyncio.to_thread(scrape) == before
