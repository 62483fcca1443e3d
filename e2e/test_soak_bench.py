"""bench/soak.py for a short real run: the control plane, the fleet, the agent and the operator, sampled and judged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.devcluster.build import BuildError, ensure_binaries

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.cluster
def test_short_soak_samples_and_judges_every_series(tmp_path: Path) -> None:
    try:
        ensure_binaries()
    except BuildError as exc:
        pytest.skip(f"local control plane unavailable: {exc}")
    result_path, page = tmp_path / "soak.json", tmp_path / "RELIABILITY.md"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "1", "--nodes", "5",
                           "--report-seconds", "5", "--sample-seconds", "3", "--json", str(result_path), "--write", str(page)],
                          capture_output=True, text=True, timeout=400, check=False)
    # 1 is a growth verdict, which one minute right after the start may give; 2 (or a crash) is a broken run
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-5000:]
    result = json.loads(result_path.read_text())
    assert [(t["process"], t["series"]) for t in result["trends"]] == [
        ("agent", "rss_mib"), ("agent", "fds"), ("agent", "threads"),
        ("operator", "rss_mib"), ("operator", "fds"), ("operator", "threads"), ("operator", "asyncio_tasks")]
    assert all(t["samples"] >= 8 for t in result["trends"])
    assert next(t for t in result["trends"] if t["series"] == "asyncio_tasks")["low"] > 0  # the operator's gauge
    assert result["fleet"]["writes"] >= 5 * 8 and result["fleet"]["failures"] == 0
    assert result["reconciles"] and result["reconciles"] >= 5  # every node at least once (fewer than writes: kopf keeps the latest)
    assert result["agent_report"]["collectors"] == {"lmcache": "ok", "scenario": "ok", "serving": "ok"}
    assert "| operator | asyncio_tasks |" in done.stdout and "## Soak (`bench/soak.py`)" in page.read_text()
