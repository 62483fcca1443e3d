"""bench/control_plane_scale.py at a tiny size, so it cannot rot: every phase runs and yields its figures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.control_plane_scale import MARKER, parser, run, verdicts, write_doc
from devtools.devcluster.build import BuildError, ensure_binaries
from devtools.devcluster.local import LocalCluster

pytestmark = pytest.mark.cluster


@pytest.mark.timeout(240)
def test_benchmark_at_a_tiny_size(tmp_path: Path) -> None:
    try:
        bin_dir = ensure_binaries()
    except BuildError as exc:
        pytest.skip(f"local control plane unavailable: {exc}")
    args = parser().parse_args(["--sizes", "10", "--duration", "5", "--rate", "4", "--interval", "2", "--kwok-nodes", "5",
                                "--idle", "1", "--profile", "3", "--compare-writes", "10", "--catch-up-timeout", "60"])
    with LocalCluster(tmp_path / "cluster", bin_dir) as cluster:
        results = asyncio.run(run(cluster, args, tmp_path, say=lambda line: None))
    phases = results["phases"]
    assert [(p["nodes"], p["label"]) for p in phases] == [(10, "sampled"), (10, "real")]
    for phase in phases:
        assert phase["processed_per_s"] > 0
        assert phase["requests_per_report"] >= 1  # the report's own write at least
        assert phase["bytes"] > phase["managed_fields_bytes"] > 0
        assert phase["write_errors"] == 0
    assert sum(p["latency_samples"] for p in phases) > 0  # the flapping node's findings reached the watch
    assert all(p["latency"]["p95"] < 30 for p in phases if p["latency_samples"])
    assert results["compare"]["writes"] == {"apply": 10, "merge-patch": 10}
    profile = results["profile"]  # py-spy needs ptrace: a sandbox without it gets the reason instead of frames
    assert profile[0].endswith("samples; own time (function, file):") or profile[0].startswith("(py-spy failed"), profile
    doc = tmp_path / "PERFORMANCE.md"
    write_doc(doc, results, verdicts(results), args, bin_dir)
    text = doc.read_text()
    assert text.count(MARKER) == 2
    assert "| 10 | real |" in text
