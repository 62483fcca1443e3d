"""The `gpu` collector's gate: pynvml is imported only where NVIDIA's driver is loaded.

Each case runs in a fresh interpreter (this one has pynvml imported by the other tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
from pathlib import Path
import resource_agent.cli.node_agent, resource_agent.kube.reporter  # the agent's whole import path
from resource_agent.node_agent.collectors.base import CollectorContext, run_collectors
from resource_agent.node_agent.sampler import Sampler
enabled = {name: name == "gpu" for name in ("gpu", "system", "pressure", "lmcache", "serving", "podresources", "scenario")}
with Sampler(CollectorContext(host_proc=Path(sys.argv[1])), enabled) as sampler:
    statuses = [run_collectors(sampler.collectors).collectors[0] for _ in range(2)]
print(json.dumps({"reasons": [status.reason for status in statuses], "states": [status.state.value for status in statuses],
                  "pynvml": "pynvml" in sys.modules}))
"""


def _probe(host_proc: Path) -> dict[str, object]:
    answer = subprocess.run([sys.executable, "-c", PROBE, str(host_proc)], capture_output=True, text=True, check=True, timeout=60)
    result: dict[str, object] = json.loads(answer.stdout.splitlines()[-1])
    return result


def test_without_the_driver_nvml_is_unavailable_and_pynvml_is_not_imported(tmp_path: Path) -> None:
    result = _probe(tmp_path)
    assert result["states"] == ["unavailable", "unavailable"]
    assert result["reasons"] == [f"NVML not available: no NVIDIA driver loaded ({tmp_path}/driver/nvidia is missing)"] * 2
    assert result["pynvml"] is False


def test_with_the_driver_the_nvml_collector_runs(tmp_path: Path) -> None:
    (tmp_path / "driver" / "nvidia").mkdir(parents=True)
    result = _probe(tmp_path)
    assert result["pynvml"] is True
    if result["states"] != ["ok", "ok"]:  # a machine without NVML's library: pynvml's own error, as before the gate
        assert result["reasons"] == ["NVML not available: NVML Shared Library Not Found"] * 2
