"""The Agent: listeners every report interval, early reports on XID errors, slow listeners never delay sampling."""

from __future__ import annotations

import threading
import time

import pytest

from resource_agent.api.samples import Sample
from resource_agent.api.summary import NodeSummary
from resource_agent.node_agent.agent import Agent, AgentSettings
from resource_agent.node_agent.collectors.base import REGISTRY, Collector, CollectorContext, Registration
from resource_agent.node_agent.sampler import Sampler
from tests.node_agent.agent_samples import sample as built_sample


class Scripted(Collector):
    """Fills samples from the test builders; XID 79 on GPU 0 when asked."""

    name = "scripted"

    def __init__(self) -> None:
        self.step = 0
        self.xid_next = threading.Event()

    def update(self, sample: Sample) -> None:
        xids = {0: [79]} if self.xid_next.is_set() else None
        self.xid_next.clear()
        built = built_sample(self.step, xids=xids)
        sample.system, sample.gpu = built.system, built.gpu
        self.step += 1


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Scripted:
    collector = Scripted()
    monkeypatch.setitem(REGISTRY, "scripted", Registration("scripted", False, lambda context: collector))
    return collector


def _agent(report_interval: float) -> Agent:
    only = {name: name == "scripted" for name in REGISTRY}
    settings = AgentSettings(node_name="n", interval_seconds=0.05, window_seconds=1.0, report_interval_seconds=report_interval, min_early_report_gap_seconds=0.0)
    return Agent(Sampler(CollectorContext(), only), settings)


def test_window_capacity_from_durations() -> None:
    assert AgentSettings(node_name="n").window_capacity == 60


def test_listeners_get_summaries_and_a_failing_one_does_not_stop_others(scripted: Scripted) -> None:
    agent = _agent(report_interval=0.2)
    received: list[NodeSummary] = []

    def broken(summary: NodeSummary) -> None:
        raise RuntimeError("listener bug")

    agent.add_listener(broken)
    agent.add_listener(received.append)
    agent.start()
    time.sleep(0.7)
    agent.stop()
    assert len(received) >= 2 and received[-1].node_name == "n"
    assert received[-1].window.samples <= agent.window.capacity == 20


def test_xid_triggers_an_early_report_and_slow_listener_does_not_delay_sampling(scripted: Scripted) -> None:
    agent = _agent(report_interval=60.0)
    reported = threading.Event()
    seen: list[NodeSummary] = []

    def slow(summary: NodeSummary) -> None:
        seen.append(summary)
        reported.set()
        time.sleep(0.5)

    agent.add_listener(slow)
    agent.start()
    time.sleep(0.15)
    scripted.xid_next.set()
    assert reported.wait(2.0), "no early report after an XID error"
    steps_before = scripted.step
    time.sleep(0.3)  # the listener is still sleeping
    assert scripted.step > steps_before + 2
    agent.stop()
    assert seen[0].gpu.devices[0].xid_counts == {"79": 1}


def test_state_file_keeps_fatal_xids_across_an_agent_restart(scripted: Scripted, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    state = Path(tmp_path) / "faults.json"
    only = {name: name == "scripted" for name in REGISTRY}
    settings = AgentSettings(node_name="n", interval_seconds=0.05, window_seconds=1.0, state_file=state)
    first = Agent(Sampler(CollectorContext(), only), settings)
    scripted.xid_next.set()
    first.sample_once()
    assert first.report() is not None and state.exists()
    first.sampler.close()
    second = Agent(Sampler(CollectorContext(), only), settings)  # a restart on the same boot ("b007")
    summary = second.summary() if second.sample_once() else None
    assert summary is not None and [fault.xid for fault in summary.gpu.devices[0].faults] == [79]
    state.write_text("{not json")
    assert Agent(Sampler(CollectorContext(), only), settings).window.faults().faults("GPU-0000") == []  # a bad file starts afresh
