"""Durations as Go and Kubernetes write them (`90s`, `1m30s`, `1h`, `500ms`), or plain seconds."""

from __future__ import annotations

import re
from typing import Annotated

import durationpy
from pydantic import BeforeValidator, Field

# Go's time.ParseDuration units (what Kubernetes' metav1.Duration accepts); durationpy also takes
# days and weeks, which Go and Kubernetes reject.
_GO_DURATION = re.compile(r"^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$")


def parse_duration(value: str | float | int) -> float:
    """Seconds from a Go duration (`1m30s`, `500ms`, `1h`) or a plain number of seconds; must be positive."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = value.strip()
        if _GO_DURATION.match(text):
            seconds = durationpy.from_str(text).total_seconds()
        else:
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 5s, 1m30s, 1h)") from None
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


def _to_seconds(value: object) -> object:
    return parse_duration(value) if isinstance(value, (str, int, float)) else value


Duration = Annotated[float, BeforeValidator(_to_seconds), Field(description="duration: 90s, 1m30s, 1h, or seconds")]
