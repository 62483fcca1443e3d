"""Recordings: samples as JSON Lines, one `Sample` per line (see docs/recording-format.md)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from resource_agent.api.samples import Sample


class RecordingError(ValueError):
    """A recording that cannot be read; the message names the file, line and field."""


def sample_line(sample: Sample) -> str:
    """One recording line (camelCase keys, unknown values left out), without the newline."""
    return sample.model_dump_json(by_alias=True, exclude_none=True)


class RecordingWriter:
    """Appends samples to a JSON Lines file, flushing each line so a killed recorder loses at most one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def write(self, sample: Sample) -> None:
        self._file.write(sample_line(sample) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def write_recording(path: Path, samples: Iterable[Sample]) -> int:
    """Write samples to a new recording; returns how many were written."""
    path.write_text("")
    count = 0
    with RecordingWriter(path) as writer:
        for sample in samples:
            writer.write(sample)
            count += 1
    return count


def iter_recording(path: Path) -> Iterator[Sample]:
    """Samples of a recording in order; blank lines are skipped."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise RecordingError(f"cannot open recording {path}: {exc.strerror or exc}") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield Sample.model_validate_json(line)
            except ValidationError as exc:
                raise RecordingError(f"{path} line {number}: {_describe(exc)}") from exc


def read_recording(path: Path | str) -> list[Sample]:
    """All samples of a recording, oldest first; a bad line raises RecordingError naming line and field."""
    return list(iter_recording(Path(path)))


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error["loc"]) or "(line)"
        problems.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")
