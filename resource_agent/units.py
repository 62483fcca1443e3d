"""Parsing durations such as "30s", "5m", "1h", "1d"."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration like "30s", "5m", "1.5h"; a bare number is seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number with s, m, h or d (e.g. 30s, 5m)")
    return float(match.group(1)) * _SECONDS[match.group(2) or "s"]
