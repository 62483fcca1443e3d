"""Hypothesis strategies shared by the fuzz tests: arbitrary text and mutations of real inputs.

Every fuzz test runs a bounded, derandomized number of examples (CI time is fixed and a
failure must reproduce); `RELIABILITY_FUZZ_EXAMPLES` raises the count for a longer local run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# characters a broken file plausibly holds: digits, separators, Prometheus syntax, unicode digits and spaces, NUL
NASTY_CHARS = st.sampled_from([*"0123456789 \t\n:=.,-+_{}\"\\#eEaInfN", "²", "٣", "\u00a0", "\u2028", "\x00", "\ufeff"])
NASTY_WORDS = st.sampled_from(["NaN", "+Inf", "-Inf", "1e309", "-1", "99999999999999999999999", "1_0", " ", "=", "le=", '"'])
NASTY = st.one_of(NASTY_CHARS, NASTY_WORDS)
FIELD_TEXT = st.lists(st.one_of(NASTY, st.text(alphabet=st.characters(codec="utf-8"), max_size=5)), max_size=8).map("".join)


@st.composite
def mutated(draw: st.DrawFn, original: str, max_mutations: int = 4) -> str:
    """`original` with a few lines broken: a character inserted, deleted or replaced, a line cut,
    duplicated, replaced by garbage, or the file truncated."""
    lines = original.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, max_mutations))):
        if not lines:
            break
        index = draw(st.integers(0, len(lines) - 1))
        line = lines[index]
        kind = draw(st.sampled_from(["insert", "delete", "replace", "cut", "duplicate", "garbage", "truncate"]))
        at = draw(st.integers(0, max(0, len(line) - 1)))
        if kind == "insert":
            lines[index] = line[:at] + draw(FIELD_TEXT) + line[at:]
        elif kind == "delete":
            lines[index] = line[:at] + line[at + 1 :]
        elif kind == "replace":
            lines[index] = line[:at] + draw(NASTY) + line[at + 1 :]
        elif kind == "cut":
            lines[index] = line[:at] + "\n"
        elif kind == "duplicate":
            lines.insert(index, line)
        elif kind == "garbage":
            lines[index] = draw(FIELD_TEXT) + "\n"
        else:
            lines = lines[:index]
    return "".join(lines)
