"""`resource-agent scan` and `resource-agent analyze`: local analysis without a cluster.

Neither imports kopf or the Kubernetes client.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from resource_agent.analysis import catalog
from resource_agent.analysis.engine import analyze as analyze_summary
from resource_agent.analysis.engine import window_is_sustained
from resource_agent.analysis.policy import Policy, PolicyError
from resource_agent.api.findings import Analysis
from resource_agent.api.insight import Insight
from resource_agent.api.samples import Sample
from resource_agent.api.summary import NodeSummary
from resource_agent.cli.options import DURATION, collector_options, output_option
from resource_agent.cli.render import FORMATS, render
from resource_agent.node_agent.sampler import Sampler
from resource_agent.node_agent.settings import AgentConfig
from resource_agent.node_agent.window import SummaryError, summarize


class InputError(click.ClickException):
    """Bad input (recording, policy): exit code 2."""

    exit_code = 2


def load_policy(path: Path | None) -> Policy:
    if path is None:
        return Policy()
    try:
        return catalog.load_policy(path)
    except PolicyError as exc:
        raise InputError(str(exc)) from None


def _report(
    samples: list[Sample], node_name: str, policy: Policy, output_format: str, llm: bool, llm_config: Path | None
) -> None:
    try:
        summary = summarize(samples, node_name)
    except SummaryError as exc:
        raise InputError(str(exc)) from None
    _report_summary(summary, policy, output_format, llm, llm_config)


def _report_summary(summary: NodeSummary, policy: Policy, output_format: str, llm: bool, llm_config: Path | None) -> None:
    analysis = analyze_summary(summary, policy)
    if not window_is_sustained(summary, policy):
        sustain = policy.sustain
        Console(stderr=True).print(
            f"[yellow]note:[/] the window ({summary.window.samples} samples over {summary.window.end - summary.window.start:.0f} s) is shorter "
            f"than the policy's minimum ({sustain.min_samples} samples, {sustain.min_window_seconds:g} s): sustained rules "
            "(utilisation, pressure, serving) were not evaluated; sample longer (--duration) or lower policy.sustain",
            highlight=False,
        )
    insight = explain(summary, analysis, llm_config) if llm else None
    render(summary, analysis, output_format, Console(soft_wrap=output_format != "table"), insight)


def explain(summary: NodeSummary, analysis: Analysis, llm_config: Path | None) -> Insight | None:
    """The same LLM workflow the operator uses (redaction, validation, retry once), run once here."""
    from prometheus_client import CollectorRegistry

    from resource_agent.llm.service import build_insight_service
    from resource_agent.llm.settings import load_llm_settings

    stderr = Console(stderr=True)
    try:
        service = build_insight_service(load_llm_settings(llm_config), CollectorRegistry())
    except ValueError as exc:
        raise InputError(f"--llm: invalid LLM settings: {exc}") from None
    if service is None:
        raise InputError(
            "--llm: no LLM provider configured: set GROQ_API_KEY (Groq), or OPENAI_BASE_URL and "
            "RESOURCE_AGENT_LLM_MODEL (an OpenAI-compatible endpoint), or pass --llm-config (docs/llm.md)"
        )
    if not analysis.findings:
        stderr.print("nothing to explain: no findings")
        return None

    async def ask() -> Insight | None:
        try:
            return await service.explain(summary.node_name, analysis.findings, summary)
        finally:
            await service.close()

    with stderr.status("asking the LLM..."):
        insight = asyncio.run(ask())
    if insight is None:
        stderr.print("[yellow]the LLM gave no usable answer; the rule-based results stand on their own[/]")
    return insight


def take_samples(sampler: Sampler, duration: float, interval: float, progress: Progress) -> list[Sample]:
    """Sample every `interval` seconds for `duration` seconds (both ends included); Ctrl-C stops early."""
    count = max(round(duration / interval) + 1, 2)
    task = progress.add_task("sampling", total=count)
    samples: list[Sample] = []
    started = time.monotonic()
    try:
        for step in range(count):
            delay = started + step * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            samples.append(sampler.sample())
            progress.advance(task)
    except KeyboardInterrupt:
        if not samples:
            raise
    return samples


_format_option = output_option(FORMATS)
_policy_option = click.option("--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path), help="Analysis policy YAML (docs/policy.md).")


def _llm_options(command: Any) -> Any:
    command = click.option("--llm-config", type=click.Path(dir_okay=False, path_type=Path), help="LLM settings YAML (env vars win; docs/llm.md).")(command)
    return click.option("--llm", is_flag=True, help="Explain the findings with the configured LLM.")(command)


@click.command()
@click.option("--duration", type=DURATION, default="30s", show_default=True, help="How long to sample (30s, 5m, 1h).")
@click.option("--interval", "scan_interval", type=DURATION, default="1s", show_default=True, help="Time between samples.")
@_format_option
@_policy_option
@_llm_options
@collector_options
def scan(
    config: AgentConfig,
    enabled: Mapping[str, bool],
    duration: float,
    scan_interval: float,
    output_format: str,
    policy_file: Path | None,
    llm: bool,
    llm_config: Path | None,
) -> None:
    """Sample this machine, then print its summary, scores and ranked recommendations."""
    interval = scan_interval
    if interval > duration:
        raise click.BadParameter(f"the interval ({interval:g} s) is longer than the duration ({duration:g} s)", param_hint="--interval")
    policy = load_policy(policy_file)
    stderr = Console(stderr=True)
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn())
    with Sampler(config.collector_context(), enabled) as sampler, Progress(*columns, console=stderr, transient=True) as progress:
        samples = take_samples(sampler, duration, interval, progress)
    _report(samples, config.node_name or socket.gethostname(), policy, output_format, llm, llm_config)


@click.command()
@click.option("--input", "input_file", required=True, type=click.Path(dir_okay=False, path_type=Path), help="JSON Lines recording (resource-agent collect --record).")
@_format_option
@_policy_option
@_llm_options
@click.option("--node-name", help="Node name to report.  [default: the recorded hostname]")
def analyze(
    input_file: Path, output_format: str, policy_file: Path | None, llm: bool, llm_config: Path | None,
    node_name: str | None,
) -> None:
    """Analyse a recording: summary, scores and ranked recommendations."""
    from resource_agent.node_agent.recording import RecordingError, reduce_recording

    policy = load_policy(policy_file)
    try:
        reducer = reduce_recording(input_file)  # streamed: the samples are reduced as they are parsed, never kept
    except RecordingError as exc:
        raise InputError(str(exc)) from None
    try:
        summary = reducer.summary(node_name or reducer.hostname or input_file.stem)
    except SummaryError as exc:
        raise InputError(str(exc)) from None
    _report_summary(summary, policy, output_format, llm, llm_config)
