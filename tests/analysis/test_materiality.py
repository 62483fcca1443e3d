"""The report write cadence: a material change is written at once, an unchanged node once per heartbeat."""

from __future__ import annotations

from resource_agent.analysis.materiality import WriteCadence, report_digest
from resource_agent.api.samples import CollectorState, Sample, XidEvent
from resource_agent.api.summary import NodeSummary
from resource_agent.node_agent.window import summarize
from resource_agent.scenarios import DEFAULT_START, stream

HEARTBEAT = 300.0


def _windows(count: int, change=None) -> list[NodeSummary]:
    """`count` summaries of a sliding 60-sample window of healthy-busy, one per 12 samples (60 s)."""
    source = stream("healthy-busy", seed=0, hostname="n1", gpus=2)
    samples: list[Sample] = []
    found = []
    for step in range(60 + 12 * (count - 1)):
        sample = source.sample(step, DEFAULT_START + 5.0 * step)
        if change is not None:
            change(step, sample)
        samples.append(sample)
        if step >= 59 and (step - 59) % 12 == 0:
            found.append(summarize(samples[-60:], "n1"))
    return found


def _written(cadence: WriteCadence, summaries: list[NodeSummary]) -> list[int]:
    """The minutes at which the summaries (one a minute) are written."""
    minutes = []
    for minute, summary in enumerate(summaries):
        digest = cadence.due(summary, minute * 60.0)
        if digest is not None:
            cadence.written(digest, minute * 60.0)
            minutes.append(minute)
    return minutes


def test_statistics_moving_within_the_same_findings_are_not_material() -> None:
    first, later = _windows(6)[0], _windows(6)[5]
    assert first.gpu.devices[0].sm_utilization_percent != later.gpu.devices[0].sm_utilization_percent
    assert report_digest(first) == report_digest(later)


def test_an_unchanged_node_writes_once_per_heartbeat() -> None:
    assert _written(WriteCadence(HEARTBEAT), _windows(16)) == [0, 5, 10, 15]


def test_a_new_xid_and_a_failing_collector_are_written_at_once() -> None:
    def xid_at_minute_7(step: int, sample: Sample) -> None:
        if step == 59 + 12 * 7:
            assert sample.gpu is not None
            sample.gpu.devices[1].xid_events = [XidEvent(xid=79, timestamp=sample.timestamp)]

    assert _written(WriteCadence(HEARTBEAT), _windows(9, xid_at_minute_7)) == [0, 5, 7]

    def failing_from_minute_2(step: int, sample: Sample) -> None:
        if step >= 59 + 12 * 2:
            sample.collectors = [s.model_copy(update={"state": CollectorState.FAILED}) for s in sample.collectors]

    assert _written(WriteCadence(HEARTBEAT), _windows(4, failing_from_minute_2)) == [0, 2]


def test_a_write_that_failed_is_still_due() -> None:
    cadence = WriteCadence(HEARTBEAT)
    [summary] = _windows(1)
    assert cadence.due(summary, 0.0) is not None  # not marked written (the API server refused): due again
    assert cadence.due(summary, 60.0) is not None
