"""docs/RELIABILITY.md: every test it cites exists, the page is what the generator writes, results render."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.reliability_doc import FAULT_FIGURES, NOT_RUN, PAGE, SOAK, cited, faults_markdown, marker, read_results, render

ROOT = PAGE.parents[1]


def collected(files: list[str]) -> set[str]:
    """The node ids pytest collects in `files`, without parameters."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {re.sub(r"\[.*$", "", line) for line in done.stdout.splitlines() if "::" in line}


def test_every_cited_test_exists() -> None:
    citations = cited()
    files = sorted({c.partition("::")[0] for c in citations})
    missing_files = [f for f in files if not (ROOT / f).is_file()]
    assert not missing_files, f"docs/RELIABILITY.md cites files that do not exist: {missing_files}"
    ids = collected(files)
    missing = [c for c in citations if c not in ids and not any(i.startswith(c + "::") for i in ids)]
    assert not missing, f"docs/RELIABILITY.md cites tests pytest does not collect (renamed?): {missing}"


def test_the_page_is_what_the_generator_writes() -> None:
    page = PAGE.read_text()
    assert render(page) == page, "docs/RELIABILITY.md is stale: run python -m devtools.reliability_doc"
    assert "## Soak (`bench/soak.py`)" in page  # a committed soak run


def test_a_section_without_results_keeps_what_the_page_has_or_says_not_run() -> None:
    fresh = render("")
    assert NOT_RUN[SOAK] in fresh and NOT_RUN[FAULT_FIGURES] in fresh
    with_soak = fresh.replace(NOT_RUN[SOAK], "## Soak\n\nfigures of a run")
    assert "figures of a run" in render(with_soak) and NOT_RUN[SOAK] not in render(with_soak)
    assert render(with_soak).count(marker(SOAK)) == 2


def test_fault_results_render_every_field_they_have(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    results.write_text('{"test": "e2e/test_faults.py::test_a", "recovery_seconds": 4.23456, "writes": 12}\n\n'
                       '{"test": "test_b", "recorded_at": "2026-12-02T03:42:58Z", '
                       '"figures": {"rss_before_bytes": 157491200, "phase": "after"}}\n')
    lines = faults_markdown(read_results(results), results.name)
    assert lines[4] == "| test | figures |"
    assert lines[6:] == ["| `e2e/test_faults.py::test_a` | recovery_seconds 4.235; writes 12 |",
                         "| `test_b` | rss_before_mib 150.2; phase after |"]
    page = render(PAGE.read_text(), faults=lines)
    assert "| `test_b` |" in page and render(page) == page  # kept on the next render without results


@pytest.mark.parametrize("line", ['{"recovery_seconds": 1}', "not json", "[1, 2]"])
def test_a_bad_results_line_is_an_error_naming_it(tmp_path: Path, line: str) -> None:
    results = tmp_path / "results.jsonl"
    results.write_text('{"test": "ok"}\n' + line + "\n")
    with pytest.raises(ValueError, match="line 2"):
        read_results(results)
