"""Recordings: streaming, reducing as they are read, errors that name the line, and the garbage collector around bulk reads."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from resource_agent.node_agent.recording import (
    RecordingError,
    iter_recording,
    read_recording,
    reduce_recording,
    sample_line,
    write_recording,
)
from resource_agent.node_agent.window import summarize
from tests.node_agent.agent_samples import sample


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "rec.jsonl"
    write_recording(path, [sample(step, gpus=2) for step in range(4)])
    return path


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Give the objects read_recording froze back to the collector, so the test process stays as it was."""
    yield
    gc.unfreeze()


def test_iter_recording_streams_and_fails_at_the_bad_line_only(recording: Path) -> None:
    lines = recording.read_text().splitlines()
    lines[2] = lines[2].replace('"timestamp":', '"timestamp":"soon","x":')
    recording.write_text("\n".join(lines) + "\n")
    stream = iter_recording(recording)
    assert [next(stream).timestamp, next(stream).timestamp] == [sample(0).timestamp, sample(1).timestamp]
    with pytest.raises(RecordingError, match=r"rec\.jsonl line 3: timestamp: Input should be a valid number"):
        next(stream)


def test_blank_lines_are_skipped_and_still_counted(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_text("\n".join([sample_line(sample(0)), "", "   ", sample_line(sample(1)), "{}", ""]) + "\n")
    with pytest.raises(RecordingError, match=r"line 5: timestamp: Field required"):
        read_recording(path)
    path.write_text("\n" + sample_line(sample(0)) + "\n\n")
    assert [s.timestamp for s in iter_recording(str(path))] == [sample(0).timestamp]


def test_invalid_utf8_is_an_error_of_its_line(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_bytes(sample_line(sample(0)).encode() + b'\n{"timestamp": 1, "system": {"hostname": "\xff"}}\n')
    with pytest.raises(RecordingError, match=r"line 2: \(line\): Invalid JSON: invalid unicode"):
        read_recording(path)


@pytest.mark.parametrize("enabled", [True, False])
def test_read_recording_restores_the_collector_and_freezes_what_it_read(recording: Path, unfrozen: None, enabled: bool) -> None:
    was_enabled = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        frozen_before = gc.get_freeze_count()
        samples = read_recording(recording)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was_enabled else gc.disable)()
    assert samples == [sample(step, gpus=2) for step in range(4)]
    assert gc.get_freeze_count() > frozen_before  # out of reach of later collections


def test_a_failed_read_restores_the_collector_and_freezes_nothing(recording: Path) -> None:
    recording.write_text(recording.read_text() + "not json\n")
    assert gc.isenabled()
    frozen_before = gc.get_freeze_count()
    with pytest.raises(RecordingError, match="line 5"):
        read_recording(recording)
    assert gc.isenabled() and gc.get_freeze_count() == frozen_before


def test_reduce_recording_summarises_what_reading_it_all_would(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    samples = [sample(step, gpus=2, xids={1: [79]} if step == 3 else None) for step in range(30)]
    write_recording(path, samples)
    assert gc.isenabled()
    reducer = reduce_recording(path)
    assert gc.isenabled()
    assert reducer.samples == 30 and reducer.hostname == samples[-1].system.hostname
    assert reducer.summary("n", "1.0") == summarize(read_recording(path), "n", "1.0") == summarize(samples, "n", "1.0")
    gc.unfreeze()


def test_reduce_recording_fails_at_the_bad_line_and_restores_the_collector(recording: Path) -> None:
    recording.write_text(recording.read_text() + '{"timestamp": 9, "system": {"hostname": "h"}}\n')
    with pytest.raises(RecordingError, match=r"rec\.jsonl line 5: system\.uptimeSeconds: Field required"):
        reduce_recording(recording)
    assert gc.isenabled()
    with pytest.raises(RecordingError, match="cannot open recording"):
        reduce_recording(recording.with_name("absent.jsonl"))
