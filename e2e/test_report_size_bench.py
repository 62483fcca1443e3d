"""bench/report_size.py: the report written through the agent's path to a local kube-apiserver and read back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devtools.devcluster.build import BuildError, ensure_binaries

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.cluster
def test_the_stored_report_meets_its_size_and_keeps_the_analysis(tmp_path: Path) -> None:
    try:
        ensure_binaries()
    except BuildError as exc:
        pytest.skip(f"local control plane unavailable: {exc}")
    doc = tmp_path / "PERFORMANCE.md"
    done = subprocess.run([sys.executable, "-m", "bench.report_size", "--write", str(doc)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "OK:   stored report read back" in done.stdout
    assert "OK:   the analysis of the read-back status finds the same as of the summary" in done.stdout
    text = doc.read_text()
    assert text.count("<!-- report-size -->") == 2 and "| reporter body, read back (stored) |" in text
