"""`resource-agent collect` and `resource-agent agent`.

Neither imports kubernetes or kopf: the reporter that writes ResourceReports
plugs into `Agent.add_listener` from its own module.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click
import yaml

from resource_agent.api.samples import Sample
from resource_agent.cli.options import DURATION, collector_options, log_level_option, output_option
from resource_agent.node_agent.agent import Agent, AgentSettings
from resource_agent.node_agent.httpauth import EndpointAuth
from resource_agent.node_agent.recording import RecordingWriter
from resource_agent.node_agent.sampler import Sampler
from resource_agent.node_agent.server import EndpointSecurity, endpoint_security, make_server, serve_in_background
from resource_agent.node_agent.settings import DEFAULT_PORT, AgentConfig

SECTIONS = ("system", "pressure", "gpu", "lmcache")
RATE_GAP_SECONDS = 0.5


def snapshot_document(sample: Sample) -> dict[str, Any]:
    """The `collect --format json` document: each section with `available`, then the collectors."""
    statuses = {status.name: status for status in sample.collectors}
    document: dict[str, Any] = {"timestamp": sample.timestamp}
    for name in SECTIONS:
        section = getattr(sample, name)
        if section is not None:
            document[name] = {"available": True} | section.model_dump(mode="json", by_alias=True, exclude_none=True)
        else:
            status = statuses.get(name)
            reason = status.reason if status is not None else f"{name} collector not enabled"
            document[name] = {"available": False, "reason": reason}
    document["collectors"] = [status.model_dump(mode="json", by_alias=True, exclude_none=True) for status in sample.collectors]
    return document


@click.command()
@output_option()
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), help="Write samples to this JSON Lines file instead of printing a snapshot.")
@click.option("--duration", type=DURATION, default="60s", show_default=True, help="How long to record.")
@click.option("--interval", type=DURATION, help="Time between recorded samples.  [default: 5s]")
@collector_options
def collect(output_format: str, record: Path | None, duration: float, config: AgentConfig, enabled: dict[str, bool]) -> None:
    """Take one snapshot of this node (or record samples with --record)."""
    with Sampler(config.collector_context(), enabled) as sampler:
        if record is not None:
            _record(sampler, record, duration, config.interval)
            return
        sampler.sample()  # rates need a previous sample
        time.sleep(RATE_GAP_SECONDS)
        sample = sampler.sample()
    if output_format == "json":
        click.echo(json.dumps(snapshot_document(sample), indent=2))
    elif output_format == "yaml":
        click.echo(yaml.safe_dump(snapshot_document(sample), sort_keys=False), nl=False)
    else:
        from resource_agent.cli.tables import print_tables

        print_tables(sample)


def _record(sampler: Sampler, path: Path, duration: float, interval: float) -> None:
    from rich.progress import Progress

    count = max(1, math.ceil(duration / interval))
    path.write_text("")
    started = time.monotonic()
    with RecordingWriter(path) as writer, Progress(transient=False) as progress:
        task = progress.add_task(f"recording {count} samples to {path}", total=count)
        for step in range(count):
            writer.write(sampler.sample())
            progress.advance(task)
            if step + 1 < count:
                time.sleep(max(0.0, started + (step + 1) * interval - time.monotonic()))
    click.echo(f"wrote {count} samples to {path}", err=True)


@click.command()
@click.option("--interval", type=DURATION, help="Time between samples (90s, 1m30s, 1h).  [default: 5s]")
@click.option("--window", type=DURATION, help="Length of the summarised window.  [default: 5m]")
@click.option("--report-interval", type=DURATION, help="Time between summary reports.  [default: 60s]")
@click.option("--report-heartbeat", type=DURATION, help="Write an unchanged ResourceReport again after this long (a material change is written at the next report interval).  [default: 5m]")
@click.option("--listen", help=f"HTTP address for /metrics, /healthz, /readyz, /report.  [default: 0.0.0.0:{DEFAULT_PORT}]")
@log_level_option()
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path), help="Keep standing GPU faults (fatal XIDs, lost GPUs) in this JSON file across agent restarts on the same boot.")
@click.option("--report/--no-report", default=None, help="Write the summary to this node's ResourceReport.  [default: no-report]")
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Kubeconfig for --report and --endpoint-auth.  [default: in-cluster, else $KUBECONFIG]")
@click.option("--tls-cert-file", type=click.Path(dir_okay=False, path_type=Path), help="Serve HTTPS with this certificate (PEM; with --tls-key-file).  [default: plain HTTP]")
@click.option("--tls-key-file", type=click.Path(dir_okay=False, path_type=Path), help="Private key of --tls-cert-file.")
@click.option("--endpoint-auth", type=click.Choice([mode.value for mode in EndpointAuth]), help="Who may read /metrics and /report: none, or kubernetes (bearer token reviewed by TokenReview + SubjectAccessReview, as kube-rbac-proxy).  [default: none]")
@click.option("--endpoint-auth-cache-ttl", type=DURATION, help="Reuse a token or access review's answer this long.  [default: 60s]")
@collector_options
def agent(config: AgentConfig, enabled: dict[str, bool]) -> None:
    """Run the node agent: sample, keep the window, serve metrics and reports.

    Every option can also be set in the --config file or as RESOURCE_AGENT_<OPTION>
    in the environment (e.g. RESOURCE_AGENT_INTERVAL=1m30s); the command line wins."""
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))  # one line per scrape otherwise
    settings = AgentSettings(
        node_name=config.effective_node_name(),
        interval_seconds=config.interval,
        window_seconds=config.window,
        report_interval_seconds=config.report_interval,
        state_file=config.state_file,
    )
    node_agent = Agent(Sampler(config.collector_context(), enabled), settings)
    try:
        server = make_server(node_agent, config.listen, _endpoint_security(config))
    except (OSError, ValueError) as exc:
        node_agent.sampler.close()
        raise click.ClickException(f"cannot listen on {config.listen[0]}:{config.listen[1]}: {exc}") from exc
    writer = None
    if config.report:
        from resource_agent.kube.reporter import attach_report_writer  # kubernetes only on this path

        writer = attach_report_writer(node_agent, str(config.kubeconfig) if config.kubeconfig else None, config.report_heartbeat)
    run_until_signalled(node_agent, server)
    if writer is not None:
        writer.stop()


def _endpoint_security(config: AgentConfig) -> EndpointSecurity:
    options = config.endpoint_options()
    reviewer = None
    if options.auth == EndpointAuth.KUBERNETES:
        from resource_agent.kube.config import load_api_client  # kubernetes only on this path
        from resource_agent.kube.review import KubernetesReviewer

        reviewer = KubernetesReviewer(load_api_client(str(config.kubeconfig) if config.kubeconfig else None))
    return endpoint_security(options, reviewer)


def run_until_signalled(node_agent: Agent, server: Any) -> None:
    """Serve until SIGTERM or SIGINT, then stop the server and the agent cleanly."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    node_agent.start()
    serve_in_background(server)
    host, port = server.server_address[:2]
    logging.getLogger(__name__).info("serving on %s:%s for node %s", host, port, node_agent.settings.node_name)
    stop.wait()  # a signal interrupts the wait on POSIX and its handler sets the event
    server.shutdown()
    server.server_close()
    node_agent.stop()
    logging.getLogger(__name__).info("stopped after %d samples", node_agent.samples_taken)
