"""`resource-agent demo` end to end: its own control plane, agents, operator, live table."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devtools.devcluster.build import bin_dir


def test_demo_shows_recommendations_for_its_scenario_nodes_within_60s() -> None:
    if not (bin_dir() / "kube-apiserver").is_file():
        pytest.skip("control plane not built: run scripts/build-controlplane")
    result = subprocess.run(
        [sys.executable, "-m", "resource_agent", "demo", "--scenario", "serving-idle-replica",
         "--scenario", "serving-kv-bound", "--duration", "60s", "--refresh", "1"],
        capture_output=True, text=True, timeout=150,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout
    assert "gpu-node-0" in table and "gpu-node-1" in table, table[-3000:]
    # the serving engines' own signals: an idle vLLM replica and a KV-cache bound one; the idle replica's
    # GPUs are its finding, not a second one (gpu-idle-holding-memory leaves them to serving-idle-replica)
    assert "serving-idle-replica" in table and "serving-kv-cache-bound" in table, table[-3000:]
    assert "gpu-idle-holding-memory" not in table, table[-3000:]
    assert "stopping agents, operator and the control plane" in result.stderr
