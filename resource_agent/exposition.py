"""Prometheus text exposition, read forgivingly: every sample that parses, and the lines that do not.

Shared by the LMCache and the serving-engine scrapers (an edge: it uses prometheus_client's parser).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

MAX_PROBLEMS = 20  # bad lines named per scrape


def parse_samples(text: str, wanted: Callable[[str], bool] | None = None) -> tuple[list[Sample], tuple[str, ...]]:
    """Every sample of the body; when the body does not parse, line by line, skipping (and naming) bad lines.

    prometheus_client's parser is all-or-nothing, so one torn or garbled line would cost the whole
    scrape; the second pass parses each sample line on its own (the family comments are not needed:
    samples are read by name and labels). `wanted`: parse only the lines it accepts (comments are then
    dropped too); the parser is pure Python, and a caller that reads a few series of a long exposition
    saves most of the time. Problems name the line numbers of the body either way."""
    kept: list[tuple[int, str]] | None = None  # (line number in the body, line) of the wanted lines
    if wanted is not None:
        kept = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if wanted(line)]
        text = "".join(f"{line}\n" for _, line in kept)
    try:
        return [sample for family in text_string_to_metric_families(text) for sample in family.samples], ()
    except (ValueError, TypeError, IndexError, KeyError):
        pass
    samples: list[Sample] = []
    problems: list[str] = []
    for number, line in kept if kept is not None else enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            samples += [sample for family in text_string_to_metric_families(line + "\n") for sample in family.samples]
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            if len(problems) < MAX_PROBLEMS:
                problems.append(f"line {number}: {str(exc)[:80]}")
    return samples, tuple(problems)
