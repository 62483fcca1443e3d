"""``resource-agent dev-cluster up|down|status|build``: a local cluster with simulated GPU nodes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import click

from devtools.devcluster.build import BuildError, cache_root, ensure_binaries
from devtools.devcluster.local import probe
from devtools.devcluster.nodes import DEFAULT_GPU_PRODUCT
from devtools.devcluster.process import pid_alive, stop_group, tail
from devtools.devcluster.supervisor import read_status


def default_state_dir() -> Path:
    return cache_root() / "dev-cluster"


state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_state_dir,
    show_default="~/.cache/resource-agent/dev-cluster",
    help="Where the cluster keeps certificates, etcd data, kubeconfig and logs.",
)


def _running_supervisor(state_dir: Path) -> int | None:
    status = read_status(state_dir)
    if status is None or status["phase"] not in ("starting", "ready"):
        return None
    pid = int(str(status["pid"]))
    return pid if pid_alive(pid) else None


def _build() -> Path:
    try:
        return ensure_binaries(progress=click.echo)
    except BuildError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("dev-cluster")
def dev_cluster() -> None:
    """A local Kubernetes control plane (etcd, apiserver, controller manager, scheduler, kwok)."""


@dev_cluster.command()
def build() -> None:
    """Build the pinned control-plane binaries (skips what is already built)."""
    click.echo(_build())


@dev_cluster.command()
@state_dir_option
@click.option("--gpu-nodes", default=2, show_default=True, help="Simulated GPU nodes (8 GPUs each).")
@click.option("--cpu-nodes", default=1, show_default=True, help="Simulated CPU-only nodes.")
@click.option("--gpu-product", default=DEFAULT_GPU_PRODUCT, show_default=True)
@click.option("--gpu-taint", is_flag=True, help="Taint GPU nodes nvidia.com/gpu=present:NoSchedule.")
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait for the cluster.")
def up(state_dir: Path, gpu_nodes: int, cpu_nodes: int, gpu_product: str, gpu_taint: bool, timeout: float) -> None:
    """Start the cluster in the background and print how to use it."""
    kubeconfig = state_dir / "kubeconfig"
    if _running_supervisor(state_dir) is not None:
        click.echo(f"already running in {state_dir}", err=True)
        click.echo(f"export KUBECONFIG={kubeconfig}")
        return
    _build()
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "supervisor.json").unlink(missing_ok=True)
    log = state_dir / "supervisor.log"
    command = [
        sys.executable, "-m", "devtools.devcluster.supervisor", "--state-dir", str(state_dir),
        "--gpu-nodes", str(gpu_nodes), "--cpu-nodes", str(cpu_nodes), "--gpu-product", gpu_product,
        *(["--gpu-taint"] if gpu_taint else []),
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while True:
        status = read_status(state_dir) or {}
        if status.get("phase") == "ready":
            break
        if process.poll() is not None or status.get("phase") == "failed":
            raise click.ClickException(f"dev cluster failed to start (log: {log}):\n{tail(log)}")
        if time.monotonic() > deadline:
            stop_group(process.pid)
            raise click.ClickException(f"dev cluster not ready after {timeout:.0f}s (log: {log}):\n{tail(log)}")
        time.sleep(0.2)
    click.echo(f"dev cluster ready in {float(str(status['startup_seconds'])):.1f}s (supervisor pid {process.pid})")
    click.echo(f"export KUBECONFIG={kubeconfig}")


@dev_cluster.command()
@state_dir_option
@click.option("--timeout", default=30.0, show_default=True)
def down(state_dir: Path, timeout: float) -> None:
    """Stop the cluster started by up."""
    pid = _running_supervisor(state_dir)
    if pid is None:
        click.echo(f"no dev cluster running in {state_dir}")
        return
    stop_group(pid, timeout)
    click.echo(f"stopped dev cluster (supervisor pid {pid})")


@dev_cluster.command()
@state_dir_option
def status(state_dir: Path) -> None:
    """Show the supervisor and each component: pid, alive, healthy."""
    pid = _running_supervisor(state_dir)
    recorded = read_status(state_dir)
    if pid is None:
        phase = recorded["phase"] if recorded else "never started"
        click.echo(f"dev cluster in {state_dir}: not running ({phase})")
        raise SystemExit(1)
    click.echo(f"dev cluster in {state_dir}: {recorded['phase'] if recorded else '?'} (supervisor pid {pid})")
    click.echo(f"  export KUBECONFIG={state_dir / 'kubeconfig'}")
    for component in probe(state_dir):
        if not component.alive:
            health = "dead"
        elif component.healthy is None:
            health = "running"
        else:
            health = "healthy" if component.healthy else "unhealthy"
        click.echo(f"  {component.name:<24} pid {component.pid:<8} {health}")
