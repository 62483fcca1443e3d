"""`resource-agent agent` with NVML faked at the pynvml boundary (tests/node_agent/fake_nvml.py), for e2e.

    python -m e2e.nvml_agent CONTROL_DIR GPUS -- <agent arguments>

The fake has GPUS devices (uuid GPU-e2e-<index>). While CONTROL_DIR/<index> holds ``lost``
every call on that device raises NVMLError_GpuIsLost; ``unknown``: its UUID lookup raises
NVMLError_Unknown; anything else (or no file): the device is healthy. Read every 0.2 s.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pynvml
import pytest

from resource_agent.cli import main as cli
from tests.node_agent.fake_nvml import FakeGpu, FakeNvml

POLL_SECONDS = 0.2


def _follow(control: Path, gpus: list[FakeGpu]) -> None:
    while True:
        for gpu in gpus:
            path = control / str(gpu.index)
            mode = path.read_text().strip() if path.exists() else ""
            gpu.lost = mode == "lost"
            gpu.errors = {"nvmlDeviceGetUUID": pynvml.NVMLError_Unknown} if mode == "unknown" else {}
        time.sleep(POLL_SECONDS)


def main() -> None:
    control, count, separator, *args = sys.argv[1:]
    assert separator == "--", __doc__
    gpus = [FakeGpu(index, f"GPU-e2e-{index}") for index in range(int(count))]
    FakeNvml(pytest.MonkeyPatch(), gpus)
    threading.Thread(target=_follow, args=(Path(control), gpus), daemon=True).start()
    cli(args, prog_name="resource-agent")


if __name__ == "__main__":
    main()
