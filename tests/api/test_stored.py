"""The stored report keeps what its readers read: the table in `api.stored` against measured reads, and the
findings on the stored form against those on the full summary for every scenario (the evaluation cases:
tests/evaluation/test_evaluation.py)."""

from __future__ import annotations

import math

import pytest

from devtools import report_fields
from resource_agent.analysis.engine import analyze
from resource_agent.api.stored import DROPPED_FIELDS, KEPT_STATS, stored_form
from resource_agent.api.summary import GpuSection, NodeSummary, Stat
from tests.evaluation import scorer

ENGINE_PROFILES = ("kv-bound", "idle")  # a simulated vLLM engine with findings, and one without requests


@pytest.fixture(scope="module")
def summaries() -> list[tuple[str, NodeSummary]]:
    return list(report_fields.case_summaries(ENGINE_PROFILES))


def _findings(summary: NodeSummary) -> set[tuple[str, str, str]]:
    return {(f.rule, f.target.key(), f.severity.value) for f in analyze(summary).findings}


def test_every_read_of_every_reader_is_kept(summaries: list[tuple[str, NodeSummary]]) -> None:
    """A rule (or operator reader) that starts reading a statistic member or a field the stored report leaves
    out fails here: add it to KEPT_STATS (or take it out of DROPPED_FIELDS) after review."""
    kept = {(f"{model.__name__}.{name}", member) for (model, name), members in KEPT_STATS.items() for member in members}
    dropped = {(model.__name__, name) for model, name in DROPPED_FIELDS}
    reads: set[tuple[str, str]] = set()
    for _, summary in summaries:
        with report_fields.traced(summary) as seen:
            report_fields.read_everything(summary)
        reads |= seen
    stat_reads = {read for read in reads if "." in read[0]}
    assert stat_reads, "the tracing saw no statistic read"
    assert stat_reads <= kept, f"read but not stored: {sorted(stat_reads - kept)}"
    assert not reads & dropped, f"read but dropped: {sorted(reads & dropped)}"


def test_findings_on_the_stored_form_equal_those_on_the_summary(summaries: list[tuple[str, NodeSummary]]) -> None:
    scenarios = [(name, summary) for name, summary in summaries if name.startswith("scenario")]
    assert len(scenarios) >= 12 * len(ENGINE_PROFILES)
    for name, summary in scenarios:
        assert _findings(scorer.stored(summary)) == _findings(summary), name


def test_absent_members_read_as_nan_and_are_never_dumped() -> None:
    stat = Stat.model_validate({"mean": 1.5})
    assert stat.mean == 1.5 and math.isnan(stat.p95) and not stat.p95 > 0
    assert stat.to_wire() == {"mean": 1.5} and stat.model_dump_json() == '{"mean":1.5}'


def test_shared_gpu_fields_are_read_back_into_every_device_and_a_device_value_wins() -> None:
    section = GpuSection.model_validate({
        "available": True,
        "shared": {"name": "NVIDIA H100", "powerLimitWatts": 700},
        "devices": [{"index": 0, "uuid": "GPU-a"}, {"index": 1, "uuid": "GPU-b", "powerLimitWatts": 500}],
    })
    assert [(d.name, d.power_limit_watts) for d in section.devices] == [("NVIDIA H100", 700), ("NVIDIA H100", 500)]
    assert section.shared is None
    assert stored_form(section)["shared"] == {"name": "NVIDIA H100"}  # 700 vs 500: not shared
