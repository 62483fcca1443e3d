"""The scale benchmarks run (tiny sizes) and print ratios from one run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_operator_alone_prints_ratios_and_per_report_costs(tmp_path: Path) -> None:
    doc = tmp_path / "PERFORMANCE.md"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "operator_alone.py"), "--sizes", "20,60", "--reports", "60",
                             "--write", str(doc)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "CPU ms/report" in result.stdout and "× smallest" in result.stdout and "KiB/node" in result.stdout
    assert "x the figure at 20" in result.stdout
    text = doc.read_text()
    assert text.count("<!-- operator-alone -->") == 2 and "| 60 |" in text and "machine:" in text

