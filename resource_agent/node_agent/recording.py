"""Recordings: samples as JSON Lines, one `Sample` per line (see docs/recording-format.md).

Reading validates each line with pydantic's JSON parser (`Sample.model_validate_json`),
which costs about what `json.loads` of the line does; what made reading a long
recording slow was the cyclic garbage collector traversing the samples already
read (see `read_recording`; bench/analyze_24h.py measures it).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from resource_agent.api.samples import Sample
from resource_agent.node_agent.window import WindowReducer, collection_paused


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


def iter_recording(path: Path | str) -> Iterator[Sample]:
    """Samples of a recording in order, one at a time; blank lines are skipped.

    A consumer that reduces samples as they come (and drops them) holds one at a time,
    and the garbage collector has nothing to do: each sample dies by reference count.
    """
    path = Path(path)
    try:
        handle = path.open("rb")  # bytes: pydantic parses them as they are, and bad UTF-8 is that line's error
    except OSError as exc:
        raise RecordingError(f"cannot open recording {path}: {exc.strerror or exc}") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.isspace():
                yield _sample(path, number, line)


def read_recording(path: Path | str) -> list[Sample]:
    """All samples of a recording, oldest first; a bad line raises RecordingError naming line and field.

    A day of an 8-GPU node is ~2.4 million container objects (about 1.3 GB). With the
    cyclic garbage collector running, every collection of the older generations would
    traverse all of them, again and again while reading and once or twice more after
    (seconds each). So the collector is paused while reading, and the objects alive at
    the end, the samples included, are moved to its permanent generation
    (`gc.freeze()`): samples hold no reference cycles and are freed by reference count
    as usual. The price: a reference cycle among the frozen objects is never collected
    once it becomes garbage, so a long-running process that reads many recordings
    should stream them with `iter_recording` instead.
    """
    with collection_paused():
        samples = list(iter_recording(path))
        gc.freeze()
    return samples


def reduce_recording(path: Path | str) -> WindowReducer:
    """A `WindowReducer` fed every sample of a recording as it is parsed; no sample is kept.

    Memory is that of the reducer's columns (a day of an 8-GPU node: ~170 MB of peak RSS
    instead of the 1.3 GB its samples take); a bad line raises RecordingError naming line
    and field. The cyclic garbage collector is paused while reading, since the columns
    grow by the million objects and each sample dies by reference count anyway.
    """
    reducer = WindowReducer()
    with collection_paused():
        for sample in iter_recording(path):
            reducer.add(sample)
    return reducer


def _sample(path: Path, number: int, line: bytes) -> Sample:
    try:
        return Sample.model_validate_json(line)
    except ValidationError as exc:
        raise RecordingError(f"{path} line {number}: {_describe(exc)}") from exc


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error["loc"]) or "(line)"
        problems.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")
