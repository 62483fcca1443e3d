"""Generate the Grafana dashboard and copy the observability assets into the chart.

    python dashboards/generate.py          # write the files
    python dashboards/generate.py --check  # exit 1 when a committed file differs

Writes ``dashboards/resource-agent.json`` and copies it and
``deploy/prometheus-rules.yaml`` into ``charts/resource-agent/files/`` (Helm's
``.Files.Get`` can only read files inside the chart). Metric names are the ones
in docs/metrics.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "dashboards" / "resource-agent.json"
RULES = ROOT / "deploy" / "prometheus-rules.yaml"
CHART_FILES = ROOT / "charts" / "resource-agent" / "files"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
NODE = 'node=~"$node"'


def _panel(
    panel_id: int,
    title: str,
    kind: str,
    targets: list[tuple[str, str]],
    grid: tuple[int, int, int, int],
    *,
    unit: str = "short",
    description: str = "",
    thresholds: list[tuple[str, float | None]] | None = None,
) -> dict[str, Any]:
    x, y, w, h = grid
    steps = [{"color": color, "value": value} for color, value in (thresholds or [("green", None)])]
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def _row(panel_id: int, title: str, y: int) -> dict[str, Any]:
    return {"id": panel_id, "type": "row", "title": title, "collapsed": False, "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []}


def dashboard() -> dict[str, Any]:
    """The dashboard: fleet, node, GPU, LMCache and recommendations rows."""
    panels: list[dict[str, Any]] = []
    ids = iter(range(1, 100))

    def add(*args: Any, **kwargs: Any) -> None:
        panels.append(_panel(next(ids), *args, **kwargs))

    panels.append(_row(next(ids), "Fleet", 0))
    add("Agents up", "stat", [('count(up{job=~".*resource-agent.*-agent"} == 1)', "agents")], (0, 1, 4, 4))
    add("GPUs", "stat", [(f"count(resource_agent_gpu_utilization_ratio{{{NODE}}})", "GPUs")], (4, 1, 4, 4))
    add(
        "Mean GPU utilisation",
        "gauge",
        [(f"avg(resource_agent_gpu_utilization_ratio{{{NODE}}})", "utilisation")],
        (8, 1, 4, 4),
        unit="percentunit",
        thresholds=[("red", None), ("orange", 0.3), ("green", 0.6)],
    )
    add(
        "Failing collectors",
        "stat",
        [(f"count(resource_agent_collector_success{{{NODE}}} == 0) or vector(0)", "failing")],
        (12, 1, 4, 4),
        thresholds=[("green", None), ("red", 1)],
    )
    add(
        "Open critical recommendations",
        "stat",
        [('sum(resource_agent_operator_recommendations{severity="critical", phase="Open"}) or vector(0)', "critical")],
        (16, 1, 4, 4),
        thresholds=[("green", None), ("red", 1)],
    )
    add(
        "XID errors (1h)",
        "stat",
        [(f"sum(increase(resource_agent_gpu_xid_errors_total{{{NODE}}}[1h])) or vector(0)", "XIDs")],
        (20, 1, 4, 4),
        thresholds=[("green", None), ("red", 1)],
    )

    panels.append(_row(next(ids), "Node", 5))
    add("CPU utilisation", "timeseries", [(f"resource_agent_cpu_utilization_ratio{{{NODE}}}", "{{node}}")], (0, 6, 8, 7), unit="percentunit")
    add(
        "Memory used",
        "timeseries",
        [(f"resource_agent_memory_used_bytes{{{NODE}}} / resource_agent_memory_total_bytes{{{NODE}}}", "{{node}}")],
        (8, 6, 8, 7),
        unit="percentunit",
    )
    add(
        "Pressure stall (some, 60s)",
        "timeseries",
        [(f'resource_agent_pressure_stall_ratio{{{NODE}, kind="some", window="60s"}}', "{{node}} {{resource}}")],
        (16, 6, 8, 7),
        unit="percentunit",
        description="Linux PSI: share of time some task stalled on CPU, memory or I/O.",
    )
    add(
        "Collector duration",
        "timeseries",
        [(f"resource_agent_collector_duration_seconds{{{NODE}}}", "{{node}} {{collector}}")],
        (0, 13, 12, 7),
        unit="s",
    )
    add(
        "Collector success",
        "timeseries",
        [(f"resource_agent_collector_success{{{NODE}}}", "{{node}} {{collector}}")],
        (12, 13, 12, 7),
        description="1 = the collector ran; 0 = it failed (a missing source such as no NVML is not a failure).",
    )

    panels.append(_row(next(ids), "GPU", 20))
    add("GPU utilisation", "timeseries", [(f"resource_agent_gpu_utilization_ratio{{{NODE}}}", "{{node}}/{{gpu}}")], (0, 21, 12, 8), unit="percentunit")
    add(
        "GPU memory used",
        "timeseries",
        [(f"resource_agent_gpu_memory_used_bytes{{{NODE}}} / resource_agent_gpu_memory_total_bytes{{{NODE}}}", "{{node}}/{{gpu}}")],
        (12, 21, 12, 8),
        unit="percentunit",
    )
    add(
        "GPU temperature",
        "timeseries",
        [(f"resource_agent_gpu_temperature_celsius{{{NODE}}}", "{{node}}/{{gpu}}")],
        (0, 29, 8, 8),
        unit="celsius",
        thresholds=[("green", None), ("orange", 80), ("red", 85)],
    )
    add("GPU power", "timeseries", [(f"resource_agent_gpu_power_watts{{{NODE}}}", "{{node}}/{{gpu}}")], (8, 29, 8, 8), unit="watt")
    add(
        "XID errors",
        "timeseries",
        [(f"increase(resource_agent_gpu_xid_errors_total{{{NODE}}}[$__rate_interval])", "{{node}}/{{gpu}} xid {{xid}}")],
        (16, 29, 8, 8),
    )

    panels.append(_row(next(ids), "LMCache", 37))
    add(
        "KV cache hit rate",
        "timeseries",
        [
            (
                f"sum by (node, lmcache_instance) (rate(resource_agent_lmcache_hit_tokens_total{{{NODE}}}[$__rate_interval]))"
                f" / sum by (node, lmcache_instance) (rate(resource_agent_lmcache_requested_tokens_total{{{NODE}}}[$__rate_interval]))",
                "{{node}} {{lmcache_instance}}",
            )
        ],
        (0, 38, 8, 8),
        unit="percentunit",
        description="Share of requested tokens served from the cache.",
    )
    add("Local CPU cache usage", "timeseries", [(f"resource_agent_lmcache_local_cpu_usage_bytes{{{NODE}}}", "{{node}} {{lmcache_instance}}")], (8, 38, 8, 8), unit="bytes")
    add(
        "Instances reachable",
        "timeseries",
        [(f"resource_agent_lmcache_up{{{NODE}}}", "{{node}} {{lmcache_instance}}")],
        (16, 38, 8, 8),
    )

    panels.append(_row(next(ids), "Recommendations", 46))
    add(
        "Recommendations by severity",
        "timeseries",
        [('sum by (severity) (resource_agent_operator_recommendations{phase="Open"})', "{{severity}}")],
        (0, 47, 8, 8),
    )
    add(
        "Node health score",
        "timeseries",
        [(f"resource_agent_operator_node_health_score{{{NODE}}}", "{{node}}")],
        (8, 47, 8, 8),
        description="The operator's health score per node (100 = no findings).",
    )
    add(
        "Reconciles",
        "timeseries",
        [("sum by (outcome) (rate(resource_agent_operator_reconciles_total[$__rate_interval]))", "{{outcome}}")],
        (16, 47, 8, 8),
        unit="ops",
    )

    node_variable = {
        "name": "node",
        "type": "query",
        "label": "Node",
        "datasource": DATASOURCE,
        "query": {"query": "label_values(resource_agent_collector_success, node)", "refId": "node"},
        "definition": "label_values(resource_agent_collector_success, node)",
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "refresh": 2,
        "sort": 1,
    }
    datasource_variable = {
        "name": "datasource",
        "type": "datasource",
        "label": "Data source",
        "query": "prometheus",
        "current": {},
    }
    return {
        "uid": "resource-agent",
        "title": "Resource Agent",
        "description": "GPU, host and LMCache resources per node, and the operator's recommendations.",
        "tags": ["resource-agent", "gpu", "llm"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "timezone": "",
        "templating": {"list": [datasource_variable, node_variable]},
        "annotations": {"list": []},
        "panels": panels,
    }


def rendered() -> dict[Path, str]:
    """Every file this script owns, and its content."""
    text = json.dumps(dashboard(), indent=2) + "\n"
    rules = RULES.read_text()
    return {
        DASHBOARD: text,
        CHART_FILES / "resource-agent.json": text,
        CHART_FILES / "prometheus-rules.yaml": rules,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a committed file differs")
    args = parser.parse_args(argv)
    stale = []
    for path, content in rendered().items():
        if path.exists() and path.read_text() == content:
            continue
        if args.check:
            stale.append(path.relative_to(ROOT))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("stale (run python dashboards/generate.py): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
