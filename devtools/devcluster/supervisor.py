"""The detached process behind ``resource-agent dev-cluster up``.

It owns the control-plane processes (they die with it), records its progress
in ``<state-dir>/supervisor.json`` and stops the cluster on SIGTERM or SIGINT.

    python -m devtools.devcluster.supervisor --state-dir DIR --gpu-nodes 2 --cpu-nodes 1
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from types import FrameType

from devtools.devcluster.local import LocalCluster
from devtools.devcluster.nodes import DEFAULT_GPU_PRODUCT, add_nodes, cpu_nodes, gpu_nodes

SUPERVISOR_FILE = "supervisor.json"


def write_status(state_dir: Path, phase: str, **extra: object) -> None:
    """Record ``phase`` (starting, ready, failed, stopped) atomically."""
    path = state_dir / SUPERVISOR_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "phase": phase, **extra}) + "\n")
    os.replace(tmp, path)


def read_status(state_dir: Path) -> dict[str, object] | None:
    """The supervisor's last recorded status, or None when it never ran here."""
    path = state_dir / SUPERVISOR_FILE
    return json.loads(path.read_text()) if path.exists() else None


def run(state_dir: Path, gpu: int, cpu: int, product: str, taint: bool) -> int:
    """Start the cluster, add the nodes, then wait for a stop signal."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    write_status(state_dir, "starting")
    cluster = LocalCluster(state_dir, keep_state=True, progress=lambda line: print(line, flush=True))
    try:
        cluster.start()
        with cluster.api_client() as client:
            add_nodes(client, [*gpu_nodes(gpu, product=product, taint=taint), *cpu_nodes(cpu)])
        write_status(
            state_dir, "ready", kubeconfig=str(cluster.kubeconfig), server=cluster.server,
            startup_seconds=cluster.startup_seconds,
        )  # fmt: skip
        while not stop.wait(1.0):
            cluster.check()
    except Exception as exc:
        traceback.print_exc()
        write_status(state_dir, "failed", error=str(exc))
        return 1
    finally:
        cluster.stop(remove_state=False)
    write_status(state_dir, "stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--gpu-nodes", type=int, default=2)
    parser.add_argument("--cpu-nodes", type=int, default=1)
    parser.add_argument("--gpu-product", default=DEFAULT_GPU_PRODUCT)
    parser.add_argument("--gpu-taint", action="store_true")
    args = parser.parse_args(argv)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    return run(args.state_dir, args.gpu_nodes, args.cpu_nodes, args.gpu_product, args.gpu_taint)


if __name__ == "__main__":
    sys.exit(main())
