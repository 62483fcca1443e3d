"""Figures measured by the fault tests, as JSON lines, for the reliability report.

When ``RELIABILITY_RESULTS=<path>`` is set, :func:`record` appends one line per
call to that file (created with its parent folders); otherwise it does nothing.
Each line is one JSON object:

    {"test": "apiserver_killed", "recorded_at": "2026-12-02T03:00:00Z", "figures": {"recovery_seconds": 4.2, ...}}

- ``test``: a stable name of the fault, the same on every run;
- ``recorded_at``: UTC time of the record, ISO 8601 with a ``Z``;
- ``figures``: name -> number (or string/bool/null): seconds end in ``_seconds``,
  memory in ``_bytes``, counts end in ``_count`` or are plain counts such as ``writes``;
  bounds the test asserted are recorded too, ending in ``_bound``.

A test records once per run; a reader keeps every line (runs append).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

ENV = "RELIABILITY_RESULTS"
Figure = float | int | str | bool | None


def record(test_name: str, **figures: Figure) -> None:
    """Append ``{"test", "recorded_at", "figures"}`` to ``$RELIABILITY_RESULTS`` (when set) and print it."""
    line = json.dumps({
        "test": test_name,
        "recorded_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "figures": figures,
    }, sort_keys=True)
    print(f"reliability: {line}")
    target = os.environ.get(ENV)
    if not target:
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
