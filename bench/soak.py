"""Soak: the agent and the operator for a bounded run on a real control plane; fail on a growth trend.

Starts the local control plane (devtools/devcluster/local.py) with `--nodes` simulated GPU nodes
whose ResourceReports this process writes the way agents write them (the product's `ReportWriter`,
one per node, fed scenario summaries: most nodes healthy, every 10th with findings, every 20th
flapping between healthy and throttled so recommendations open and resolve all run long), plus one
real `resource-agent agent` on its own node whose LMCache and serving collectors scrape the
simulators in devtools/ (and whose /metrics is scraped like Prometheus would), and one real
`resource-agent operator` over all of it.

Every `--sample-seconds` it reads RSS, open file descriptors and threads of the agent and the
operator from /proc, and the operator's asyncio tasks from its /metrics
(`resource_agent_operator_asyncio_tasks`). At the end it fits a least-squares line to each series
after the warm-up (`--warmup`, a share of the run) and calls the series GROWING when both

    slope × fitted span > GROWTH_PERCENT % of the series' mean, and
    slope / standard error of the slope > T_MIN (the error from the residuals of the fit),

i.e. the trend is large enough to matter and not explained by noise. Exit status: 0 no growth,
1 a growth trend, 2 the run did not complete (a process died, too few samples).

    .venv/bin/python bench/soak.py [--minutes 30] [--nodes 50] [--json FILE] [--write docs/RELIABILITY.md]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.docsection import machine
from devtools.reliability_doc import soak_table, write_soak

GROWTH_PERCENT = 10.0
T_MIN = 3.0
HEALTHY = "healthy-busy"
WITH_FINDINGS = ("thermal-throttle", "idle-gpu-holding-memory", "power-capped", "memory-pressure", "ecc-xid-failing")
FLAP = (HEALTHY, "thermal-throttle")
SERIES = (("agent", "rss_mib"), ("agent", "fds"), ("agent", "threads"),
          ("operator", "rss_mib"), ("operator", "fds"), ("operator", "threads"), ("operator", "asyncio_tasks"))


@dataclass(frozen=True)
class Trend:
    """A least-squares line through one series after the warm-up, and the verdict on it."""

    process: str
    series: str
    samples: int
    mean: float
    first: float
    last: float
    low: float
    high: float
    slope_per_hour: float
    growth_percent: float  # slope × fitted span, as a share of the mean
    t: float  # slope / its standard error (inf: a perfect line)
    growing: bool


def trend(process: str, series: str, times: Sequence[float], values: Sequence[float]) -> Trend:
    """Fit `values` over `times` (seconds) and judge it: GROWING when both thresholds are passed."""
    n = len(times)
    if n < 3:
        raise ValueError(f"{process} {series}: {n} samples after the warm-up; 3 are needed for a trend")
    mean_t, mean_v = sum(times) / n, sum(values) / n
    sxx = sum((t - mean_t) ** 2 for t in times)
    slope = sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True)) / sxx
    residuals = sum((v - mean_v - slope * (t - mean_t)) ** 2 for t, v in zip(times, values, strict=True))
    error = math.sqrt(residuals / (n - 2) / sxx)
    t_stat = slope / error if error > 0 else math.copysign(math.inf, slope) if slope else 0.0
    span = times[-1] - times[0]
    growth = 100 * slope * span / mean_v if mean_v else (math.inf if slope > 0 else 0.0)
    return Trend(process, series, n, mean_v, values[0], values[-1], min(values), max(values), slope * 3600,
                 growth, t_stat, growth > GROWTH_PERCENT and t_stat > T_MIN)


def after_warmup(samples: list[dict[str, Any]], warmup: float) -> list[dict[str, Any]]:
    end = samples[-1]["t"]
    return [s for s in samples if s["t"] >= warmup * end]


def trends(samples: list[dict[str, Any]], warmup: float) -> list[Trend]:
    kept = after_warmup(samples, warmup)
    out = []
    for process, series in SERIES:
        points = [(s["t"], s[process][series]) for s in kept if s[process].get(series) is not None]
        out.append(trend(process, series, [t for t, _ in points], [v for _, v in points]))
    return out


# --- sampling ------------------------------------------------------------------------------

def proc_figures(pid: int) -> dict[str, float]:
    """RSS (MiB), threads, open file descriptors and CPU seconds (user + system) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rpartition(")")[2].split()  # after the command name, which may hold spaces
    figures: dict[str, float] = {"cpu_s": round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key == "VmRSS":
                figures["rss_mib"] = round(int(value.split()[0]) / 1024, 2)
            elif key == "Threads":
                figures["threads"] = int(value)
    figures["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return figures


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def metric_sum(text: str, name: str) -> float | None:
    """The sum of the samples of `name` (any labels) in an exposition; None when absent."""
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith((name + " ", name + "{"))]
    return sum(values) if values else None


# --- the run -------------------------------------------------------------------------------

class FleetWriter:
    """`nodes` simulated agents: one product ReportWriter per node, each offered a summary per interval and
    writing every one (no heartbeat: a steady write load, the most the operator can be offered)."""

    def __init__(self, kubeconfig: str, nodes: list[str], interval: float) -> None:
        from resource_agent.kube.reporter import ReportWriter
        from resource_agent.kubeclient.config import load_connection
        from resource_agent.kubeclient.rest import KubeClient

        self.nodes = nodes
        self.interval = interval
        self.writers = [ReportWriter(KubeClient(load_connection(kubeconfig)), heartbeat_seconds=0.0).start() for _ in nodes]
        self.counts = [0] * len(nodes)
        self._cache: dict[tuple[int, str, int], Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-writer", daemon=True)

    def scenario(self, i: int) -> str:
        if i % 20 == 5:
            return FLAP[self.counts[i] % 2]
        return WITH_FINDINGS[(i // 10) % len(WITH_FINDINGS)] if i % 10 == 0 else HEALTHY

    def summary(self, i: int) -> Any:
        from resource_agent.node_agent.window import summarize
        from resource_agent.scenarios import generate

        key = (i, self.scenario(i), self.counts[i] % 3)
        if key not in self._cache:
            self._cache[key] = summarize(list(generate(key[1], seed=key[2], samples=12, gpus=8)), self.nodes[i])
        return self._cache[key]

    def _run(self) -> None:
        step = self.interval / len(self.nodes)  # spread the writes over the interval
        while not self._stop.is_set():
            for i, writer in enumerate(self.writers):
                writer.offer(self.summary(i))
                self.counts[i] += 1
                if self._stop.wait(step):
                    return

    def start(self) -> FleetWriter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for writer in self.writers:
            writer.stop()

    def totals(self) -> dict[str, int]:
        return {"writes": sum(w.writes for w in self.writers), "failures": sum(w.failures for w in self.writers)}


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from devtools.demo.stack import agent_process, free_port, free_port_block, install_crds, operator_process, stop_all
    from devtools.devcluster.local import LocalCluster
    from devtools.devcluster.nodes import NodeSpec, add_nodes, gpu_nodes
    from devtools.lmcache_simulator import SimulatedInstance
    from devtools.serving_simulator import SimulatedEngine, serve

    suffix = uuid.uuid4().hex[:4]
    fleet = gpu_nodes(args.nodes, prefix=f"soak-{suffix}")
    real_node = f"soak-{suffix}-agent"
    lmcache = SimulatedInstance(port=free_port_block(3), workers=2, profile="thrash").start()
    engine_port = free_port()
    engine = serve(SimulatedEngine("vllm", "healthy", seed=1), engine_port)
    processes = []
    started_cluster = time.monotonic()
    with LocalCluster(work / "cluster") as cluster:
        cluster_seconds = time.monotonic() - started_cluster

        def kubectl(*words: str) -> Any:
            return subprocess.run([str(cluster.bin_dir / "kubectl"), f"--kubeconfig={cluster.kubeconfig}", *words],
                                  check=True, capture_output=True, text=True, timeout=120)

        install_crds(kubectl)
        api = cluster.api_client()
        add_nodes(api, [*fleet, NodeSpec(real_node)], timeout=120)
        agent = agent_process(real_node, HEALTHY, work, kubeconfig=cluster.kubeconfig,
                              interval="1s", window="10s", report_interval="5s")
        agent.args.remove("--no-collector.lmcache")
        agent.args += ["--collector.lmcache", f"--lmcache-url={lmcache.spec()}",
                       "--collector.serving", f"--serving-url=vllm=http://127.0.0.1:{engine_port}"]
        agent_metrics = next(a.split("=", 1)[1] for a in agent.args if a.startswith("--listen="))
        operator = operator_process(work, kubeconfig=cluster.kubeconfig, resolved_ttl="2m",
                                    evidence_refresh="1m", fleet_interval="10s")
        processes = [agent.start(), operator.start()]
        writer = FleetWriter(str(cluster.kubeconfig), [spec.name for spec in fleet], args.report_seconds).start()
        samples: list[dict[str, Any]] = []
        problem = None
        start = time.monotonic()
        try:
            while (elapsed := time.monotonic() - start) < args.minutes * 60:
                dead = [p.name for p in processes if not p.alive]
                if dead:
                    problem = f"died during the run: {', '.join(dead)}"
                    break
                sample: dict[str, Any] = {"t": round(elapsed, 2), "agent": proc_figures(agent.popen.pid),  # type: ignore[union-attr]
                                          "operator": proc_figures(operator.popen.pid)}  # type: ignore[union-attr]
                try:
                    scrape(f"http://{agent_metrics}/metrics")  # the agent serves Prometheus while it soaks
                    exposition = scrape(operator.metrics_url or "")
                    sample["operator"]["asyncio_tasks"] = metric_sum(exposition, "resource_agent_operator_asyncio_tasks")
                    sample["reconciles"] = metric_sum(exposition, "resource_agent_operator_reconciles_total")
                except OSError as exc:
                    sample["scrape_error"] = str(exc)
                samples.append(sample)
                time.sleep(max(0.0, args.sample_seconds - (time.monotonic() - start - elapsed)))
        finally:
            writer.stop()
            recommendations = json.loads(kubectl("get", "resourcerecommendations", "-o", "json").stdout)["items"]
            report = json.loads(kubectl("get", "resourcereport", real_node, "-o", "json").stdout).get("status", {})
            stop_all(processes)
            lmcache.stop()
            engine.shutdown()
            if problem:
                print("\n".join(f"--- {p.name}\n{p.tail()}" for p in processes), file=sys.stderr)
    phases: dict[str, int] = {}
    for item in recommendations:
        phase = item.get("status", {}).get("phase", "-")
        phases[phase] = phases.get(phase, 0) + 1
    return {
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
        "minutes": args.minutes, "nodes": args.nodes, "report_seconds": args.report_seconds,
        "sample_seconds": args.sample_seconds, "warmup": args.warmup, "cluster_start_seconds": round(cluster_seconds, 1),
        "growth_percent": GROWTH_PERCENT, "t_min": T_MIN, "problem": problem,
        "fleet": writer.totals(), "agent_report": agent_report(report),
        "recommendations": phases, "reconciles": next((s["reconciles"] for s in reversed(samples) if s.get("reconciles")), None),
        "scrape_errors": sum(1 for s in samples if "scrape_error" in s), "samples": samples,
    }


def agent_report(status: dict[str, Any]) -> dict[str, Any]:
    """What the real agent's last report says of its live collectors (LMCache and serving scraped for real)."""
    return {"lmcache_instances": len(status.get("lmcache", {}).get("instances", [])),
            "serving_instances": len(status.get("serving", {}).get("instances", [])),
            "collectors": {c["name"]: c["state"] for c in status.get("collectors", [])}}


def verdict(result: dict[str, Any]) -> tuple[int, list[Trend]]:
    seen = result["agent_report"]
    if not result["problem"] and not (seen["lmcache_instances"] and seen["serving_instances"]):
        result["problem"] = f"the real agent's last report lacks LMCache or serving instances: {seen}"
    if result["problem"]:
        return 2, []
    try:
        found = trends(result["samples"], result["warmup"])
    except ValueError as exc:
        result["problem"] = str(exc)
        return 2, []
    return (1 if any(r.growing for r in found) else 0), found


def pace(result: dict[str, Any]) -> dict[str, float]:
    """Over the fitted span: the operator's reconciles per second and CPU ms per reconcile, the agent's CPU share."""
    kept = [s for s in after_warmup(result["samples"], result["warmup"]) if s.get("reconciles") is not None]
    if len(kept) < 2:
        return {}
    first, last = kept[0], kept[-1]
    seconds, reconciles = last["t"] - first["t"], last["reconciles"] - first["reconciles"]
    operator_cpu = last["operator"]["cpu_s"] - first["operator"]["cpu_s"]
    step = max(1, round(60 / result["sample_seconds"]))  # per minute: a backlog shows as slow minutes, then fast ones
    minutes = [(b["reconciles"] - a["reconciles"]) / (b["t"] - a["t"]) for a, b in zip(kept[::step], kept[step::step], strict=False)]
    return {"reconciles_per_s": round(reconciles / seconds, 2),
            "slowest_minute_reconciles_per_s": round(min(minutes, default=math.nan), 2),
            "fastest_minute_reconciles_per_s": round(max(minutes, default=math.nan), 2),
            "operator_cpu_ms_per_reconcile": round(1000 * operator_cpu / reconciles, 1) if reconciles else math.inf,
            "operator_cpu_percent": round(100 * operator_cpu / seconds, 1),
            "agent_cpu_percent": round(100 * (last["agent"]["cpu_s"] - first["agent"]["cpu_s"]) / seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the measured run")
    parser.add_argument("--nodes", type=int, default=50, help="simulated nodes whose reports this process writes")
    parser.add_argument("--report-seconds", type=float, default=10.0, help="report interval of each simulated node")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1 / 3, help="share of the run left out of the fit")
    parser.add_argument("--json", type=Path, help="write the result (samples included) as JSON")
    parser.add_argument("--write", type=Path, help="write the soak section of the page (docs/RELIABILITY.md)")
    parser.add_argument("--from-json", type=Path, help="judge and write a result saved with --json (no run)")
    parser.add_argument("--keep", type=Path, help="keep the processes' logs and the control plane's state here")
    args = parser.parse_args(argv)
    if args.from_json:
        result = json.loads(args.from_json.read_text())
    elif args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
            result = run(args, Path(tmp))
    if args.json and not args.from_json:  # the raw run first: --from-json judges it again
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    status, found = verdict(result)
    result["trends"] = [asdict(r) for r in found]
    result["status"] = status
    result["pace"] = pace(result) if result["samples"] and "cpu_s" in result["samples"][-1]["operator"] else {}
    print(f"{result['minutes']:g} min, {result['nodes']} simulated nodes + 1 agent; fleet {result['fleet']}, "
          f"agent report {result['agent_report']}, operator reconciles {result['reconciles']}, recommendations {result['recommendations']}, "
          f"{len(result['samples'])} samples, {result['scrape_errors']} scrape errors; after the warm-up {result['pace']}")
    if found:
        print("\n".join(soak_table(result["trends"])))
    if result["problem"]:
        print(f"FAILED: {result['problem']}")
    elif status:
        print(f"FAILED: growth trend in {', '.join(f'{r.process} {r.series}' for r in found if r.growing)}")
    if args.json and not args.from_json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.write:
        write_soak(args.write, result)
    return status


if __name__ == "__main__":
    sys.exit(main())
