"""`resource-agent operator`: run the kopf operator."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from resource_agent.node_agent.options import DURATION
from resource_agent.operator.settings import parse_listen


@click.command("operator")
@click.option("--peering", default=None, help="ClusterKopfPeering name for active/standby replicas (default: standalone).")
@click.option("--priority", type=int, default=None, help="Peering priority (default: derived from POD_NAME).")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Analysis policy YAML.")
@click.option("--llm-config", type=click.Path(dir_okay=False, path_type=Path), help="LLM provider settings YAML (env vars win).")
@click.option("--metrics-listen", default="0.0.0.0:8080", show_default=True, help="Prometheus /metrics address ('' to disable).")
@click.option("--health-listen", default="0.0.0.0:8081", show_default=True, help="Liveness /healthz address ('' to disable).")
@click.option("--resolved-ttl", type=DURATION, default="1h", show_default=True, help="Delete Resolved recommendations after this long.")
@click.option("--evidence-refresh", type=DURATION, default="5m", show_default=True, help="Refresh unchanged findings' evidence and lastSeen this often.")
@click.option("--fleet-interval", type=DURATION, default="60s", show_default=True, help="Cross-node analysis interval.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def operator(
    peering: str | None, priority: int | None, policy_file: Path | None, llm_config: Path | None,
    metrics_listen: str, health_listen: str, resolved_ttl: float, evidence_refresh: float, fleet_interval: float,
    verbose: bool,
) -> None:
    """Watch ResourceReports and keep ResourceRecommendations in line with them."""
    from resource_agent.analysis.catalog import load_policy
    from resource_agent.analysis.policy import Policy
    from resource_agent.operator.planning import PlanSettings
    from resource_agent.operator.runtime import run_operator
    from resource_agent.operator.settings import OperatorSettings, default_priority

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per LLM/LMCache request otherwise
    try:
        policy = load_policy(policy_file) if policy_file else Policy()
        settings = OperatorSettings(
            policy=policy,
            plan=PlanSettings(
                evidence_refresh_seconds=evidence_refresh,
                resolved_ttl_seconds=resolved_ttl,
            ),
            peering=peering,
            priority=priority if priority is not None else default_priority(),
            metrics_listen=parse_listen(metrics_listen) if metrics_listen else None,
            health_listen=parse_listen(health_listen) if health_listen else None,
            fleet_interval_seconds=fleet_interval,
            llm_config=llm_config,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    asyncio.run(run_operator(settings))
