"""Prometheus text exposition, read forgivingly: every sample that parses, and the lines that do not.

Shared by the LMCache and the serving-engine scrapers (an edge: it uses prometheus_client's parser).
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

MAX_PROBLEMS = 20  # bad lines named per scrape


def parse_samples(text: str) -> tuple[list[Sample], tuple[str, ...]]:
    """Every sample of the body; when the body does not parse, line by line, skipping (and naming) bad lines.

    prometheus_client's parser is all-or-nothing, so one torn or garbled line would cost the whole
    scrape; the second pass parses each sample line on its own (the family comments are not needed:
    samples are read by name and labels)."""
    try:
        return [sample for family in text_string_to_metric_families(text) for sample in family.samples], ()
    except (ValueError, TypeError, IndexError, KeyError):
        pass
    samples: list[Sample] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            samples += [sample for family in text_string_to_metric_families(line + "\n") for sample in family.samples]
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            if len(problems) < MAX_PROBLEMS:
                problems.append(f"line {number}: {str(exc)[:80]}")
    return samples, tuple(problems)
