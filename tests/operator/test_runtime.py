"""What the operator costs per event outside its own work: kopf settings, logs, coverage without LISTs (no cluster)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import kopf
from prometheus_client import CollectorRegistry

from resource_agent.operator.actions import ActionExecutor
from resource_agent.operator.coverage import MISSING_RULE, STALE_RULE
from resource_agent.operator.handlers import NodeSeen, Operator, ReportSeen
from resource_agent.operator.metrics import OperatorMetrics
from resource_agent.operator.runtime import NoDiffBase, QuietHandlerSuccess, kopf_settings
from resource_agent.operator.settings import OperatorSettings


def test_no_diff_base_is_built_copied_or_stored() -> None:
    settings = kopf_settings(OperatorSettings(priority=1))
    storage = settings.persistence.diffbase_storage
    assert isinstance(storage, NoDiffBase)
    body = kopf.Body({"metadata": {"name": "n1"}, "spec": {"nodeName": "n1"}, "status": {"gpu": {"devices": [{}] * 8}}})
    essence = storage.build(body=body)
    assert essence == {} and storage.fetch(body=body) is None
    assert settings.persistence.progress_storage.clear(essence=essence) == {}  # what kopf does with it next


def test_handler_success_lines_are_dropped_and_everything_else_kept() -> None:
    quiet = QuietHandlerSuccess()

    def record(level: int, message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)

    assert not quiet.filter(record(logging.INFO, "Handler 'report_event' succeeded."))
    assert quiet.filter(record(logging.WARNING, "Handler 'report_event' succeeded."))
    assert quiet.filter(record(logging.INFO, "created gpu-node-1-thermal: GPU 0 throttles"))
    assert quiet.filter(record(logging.ERROR, "Handler 'report_event' failed with an exception."))


class EventsOnly:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def event(self, obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
        self.events.append((reason, obj["metadata"]["name"]))


async def no_summary(node: str) -> None:
    return None


async def test_coverage_reads_kopf_indexes_not_lists() -> None:
    """GPU nodes without a report and stale reports come from the report times kopf's index keeps."""
    store = EventsOnly()
    operator = Operator(OperatorSettings(priority=1, metrics_listen=None, health_listen=None), store,  # type: ignore[arg-type]
                        OperatorMetrics(CollectorRegistry()), ActionExecutor(no_summary))
    log = logging.getLogger("test")
    assert await operator._coverage_pass(log) == []  # no index handed over yet: nothing to say, no request
    now = time.time()
    operator._remember_indexes({
        "report_times": {"fresh": [ReportSeen("u1", now - 10)], "old": [ReportSeen("u2", now - 3600)],
                         "new": [ReportSeen("u3", None)]},
        "node_capacity": {"fresh": [NodeSeen("n1", 8)], "old": [NodeSeen("n2", 8)], "new": [NodeSeen("n3", 8)],
                          "bare": [NodeSeen("n4", 8)], "cpu": [NodeSeen("n5", 0)]},
    })
    findings = await operator._coverage_pass(log)
    assert sorted((f.rule, f.target.name) for f in findings) == [(MISSING_RULE, "bare"), (STALE_RULE, "old")]
    assert sorted(store.events) == [("NoResourceReport", "bare"), ("ReportStale", "old")]
    await operator._coverage_pass(log)
    assert len(store.events) == 2  # an Event when a condition starts, not every pass


class SlowEvents(EventsOnly):
    async def event(self, obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
        await asyncio.sleep(0.01)  # the API server takes its time: the next fleet pass starts meanwhile
        await super().event(obj, kind, reason, message)


async def test_overlapping_coverage_passes_post_each_event_once() -> None:
    store = SlowEvents()
    operator = Operator(OperatorSettings(priority=1, metrics_listen=None, health_listen=None), store,  # type: ignore[arg-type]
                        OperatorMetrics(CollectorRegistry()), ActionExecutor(no_summary))
    old = time.time() - 3600
    operator._remember_indexes({
        "report_times": {f"n{i}": [ReportSeen(f"u{i}", old)] for i in range(20)},
        "node_capacity": {f"n{i}": [NodeSeen(f"n{i}", 8)] for i in range(20)},
    })
    log = logging.getLogger("test")
    await asyncio.gather(operator._coverage_pass(log), operator._coverage_pass(log))
    assert sorted(store.events) == sorted(("ReportStale", f"n{i}") for i in range(20))


def _gauge(metrics: OperatorMetrics) -> dict[tuple[str, str], float]:
    return {(s.labels["severity"], s.labels["phase"]): s.value
            for metric in metrics.recommendations.collect() for s in metric.samples}


async def test_recommendations_gauge_is_kept_per_node_and_matches_a_full_count() -> None:
    from resource_agent.operator.records import index_entry

    metrics = OperatorMetrics(CollectorRegistry())
    operator = Operator(OperatorSettings(priority=1, metrics_listen=None, health_listen=None), EventsOnly(),  # type: ignore[arg-type]
                        metrics, ActionExecutor(no_summary))

    def entry(name: str, node: str, severity: str, phase: str) -> Any:
        return index_entry(name, {"nodeName": node, "severity": severity}, {"phase": phase}, {})

    index: dict[str, list[Any]] = {"a": [entry("a1", "a", "warning", "Open"), entry("a2", "a", "info", "Open")],
                                   "b": [entry("b1", "b", "warning", "Open")]}
    operator.export_index(index)  # type: ignore[arg-type]
    assert _gauge(metrics) == {("warning", "Open"): 2, ("info", "Open"): 1}
    index["a"] = [entry("a1", "a", "warning", "Resolved")]
    operator.export_index(index, ("a",))  # type: ignore[arg-type]  # a report of node a: only a is recounted
    assert _gauge(metrics) == {("warning", "Open"): 1, ("warning", "Resolved"): 1}  # the empty series is removed
    del index["b"]
    operator.export_index(index)  # type: ignore[arg-type]  # the fleet pass recounts every node
    assert _gauge(metrics) == {("warning", "Resolved"): 1}


async def test_concurrent_handlers_all_wait_for_the_one_checkpoint_load() -> None:
    """A report event and a Node event at start both ask for the checkpoints: the second must not go on
    with the empty history while the first load is in flight (it resolved a workload recommendation)."""
    import asyncio

    from resource_agent.api.usage import WorkloadRef, WorkloadUsageCheckpointStatus

    release = asyncio.Event()
    loads = 0

    class SlowCheckpoints:
        async def load(self) -> list[tuple[WorkloadRef, WorkloadUsageCheckpointStatus]]:
            nonlocal loads
            loads += 1
            await release.wait()
            return []

    operator = Operator(OperatorSettings(priority=1, metrics_listen=None, health_listen=None), EventsOnly(),  # type: ignore[arg-type]
                        OperatorMetrics(CollectorRegistry()), ActionExecutor(no_summary), checkpoints=SlowCheckpoints())  # type: ignore[arg-type]
    log = logging.getLogger("test")
    first = asyncio.create_task(operator._load_checkpoints(log))
    second = asyncio.create_task(operator._load_checkpoints(log))
    await asyncio.sleep(0.05)
    assert not second.done(), "a second caller went on before the load finished"
    release.set()
    await asyncio.gather(first, second)
    assert loads == 1 and operator._checkpoints_loaded
