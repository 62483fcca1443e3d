"""`resource-agent operator`: run the kopf operator."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import click

from resource_agent.cli.options import DURATION, log_level_option


@click.command("operator")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Operator YAML config file (the environment and the command line win).")
@click.option("--peering", help="ClusterKopfPeering name for active/standby replicas.  [default: standalone]")
@click.option("--priority", type=int, help="Peering priority.  [default: derived from POD_NAME]")
@click.option("--policy", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Analysis policy YAML.")
@click.option("--llm-config", type=click.Path(dir_okay=False, path_type=Path), help="LLM provider settings YAML (env vars win).")
@click.option("--metrics-listen", help="Prometheus /metrics address ('' to disable).  [default: 0.0.0.0:8080]")
@click.option("--health-listen", help="Liveness /healthz address ('' to disable).  [default: 0.0.0.0:8081]")
@click.option("--resolved-ttl", type=DURATION, help="Delete Resolved recommendations after this long.  [default: 1h]")
@click.option("--evidence-refresh", type=DURATION, help="Refresh unchanged findings' evidence and lastSeen this often.  [default: 5m]")
@click.option("--fleet-interval", type=DURATION, help="Cross-node analysis interval.  [default: 60s]")
@click.option("--report-interval", type=DURATION, help="The agents' report interval (slack of the stale-report threshold).  [default: 60s]")
@click.option("--report-heartbeat", type=DURATION, help="The agents' report heartbeat: a report older than --stale-heartbeats of it plus one report interval is stale.  [default: 5m]")
@click.option("--stale-heartbeats", type=click.FloatRange(min=0, min_open=True), help="Report heartbeats without a write (plus one report interval) before a report is stale.  [default: 2]")
@click.option("--workloads/--no-workloads", default=None, help="GPU right-sizing per workload (watches pods, ReplicaSets, nodes).  [default: on]")
@click.option("--workload-horizon", type=DURATION, help="Usage history a workload recommendation needs.  [default: 168h]")
@click.option("--workload-checkpoint-interval", type=DURATION, help="Write changed workload usage checkpoints this often.  [default: 5m]")
@click.option("--workload-packing-after", type=DURATION, help="How long a workload's replicas must keep whole GPU nodes fragmented before a pack-workload-replicas recommendation.  [default: 1h]")
@click.option("--tls-cert-file", type=click.Path(dir_okay=False, path_type=Path), help="Serve /metrics over HTTPS with this certificate (PEM; with --tls-key-file).  [default: plain HTTP]")
@click.option("--tls-key-file", type=click.Path(dir_okay=False, path_type=Path), help="Private key of --tls-cert-file.")
@click.option("--endpoint-auth", type=click.Choice(["none", "kubernetes"]), help="Who may read /metrics: none, or kubernetes (bearer token reviewed by TokenReview + SubjectAccessReview, as kube-rbac-proxy).  [default: none]")
@click.option("--endpoint-auth-cache-ttl", type=DURATION, help="Reuse a token or access review's answer this long.  [default: 60s]")
@click.option("--label-gpu-capacity-nodes/--no-label-gpu-capacity-nodes", default=None, help="Label Nodes that have nvidia.com/gpu allocatable but none of the agent's GPU node labels with resource.optiinfra.io/gpu-capacity=true (and remove it again), so the chart's agent affinity selects them; needs patch on nodes.  [default: off; the chart turns it on]")
@click.option("--gpu-node-selector", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="YAML list of the agent's GPU nodeSelectorTerms, for --label-gpu-capacity-nodes.  [default: the chart's default terms]")
@log_level_option()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging (same as --log-level debug).")
def operator(config_file: Path | None, verbose: bool, **given: Any) -> None:
    """Watch ResourceReports and keep ResourceRecommendations in line with them.

    Every option can also be set in the --config file or as RESOURCE_AGENT_<OPTION>
    in the environment (e.g. RESOURCE_AGENT_FLEET_INTERVAL=2m); the command line wins."""
    from resource_agent.analysis.policy import PolicyError
    from resource_agent.config.layered import SettingsError
    from resource_agent.operator.runtime import run_operator
    from resource_agent.operator.settings import OperatorConfig

    if verbose:
        given["log_level"] = "debug"
    try:
        config = OperatorConfig.load(config_file, **given)
        settings = config.runtime()
    except (SettingsError, PolicyError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    debug = config.log_level == "debug"
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not debug:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per LLM/LMCache request otherwise
    asyncio.run(run_operator(settings))
