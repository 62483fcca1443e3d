"""Run the product's processes against a cluster: agents on simulated nodes and the operator.

Used by `resource-agent demo` and by the end-to-end tests, so both exercise
exactly the processes users run (`resource-agent agent`, `resource-agent
operator`), started as separate OS processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = REPO_ROOT / "crds"
CHART_DIR = REPO_ROOT / "charts" / "resource-agent"
PEERING_CRDS = CHART_DIR / "crds" / "kopf.dev_peerings.yaml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_block(size: int) -> int:
    """A first port with `size` free ports after it."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + size > 65535:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(first, first + size):
                held.append(sock := socket.socket())
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return first
    raise RuntimeError("no free block of ports")


@dataclass
class ManagedProcess:
    """A child process in its own session, with its output in a log file."""

    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    metrics_url: str | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
                self.popen.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up (a crash)."""
        self.stop(timeout=5.0, sig=signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def cli() -> list[str]:
    return [sys.executable, "-m", "resource_agent"]


def agent_process(
    node: str,
    scenario: str,
    log_dir: Path,
    *,
    kubeconfig: Path,
    seed: int = 0,
    interval: str = "1s",
    window: str = "30s",
    report_interval: str = "5s",
    report_heartbeat: str = "30s",
    log_level: str = "info",
) -> ManagedProcess:
    """`resource-agent agent` on a simulated node: the scenario collector instead of NVML/psutil. The heartbeat
    is short (an unchanged report is written again after 30 s) so a demo's reports stay visibly fresh."""
    args = [
        *cli(), "agent",
        f"--node-name={node}",
        "--collector.scenario", f"--scenario={scenario}", f"--scenario-seed={seed}",
        "--no-collector.system", "--no-collector.pressure", "--no-collector.gpu", "--no-collector.lmcache",
        f"--interval={interval}", f"--window={window}", f"--report-interval={report_interval}",
        f"--report-heartbeat={report_heartbeat}",
        f"--listen=127.0.0.1:{free_port()}",
        "--report", f"--kubeconfig={kubeconfig}", f"--log-level={log_level}",
    ]
    return ManagedProcess(f"agent-{node}", args, log_dir / f"agent-{node}.log")


def operator_process(
    log_dir: Path,
    *,
    kubeconfig: Path,
    name: str = "operator",
    peering: str | None = None,
    resolved_ttl: str = "1h",
    evidence_refresh: str = "5m",
    fleet_interval: str = "10s",
    llm_config: Path | None = None,
    env: dict[str, str] | None = None,
    log_level: str = "info",
) -> ManagedProcess:
    metrics_port, health_port = free_port(), free_port()
    args = [
        *cli(), "operator",
        f"--metrics-listen=127.0.0.1:{metrics_port}", f"--health-listen=127.0.0.1:{health_port}",
        f"--resolved-ttl={resolved_ttl}", f"--evidence-refresh={evidence_refresh}", f"--fleet-interval={fleet_interval}",
        f"--log-level={log_level}",
    ]
    if peering:
        args.append(f"--peering={peering}")
    if llm_config:
        args.append(f"--llm-config={llm_config}")
    return ManagedProcess(
        name, args, log_dir / f"{name}.log", env={"KUBECONFIG": str(kubeconfig), **(env or {})},
        metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
    )


def install_crds(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """Apply our CRDs and kopf's peering CRDs, and wait until they are established."""
    # --force-conflicts: a helm release in the same cluster may own the same CRDs
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR), "-f", str(PEERING_CRDS))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD_DIR), "-f", str(PEERING_CRDS))


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.5, what: str = "condition") -> object:
    """Poll until `predicate` returns something truthy; its last value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def stop_all(processes: Sequence[ManagedProcess]) -> None:
    for process in processes:
        process.stop()
