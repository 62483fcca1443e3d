"""The operator alone: its own ceiling per report as the fleet grows, apart from the API server's.

Drives the real `Operator` (resource_agent/operator/handlers.py) in-process with synthetic
ResourceReport statuses (scenario summaries of 8-GPU nodes: most healthy, some with findings,
some flapping between healthy and throttled every report) against a fake store at the
Kubernetes API edge that counts the calls and keeps the recommendations index the way kopf's
index would. Each fleet size runs in its own process (RSS is per size):

1. restart: every node's report arrives once (N reports present when the operator starts);
2. steady: `--reports` more reports, in a shuffled round over the nodes; the fleet pass runs
   once per N reports (one fleet interval at one report per node per minute);
3. with `--profile K`: the same reports again under cProfile (not in the figures), top K entries.

Printed per size: reports/s, CPU ms per report, API calls per report, RSS and RSS per node;
then the CPU per report at each size as a ratio of the smallest size's (same run, same
machine), against the targets. kopf's own per-event work (watch decoding, body copies) is not
in it: the handler is called as kopf calls it, after kopf.

    .venv/bin/python -m bench.operator_alone [--sizes 100,1000,5000] [--reports 1000]
        [--profile N] [--write docs/PERFORMANCE.md]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import logging
import os
import pstats
import random
import resource
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from bench.docsection import machine, versions, write_section
from bench.fleet_mix import HEALTHY, MIX, kind_of, node_name, pick, summaries
from resource_agent.api.resources import ResourceReportStatus
from resource_agent.api.timestamps import rfc3339, utc_now
from resource_agent.operator.actions import ActionExecutor
from resource_agent.operator.coverage import report_time
from resource_agent.operator.handlers import NodeSeen, Operator, ReportSeen
from resource_agent.operator.metrics import OperatorMetrics
from resource_agent.operator.records import index_entry
from resource_agent.operator.settings import OperatorSettings

TARGET_RATIO = 1.5  # CPU per report at the largest size / at the smallest
TARGET_REPORTS_PER_SECOND = 83.0  # 5,000 nodes at one report per node per minute
TARGET_KIB_PER_NODE = 40.0


class CountingStore:
    """The operator's RecommendationStore at the API edge: counts calls, keeps objects, feeds the index."""

    def __init__(self, index: dict[str, list[Any]], reports: dict[str, dict[str, Any]], nodes: int) -> None:
        self.calls: Counter[str] = Counter()
        self.index = index
        self.reports = reports
        self.objects: dict[str, dict[str, Any]] = {}
        self.nodes = [{"metadata": {"name": node_name(i)}, "status": {"capacity": {"nvidia.com/gpu": "8"}}}
                      for i in range(nodes)]

    def _reindex(self, name: str) -> None:
        body = self.objects[name]
        entry = index_entry(name, body["spec"], body.get("status") or {}, body["metadata"].get("annotations") or {})
        node = entry.existing.node_name
        self.index[node] = [e for e in self.index.get(node, []) if e.existing.name != name] + [entry]

    async def apply_spec(self, name: str, spec: Any, digest: str, report_uid: str | None) -> dict[str, Any]:
        self.calls["apply"] += 1
        body = self.objects.setdefault(name, {"metadata": {"name": name, "generation": 0}, "status": {}})
        body["metadata"]["generation"] += 1
        body["metadata"]["annotations"] = {"resource-agent.io/spec-digest": digest}
        body["spec"] = spec.to_wire()
        self._reindex(name)
        return body

    async def apply_status(self, name: str, status: Any, manager: str = "") -> dict[str, Any]:
        self.calls["apply-status"] += 1
        body = self.objects[name]
        body["status"] = status.to_wire()
        self._reindex(name)
        return body

    async def apply_result(self, name: str, result: dict[str, Any] | None) -> dict[str, Any]:
        self.calls["apply-status"] += 1
        return self.objects[name]

    async def get(self, name: str) -> dict[str, Any] | None:
        self.calls["get"] += 1
        return self.objects.get(name)

    async def delete(self, name: str) -> None:
        self.calls["delete"] += 1
        body = self.objects.pop(name, None)
        if body is not None:
            node = body["spec"]["nodeName"]
            self.index[node] = [e for e in self.index.get(node, []) if e.existing.name != name]

    async def event(self, obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
        self.calls["event"] += 1

    async def list_nodes(self) -> list[dict[str, Any]]:
        self.calls["list-nodes"] += 1
        return self.nodes

    async def list_reports(self) -> list[dict[str, Any]]:
        self.calls["list-reports"] += 1
        return list(self.reports.values())


async def no_summary(node: str) -> None:
    return None  # no approved actions in the benchmark


def templates() -> dict[str, list[dict[str, Any]]]:
    """The mix's summaries in wire form."""
    return {scenario: [summary.to_wire() for summary in seeds] for scenario, seeds in summaries().items()}


def status_for(i: int, kind: str, count: int, tpl: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    status = dict(pick(tpl, i, kind, count))
    status["nodeName"] = node_name(i)
    status["reportedAt"] = rfc3339(utc_now())
    return status


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def run_size(nodes: int, reports: int, prime: str, profile: int) -> dict[str, Any]:
    rng = random.Random(nodes)
    tpl = templates()
    ResourceReportStatus.model_validate({**tpl[HEALTHY][0], "reportedAt": rfc3339(utc_now())})  # warm pydantic
    kinds = [kind_of(i, rng) for i in range(nodes)]
    counts = [0] * nodes
    index: dict[str, list[Any]] = {}
    report_objects: dict[str, dict[str, Any]] = {}
    store = CountingStore(index, report_objects, nodes)
    settings = replace(OperatorSettings(priority=1), fleet_interval_seconds=1e9)
    executor = ActionExecutor(lambda node: no_summary(node), None)
    operator = Operator(settings, store, OperatorMetrics(CollectorRegistry()), executor)  # type: ignore[arg-type]
    # kopf's indexes of the reports' times and the nodes' GPU capacity, as the coverage pass reads them
    report_times: dict[str, list[Any]] = {}
    node_capacity = {node_name(i): [NodeSeen(f"node-uid-{i}", 8)] for i in range(nodes)}
    operator._remember_indexes({"report_times": report_times, "node_capacity": node_capacity})
    logger = logging.getLogger("bench.operator")
    per_interval = nodes  # one fleet pass per fleet interval = N reports at one report per node per minute
    seen = 0

    async def deliver(i: int) -> None:
        nonlocal seen
        status = status_for(i, kinds[i], counts[i], tpl)
        counts[i] += 1
        name = node_name(i)
        report_objects[name] = {"metadata": {"name": name}, "status": status}
        report_times[name] = [ReportSeen(f"uid-{i}", report_time({"status": status}))]
        if seen % per_interval == 0:
            operator._last_fleet_pass = float("-inf")  # the fleet interval is up
        seen += 1
        await operator.on_report(name, f"uid-{i}", status, index, report_objects[name], logger)  # type: ignore[arg-type]

    for i in range(nodes):  # N reports present when the operator starts (the coverage pass lists them)
        report_objects[node_name(i)] = {"metadata": {"name": node_name(i)}, "status": status_for(i, kinds[i], 0, tpl)}
        report_times[node_name(i)] = [ReportSeen(f"uid-{i}", report_time(report_objects[node_name(i)]))]
    gc.collect()
    rss_before = rss_bytes()
    wall, cpu = time.perf_counter(), time.process_time()
    if prime == "reports":
        for i in range(nodes):
            await deliver(i)
    else:  # the fleet tracker only (a quicker way to reach N nodes when per-report cost grows with N)
        from resource_agent.analysis.engine import analyze
        for i in range(nodes):
            report = ResourceReportStatus.model_validate(status_for(i, kinds[i], counts[i], tpl))
            counts[i] += 1
            operator.fleet.observe(report, analyze(report, settings.policy))
    restart_wall, restart_cpu = time.perf_counter() - wall, time.process_time() - cpu
    restart_calls = sum(store.calls.values())
    gc.collect()
    rss_primed = rss_bytes()

    order = list(range(nodes))
    rng.shuffle(order)
    sequence = [order[j % nodes] for j in range(reports)]
    store.calls.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    for i in sequence:
        await deliver(i)
    steady_wall, steady_cpu = time.perf_counter() - wall, time.process_time() - cpu
    steady_calls = dict(store.calls)
    gc.collect()
    top = ""
    if profile:  # a second round under cProfile, not in the figures (it slows Python calls down)
        profiler = cProfile.Profile()
        profiler.enable()
        for i in sequence:
            await deliver(i)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(profile)
        top = text.getvalue()
    return {
        "nodes": nodes, "reports": reports, "prime": prime,
        "restart_s": restart_wall, "restart_cpu_s": restart_cpu, "restart_calls": restart_calls,
        "reports_per_s": reports / steady_wall, "cpu_ms_per_report": 1000 * steady_cpu / reports,
        "calls_per_report": sum(steady_calls.values()) / reports, "calls": steady_calls,
        "rss_mib": rss_bytes() / 2**20, "rss_kib_per_node": (rss_primed - rss_before) / 1024 / nodes,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "recommendations": len(store.objects), "profile": top,
    }


def table(results: list[dict[str, Any]]) -> list[str]:
    base = results[0]["cpu_ms_per_report"]
    lines = ["| nodes | restart (N reports) s | reports/s | CPU ms/report | × smallest | API calls/report | RSS MiB | RSS KiB/node |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        restart = f"{r['restart_s']:.1f}" if r["prime"] == "reports" else "(not measured)"
        lines.append(f"| {r['nodes']} | {restart} | {r['reports_per_s']:.0f} | {r['cpu_ms_per_report']:.2f} | "
                     f"{r['cpu_ms_per_report'] / base:.2f} | {r['calls_per_report']:.3f} | {r['rss_mib']:.0f} | "
                     f"{r['rss_kib_per_node']:.1f} |")
    return lines


def verdicts(results: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    small, large = results[0], results[-1]
    ratio = large["cpu_ms_per_report"] / small["cpu_ms_per_report"]
    kib = max(r["rss_kib_per_node"] for r in results)
    return [
        (f"CPU per report at {large['nodes']} nodes is {ratio:.2f}x the figure at {small['nodes']} "
         f"(target <= {TARGET_RATIO}x, margin {TARGET_RATIO / ratio:.1f}x)", ratio <= TARGET_RATIO),
        (f"operator alone at {large['nodes']} nodes: {large['reports_per_s']:.0f} reports/s "
         f"(target >= {TARGET_REPORTS_PER_SECOND:.0f}/s, margin {large['reports_per_s'] / TARGET_REPORTS_PER_SECOND:.1f}x)",
         large["reports_per_s"] >= TARGET_REPORTS_PER_SECOND),
        (f"RSS per node at most {kib:.1f} KiB (target <= {TARGET_KIB_PER_NODE:.0f} KiB, "
         f"margin {TARGET_KIB_PER_NODE / max(kib, 0.1):.1f}x)", kib <= TARGET_KIB_PER_NODE),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--reports", type=int, default=1000, help="steady-state reports measured per size")
    parser.add_argument("--prime", choices=("reports", "direct"), default="reports",
                        help="reach N nodes through on_report (the restart figure) or the fleet tracker only")
    parser.add_argument("--profile", type=int, default=0, help="print the top N cProfile entries of the steady phase")
    parser.add_argument("--write", type=Path, help="write the results as markdown (docs/PERFORMANCE.md)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.one is not None:
        print(json.dumps(asyncio.run(run_size(args.one, args.reports, args.prime, args.profile))))
        return 0
    results = []
    for nodes in (int(s) for s in args.sizes.split(",")):
        command = [sys.executable, "-m", "bench.operator_alone", "--one", str(nodes), "--reports", str(args.reports),
                   "--prime", args.prime, "--profile", str(args.profile)]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900, cwd=Path(__file__).parents[1])
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f"{nodes:>6} nodes: restart {result['restart_s']:.1f} s ({result['restart_calls']} API calls), "
              f"{result['reports_per_s']:.0f} reports/s, {result['cpu_ms_per_report']:.2f} CPU ms/report, "
              f"{result['calls_per_report']:.3f} API calls/report {result['calls']}, RSS {result['rss_mib']:.0f} MiB "
              f"({result['rss_kib_per_node']:.1f} KiB/node, peak {result['peak_rss_mib']:.0f} MiB), "
              f"{result['recommendations']} recommendations", flush=True)
        if result["profile"]:
            print(result["profile"])
    print()
    print("\n".join(table(results)))
    checks = verdicts(results)
    for text, ok in checks:
        print(("OK:   " if ok else "MISS: ") + text)
    if args.write:
        write_doc(args.write, results, checks, args)
    return 0


def profile_section(result: dict[str, Any]) -> list[str]:
    """The top of the cProfile of the largest size's steady phase (cumulative), when profiled."""
    lines = [line for line in result["profile"].splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), None)
    if start is None:
        return []
    return ["", f"cProfile of the steady phase at {result['nodes']} nodes ({result['reports']} reports), by cumulative time:",
            "", "```", *(line.replace(str(Path.cwd()) + "/", "") for line in lines[start:start + 16]), "```"]


def write_doc(path: Path, results: list[dict[str, Any]], checks: list[tuple[str, bool]], args: argparse.Namespace) -> None:
    section = [
        "## The operator alone (`bench/operator_alone.py`)",
        "",
        f"Generated by `python -m bench.operator_alone --sizes {args.sizes} --reports {args.reports} --write {path}` "
        f"on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        f"- machine: {machine()}",
        f"- versions: {versions('kopf', 'pydantic', 'prometheus-client', 'kubernetes')}",
        f"- mix: {MIX}; the fleet pass once per N reports; "
        "the store is a counting fake at the API edge (no API server, no kopf watch decoding).",
        "",
        *table(results),
        "",
        *[f"- {'met' if ok else 'MISSED'}: {text}" for text, ok in checks],
        *profile_section(results[-1]),
    ]
    write_section(path, "<!-- operator-alone -->", section)


if __name__ == "__main__":
    sys.exit(main())
