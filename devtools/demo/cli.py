"""`resource-agent demo`: the whole loop on a local control plane, live.

Starts a local control plane with one simulated GPU node per scenario, the
CRDs, one `resource-agent agent` per node (driven by its scenario) and the
operator, then shows `kubectl get resourcerecommendations` as it changes.
Ctrl-C tears everything down.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import click

from resource_agent.cli.options import DURATION, log_level_option

# idle GPUs held by an idle vLLM replica, a KV-bound vLLM beside a healthy one, and two hardware cases
DEFAULT_SCENARIOS = ("serving-idle-replica", "serving-kv-bound", "thermal-throttle", "ecc-xid-failing")


@click.command("demo")
@click.option("--scenario", "scenarios", multiple=True, help=f"Scenario per node (repeatable).  [default: {', '.join(DEFAULT_SCENARIOS)}]")
@click.option("--duration", type=DURATION, default=None, help="Stop after this long (e.g. 90s).  [default: until Ctrl-C]")
@click.option("--refresh", default=2.0, show_default=True, help="Seconds between table refreshes.")
@log_level_option(default="info")
def demo(scenarios: tuple[str, ...], duration: float | None, refresh: float, log_level: str) -> None:
    """Simulated GPU nodes, agents and the operator on a local control plane.

    --log-level applies to the demo and to the agents and operator it starts (their logs are in the state directory)."""
    import logging

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from devtools.demo.stack import agent_process, install_crds, operator_process, stop_all
    from devtools.devcluster.local import LocalCluster
    from devtools.devcluster.nodes import NodeSpec, add_nodes
    from resource_agent.scenarios import list_scenarios

    chosen = scenarios or DEFAULT_SCENARIOS
    unknown = sorted(set(chosen) - set(list_scenarios()))
    if unknown:
        raise click.BadParameter(f"unknown scenario(s) {unknown}; choose from {list_scenarios()}")
    console = Console(stderr=True)
    deadline = time.monotonic() + duration if duration else None
    state = Path(tempfile.mkdtemp(prefix="resource-agent-demo-"))
    processes = []
    with console.status("starting the local control plane...") as status, LocalCluster(state_dir=state / "cluster") as cluster:
        kubectl_bin = str(cluster.bin_dir / "kubectl")

        def kubectl(*args: str, **_: object) -> subprocess.CompletedProcess[str]:
            return subprocess.run([kubectl_bin, f"--kubeconfig={cluster.kubeconfig}", *args],
                                  capture_output=True, text=True, check=True)

        from kubernetes.config import new_client_from_config

        nodes = {f"gpu-node-{i}": scenario for i, scenario in enumerate(chosen)}
        status.update(f"adding {len(nodes)} simulated GPU nodes...")
        with new_client_from_config(config_file=str(cluster.kubeconfig)) as client:
            add_nodes(client, [NodeSpec(name=name) for name in nodes])
        install_crds(kubectl)
        status.update("starting agents and the operator...")
        for node, scenario in nodes.items():
            processes.append(agent_process(node, scenario, state / "logs", kubeconfig=cluster.kubeconfig,
                                           report_interval="5s", log_level=log_level).start())
        processes.append(operator_process(state / "logs", kubeconfig=cluster.kubeconfig, log_level=log_level).start())
        console.print("[bold]demo[/] nodes: " + ", ".join(f"{n} ({s})" for n, s in nodes.items()))
        console.print(f"export KUBECONFIG={cluster.kubeconfig}   # logs in {state / 'logs'}; Ctrl-C stops")
        try:
            with Live(console=Console(), refresh_per_second=4) as live:
                while deadline is None or time.monotonic() < deadline:
                    table = kubectl("get", "resourcerecommendations", "-o", "wide").stdout or "(no recommendations yet)"
                    dead = [p.name for p in processes if not p.alive]
                    footer = f"\n[dead: {', '.join(dead)}]" if dead else ""
                    live.update(Text(table + footer))
                    time.sleep(refresh)
        except KeyboardInterrupt:
            pass
        finally:
            console.print("stopping agents, operator and the control plane...")
            stop_all(processes)
