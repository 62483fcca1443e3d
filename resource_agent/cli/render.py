"""Render a node summary, its scores and findings: rich tables, JSON or YAML."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from resource_agent.api.findings import Analysis, Finding, Severity
from resource_agent.api.insight import Insight
from resource_agent.api.samples import CollectorState
from resource_agent.api.summary import LatencySummary, NodeSummary, ServingInstanceSummary, Stat

FORMATS = ("table", "json", "yaml")
SEVERITY_STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
GIB = 1024**3


def document(summary: NodeSummary, analysis: Analysis, insight: Insight | None = None) -> dict[str, Any]:
    """The machine-readable result: {summary, scores, findings[, insight]}, camelCase as on the wire."""
    result = {
        "summary": summary.to_wire(),
        "scores": analysis.scores.to_wire(),
        "findings": [finding.to_wire() for finding in analysis.findings],
    }
    if insight is not None:
        result["insight"] = insight.to_wire()
    return result


def render(
    summary: NodeSummary, analysis: Analysis, output_format: str, console: Console, insight: Insight | None = None
) -> None:
    if output_format == "json":
        console.print_json(json.dumps(document(summary, analysis, insight)), highlight=False)
    elif output_format == "yaml":
        console.out(yaml.safe_dump(document(summary, analysis, insight), sort_keys=False), highlight=False, end="")
    elif output_format == "table":
        for table in tables(summary, analysis):
            console.print(table)
        if insight is not None:
            console.print(_insight(insight))
    else:
        raise ValueError(f"unknown format {output_format!r} (choose from {', '.join(FORMATS)})")


def tables(summary: NodeSummary, analysis: Analysis) -> list[Table]:
    """The table view, in reading order; sections with nothing to show are left out."""
    candidates = [_node(summary), _host(summary), _gpus(summary), _caches(summary), *_serving(summary), _scores(analysis), _findings(analysis)]
    return [table for table in candidates if table is not None]


def _insight(insight: Insight) -> Table:
    table = Table(title=f"LLM insight ({insight.model}, priority {insight.priority}/5)", show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("summary", insight.summary)
    table.add_row("steps", "\n".join(f"{i}. {step}" for i, step in enumerate(insight.steps, 1)))
    table.add_row("impact", insight.expected_impact)
    if insight.risks:
        table.add_row("risks", "\n".join(f"- {risk}" for risk in insight.risks))
    table.add_row("confidence", f"{insight.confidence:.0%}")
    return table


def _fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def _stat_cells(stat: Stat | None, scale: float = 1.0, digits: int = 1) -> list[str]:
    if stat is None:
        return ["-", "-", "-"]
    return [_fmt(stat.mean / scale, digits=digits), _fmt(stat.p95 / scale, digits=digits), _fmt(stat.max / scale, digits=digits)]


def _node(summary: NodeSummary) -> Table:
    inventory, window = summary.inventory, summary.window
    table = Table(title=f"Node {summary.node_name}", show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("window", f"{window.samples} samples over {window.end - window.start:.0f} s")
    table.add_row("cpu", f"{inventory.cpu_model or 'unknown'} ({inventory.cpu_cores} logical cores)")
    table.add_row("memory", f"{inventory.memory_total_bytes / GIB:.1f} GiB")
    gpus = summary.gpu
    gpu_text = f"{len(gpus.devices)} ({inventory.gpus[0].name}, driver {inventory.driver_version})" if inventory.gpus else "none"
    table.add_row("gpus", gpu_text if gpus.available else f"unavailable: {gpus.reason}")
    if not summary.pressure.available:
        table.add_row("psi", f"unavailable: {summary.pressure.reason}")
    for status in summary.collectors:
        if status.state is not CollectorState.OK:
            table.add_row(f"collector {status.name}", f"{status.state.value}: {status.reason}")
    return table


def _host(summary: NodeSummary) -> Table:
    table = Table(title="Host", title_justify="left")
    for column in ("metric", "mean", "p95", "max"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    cpu, memory, pressure = summary.cpu, summary.memory, summary.pressure
    rows: list[tuple[str, Stat | None, float]] = [
        ("cpu utilisation %", cpu.utilization_percent, 1.0),
        ("busiest core %", cpu.busiest_core_utilization_percent, 1.0),
        ("iowait %", cpu.iowait_percent, 1.0),
        ("steal %", cpu.steal_percent, 1.0),
        ("load1", cpu.load1, 1.0),
        ("memory available %", memory.available_percent, 1.0),
        ("swap in MiB/s", memory.swap_in_bytes_per_second, 1024**2),
        ("swap out MiB/s", memory.swap_out_bytes_per_second, 1024**2),
    ]
    for name in ("cpu", "memory", "io"):
        resource = getattr(pressure, name)
        if resource is not None:
            rows.append((f"psi {name} some avg10 %", resource.some.avg10, 1.0))
            if resource.full is not None:
                rows.append((f"psi {name} full avg10 %", resource.full.avg10, 1.0))
    for disk in summary.disks:
        rows.append((f"disk {disk.mountpoint or disk.device} used %", disk.used_percent, 1.0))
        rows.append((f"disk {disk.device} busy %", disk.busy_percent, 1.0))
    for label, stat, scale in rows:
        if stat is not None:
            table.add_row(label, *_stat_cells(stat, scale))
    return table


def _gpus(summary: NodeSummary) -> Table | None:
    if not summary.gpu.devices:
        return None
    table = Table(title="GPUs (mean / p95)", title_justify="left")
    for column in ("gpu", "SM %", "memory used %", "temp °C", "power W", "SM clock MHz", "clock events", "PCIe", "XID"):
        table.add_column(column)
    for gpu in summary.gpu.devices:
        reasons = ", ".join(f"{name} {share:.0%}" for name, share in gpu.clock_event_reasons.items() if name != "GpuIdle" and share > 0)
        pcie = gpu.pcie
        link = f"gen{pcie.link_generation} x{pcie.link_width}" if pcie.link_generation else "-"
        table.add_row(
            str(gpu.index),
            _pair(gpu.sm_utilization_percent),
            _pair(gpu.memory_used_percent),
            _pair(gpu.temperature_celsius, digits=0),
            f"{_fmt(gpu.power_watts.mean if gpu.power_watts else None, digits=0)} / {_fmt(gpu.power_limit_watts, digits=0)}",
            f"{_fmt(gpu.sm_clock_mhz.mean if gpu.sm_clock_mhz else None, digits=0)} / {_fmt(gpu.sm_clock_max_mhz, digits=0)}",
            reasons or "-",
            link,
            ", ".join(f"{code} x{count}" for code, count in gpu.xid_counts.items()) or "-",
        )
    return table


def _pair(stat: Stat | None, digits: int = 1) -> str:
    return "-" if stat is None else f"{stat.mean:.{digits}f} / {stat.p95:.{digits}f}"


def _caches(summary: NodeSummary) -> Table | None:
    if not summary.lmcache.instances:
        return None
    table = Table(title="LMCache", title_justify="left")
    for column in ("instance", "state", "hit rate (lookup)", "looked-up tokens", "load success", "evictions", "CPU tier used %", "CPU tier size"):
        table.add_column(column)
    for cache in summary.lmcache.instances:
        state = "ok" if cache.reachable and cache.healthy is not False else ("unreachable" if not cache.reachable else "unhealthy")
        size = cache.max_local_cpu_size_bytes
        table.add_row(
            cache.instance,
            state,
            "-" if cache.lookup_hit_rate is None else f"{cache.lookup_hit_rate:.1%}",
            f"{cache.lookup_tokens:,.0f}",
            "-" if cache.token_hit_rate is None else f"{cache.token_hit_rate:.1%}",
            f"{cache.evictions:,.0f}",
            _pair(cache.local_cpu_usage_percent),
            "-" if size is None else f"{size / GIB:g} GB",
        )
    return table


def _latency(latency: LatencySummary | None, quantile: str) -> str:
    value = None if latency is None else getattr(latency, quantile)
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _p95(stat: Stat | None, digits: int = 0) -> str:
    return "-" if stat is None else f"{stat.p95:.{digits}f}"


def _engine_label(engine: ServingInstanceSummary) -> str:
    index = f"#{engine.engine_index}" if engine.engine_index and engine.engine_index != "0" else ""
    where = engine.instance.removeprefix("http://").removeprefix("https://")
    return f"{engine.engine}{index} {where}"


def _model_label(engine: ServingInstanceSummary) -> str:
    return (engine.model_name or "-").rsplit("/", 1)[-1]


def _serving(summary: NodeSummary) -> list[Table]:
    """Two tables per node with serving engines: their work (queue, KV cache, throughput) and their latency."""
    engines = summary.serving.instances
    if not engines:
        return []
    work = Table(title="Serving engines (p95 over the window)", title_justify="left", caption_justify="left")
    for column in ("engine", "running", "waiting", "KV used", "preempt", "prefix hit", "gen tok/s", "req/s"):
        work.add_column(column, justify="left" if column == "engine" else "right", overflow="fold")
    latency = Table(title="Serving latency (from the window's histogram increases)", title_justify="left", caption_justify="left")
    for column in ("engine", "model", "TTFT p50", "TTFT p95", "ITL p95", "queue p95", "e2e p95"):
        latency.add_column(column, justify="left" if column in ("engine", "model") else "right", overflow="fold")
    problems, links = [], []
    for engine in engines:
        label = _engine_label(engine)
        if not engine.reachable:
            problems.append(f"{label}: unreachable ({engine.error or 'no answer'})")
            work.add_row(label, *(["-"] * 6), "unreachable")
            continue
        work.add_row(
            label,
            _p95(engine.requests_running),
            _p95(engine.requests_waiting),
            "-" if engine.kv_cache_usage_percent is None else f"{engine.kv_cache_usage_percent.p95:.1f}%",
            "-" if engine.preemptions is None else f"{engine.preemptions:,.0f}",
            "-" if engine.prefix_cache_hit_rate is None else f"{engine.prefix_cache_hit_rate:.1%}",
            _fmt(engine.generation_tokens_per_second, digits=0),
            _fmt(engine.requests_per_second, digits=2),
        )
        linked = [f"GPU {', '.join(str(i) for i in engine.gpu_indices)}"] if engine.gpu_indices else []
        if engine.lmcache_instance:
            linked.append(f"LMCache {engine.lmcache_instance}")
        if linked:
            links.append(f"{label}: {'; '.join(linked)}")
        latency.add_row(
            label,
            _model_label(engine),
            _latency(engine.ttft_seconds, "p50"),
            _latency(engine.ttft_seconds, "p95"),
            _latency(engine.inter_token_latency_seconds, "p95"),
            _latency(engine.queue_time_seconds, "p95"),
            _latency(engine.e2e_latency_seconds, "p95"),
        )
    if problems:
        work.caption = "\n".join(problems)
    if links:
        latency.caption = "\n".join(links)
    return [work, latency] if latency.row_count else [work]


def _scores(analysis: Analysis) -> Table:
    table = Table(title="Scores (0-100)", title_justify="left")
    scores = analysis.scores
    columns = [
        *((f"{name} efficiency", value) for name, value in scores.efficiency.items()),
        *((f"{name} saturation", value) for name, value in scores.saturation.items()),
        ("health", scores.health),
    ]
    for name, _ in columns:
        table.add_column(name, justify="right")
    table.add_row(*[f"{value:.0f}" for _, value in columns])
    return table


def _action_text(finding: Finding) -> str:
    parameters = " ".join(f"{key}={value}" for key, value in finding.action.parameters.items())
    return f"{finding.action.type.value} {parameters}".strip()


def _findings(analysis: Analysis) -> Table:
    table = Table(title=f"Recommendations ({len(analysis.findings)})", title_justify="left", show_lines=True)
    columns: list[tuple[str, Callable[[Finding], str]]] = [
        ("severity", lambda f: f"[{SEVERITY_STYLE[f.severity]}]{f.severity.value}[/]"),
        ("rule", lambda f: f.rule),
        ("target", lambda f: f.target.name if f.target.namespace is None else f"{f.target.namespace}/{f.target.name}"),
        ("finding", lambda f: f.summary),
        ("action", _action_text),
    ]
    for name, _ in columns:
        table.add_column(name, overflow="fold")
    for finding in analysis.findings:
        table.add_row(*(cell(finding) for _, cell in columns))
    if not analysis.findings:
        table.add_row("-", "-", "-", "nothing to recommend", "-")
    return table
