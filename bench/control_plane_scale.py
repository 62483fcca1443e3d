"""One operator replica against the real local control plane, as the fleet grows.

Starts the local control plane (etcd, kube-apiserver, kwok: devtools/devcluster/local.py), the CRDs
and one `resource-agent operator` process (standalone, no LLM), then per fleet size:

1. creates the nodes up to N (the first `--kwok-nodes` managed by kwok, with leases; the rest plain
   Node objects with 8 GPUs of capacity) and every new node's ResourceReport, the way an agent
   starting does (server-side apply of the object, then of the status: the bodies of
   resource_agent/kube/reporter.py), then waits until the operator has caught up;
2. offers reports for `--duration` seconds at `--rate` (the same sampled rate at every size, one the
   local API server carries: per-report costs and latency compared across sizes), in shuffled rounds
   over the nodes, the fleet mix of bench/fleet_mix.py (most healthy, ~10% with findings, ~5% flapping);
3. at the largest size, also at the real rate (one report per node per `--interval`: 83/s at 5,000
   nodes), then profiles the operator with py-spy at the sampled rate.

Printed per phase: offered and processed reports/s, backlog at the end, report→recommendation
latency p50/p95/p99 for new findings (a watch on ResourceRecommendations: the first event of the
node's recommendation that is not Resolved, after the write that introduced the finding, measured
from when that write was sent), operator CPU ms per report and RSS (/proc of its pid), API requests
per report (the API server's apiserver_request_total, all clients), API server + etcd CPU ms per
report written (/proc; everything a report causes: its write, the watch events, the operator's
writes, and the background in that time: their idle rate, measured before the phase, is printed
beside it), and the stored report size. Then server-side apply vs JSON merge-patch of the same status
body (API server + etcd CPU per write, bytes stored), alternated in blocks in the same run.

kube-controller-manager and kube-scheduler are stopped after the start: the node-lifecycle
controller would mark every plain Node unreachable (thousands of writes unrelated to reports), and
there are no pods to schedule. Loopback only; every phase is bounded in time.

    .venv/bin/python -m bench.control_plane_scale [--sizes 100,1000,5000] [--duration 60]
        [--rate 4] [--kwok-nodes 100] [--write docs/PERFORMANCE.md]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.docsection import machine, versions, write_section
from bench.fleet_mix import HEALTHY, MIX, has_findings, kind_of, node_name, pick, summaries
from devtools.demo.stack import ManagedProcess, install_crds, operator_process
from devtools.devcluster.local import LocalCluster
from devtools.devcluster.nodes import KWOK_ANNOTATION, NodeSpec, node_body
from resource_agent.api.names import GROUP, RECOMMENDATION_PLURAL, REPORT_PLURAL, VERSION
from resource_agent.api.resources import Phase
from resource_agent.api.summary import NodeSummary
from resource_agent.exposition import parse_samples
from resource_agent.kube.reporter import report_object, report_status
from resource_agent.kubeclient.rest import APPLY_PATCH

MARKER = "<!-- control-plane-scale -->"
MERGE_PATCH = "application/merge-patch+json"
REPORTS = f"/apis/{GROUP}/{VERSION}/{REPORT_PLURAL}"
RECOMMENDATIONS = f"/apis/{GROUP}/{VERSION}/{RECOMMENDATION_PLURAL}"
FIELD_MANAGER = "resource-agent"  # the agent's (resource_agent.api.resources.AGENT_FIELD_MANAGER)
IN_FLIGHT = 32  # concurrent writes of the load generator
TARGET_P95_S = 2.0
TARGET_RATIO = 1.5
REAL_INTERVAL_S = 60.0  # one report per node per minute


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its own threads; not its children)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Fleet:
    """The simulated nodes and what each has reported."""

    templates: dict[str, list[dict[str, Any]]]  # scenario -> report_status bodies (node name to fill in)
    rng: random.Random = field(default_factory=lambda: random.Random(16))
    kinds: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    uids: list[str] = field(default_factory=list)

    def add(self, count: int) -> None:
        """``count`` more nodes, each of a kind drawn from the mix."""
        for _ in range(count):
            self.kinds.append(kind_of(len(self.kinds), self.rng))
            self.counts.append(0)
            self.uids.append("")

    def body(self, i: int) -> dict[str, Any]:
        """Node i's next status apply body: the reporter's, with this node's name and the time now."""
        template = pick(self.templates, i, self.kinds[i], self.counts[i])
        name = node_name(i)
        status = {**template["status"], "nodeName": name, "reportedAt": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
        self.counts[i] += 1
        return {**template, "metadata": {"name": name}, "status": status}

    def introduces_finding(self, i: int) -> bool:
        """Whether node i's next report has findings its previous one had not."""
        kind, count = self.kinds[i], self.counts[i]
        return has_findings(kind, count) and (count == 0 or not has_findings(kind, count - 1))


def status_templates(mix: dict[str, list[NodeSummary]]) -> dict[str, list[dict[str, Any]]]:
    """report_status of each mix summary (the reporter's body), computed once."""
    now = datetime.now(UTC)
    return {scenario: [report_status(summary, now) for summary in seeds] for scenario, seeds in mix.items()}


class Api:
    """The admin's HTTPS session to the API server (keep-alive, loopback)."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.base = cluster.server
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=cluster.ssl_context(), limit=IN_FLIGHT + 8),
            read_bufsize=2**22, timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        )

    async def call(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                   ok: tuple[int, ...] = (200, 201)) -> Any:
        data = None if body is None else json.dumps(body)
        async with self.session.request(method, self.base + path, data=data, headers={"Content-Type": content_type}) as response:
            text = await response.text()
            if response.status not in ok:
                raise RuntimeError(f"{method} {path}: HTTP {response.status} {text[:300]}")
            return json.loads(text) if text.startswith("{") else text

    async def apply_status(self, body: dict[str, Any], patch: str = APPLY_PATCH) -> None:
        query = f"?fieldManager={FIELD_MANAGER}&force=true" if patch == APPLY_PATCH else f"?fieldManager={FIELD_MANAGER}"
        await self.call("PATCH", f"{REPORTS}/{body['metadata']['name']}/status{query}", body, patch)

    async def close(self) -> None:
        await self.session.close()


@dataclass
class Watch:
    """Report→recommendation latency: pending[node] is when the write that introduced a finding was sent."""

    pending: dict[str, float] = field(default_factory=dict)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (sent, latency)
    events: int = 0

    async def run(self, api: Api) -> None:
        while True:
            async with api.session.get(api.base + RECOMMENDATIONS + "?watch=1") as response:
                async for line in response.content:
                    if line.strip():
                        self.observe(json.loads(line), time.monotonic())

    def observe(self, event: dict[str, Any], now: float) -> None:
        self.events += 1
        obj = event.get("object") or {}
        if event.get("type") not in ("ADDED", "MODIFIED") or (obj.get("status") or {}).get("phase") == Phase.RESOLVED:
            return
        sent = self.pending.pop((obj.get("spec") or {}).get("nodeName", ""), None)
        if sent is not None:
            self.samples.append((sent, now - sent))


@dataclass
class Snapshot:
    at: float
    cpu: dict[str, float]
    requests: collections.Counter[tuple[str, str]]
    processed: float
    written: int


class Bench:
    def __init__(self, cluster: LocalCluster, api: Api, operator: ManagedProcess, args: argparse.Namespace) -> None:
        self.cluster, self.api, self.operator, self.args = cluster, api, operator, args
        mix = summaries()
        self.fleet = Fleet(status_templates(mix))
        self.summary = mix[HEALTHY][0]
        self.watch = Watch()
        self.written = 0
        self.write_errors = 0
        self.pids = {c.name: c.pid for c in cluster.components if c.name in ("kube-apiserver", "etcd") and c.pid}
        assert operator.popen is not None
        self.pids["operator"] = operator.popen.pid

    # -- measurements --------------------------------------------------------------------------

    async def requests(self) -> collections.Counter[tuple[str, str]]:
        text = await self.api.call("GET", "/metrics")
        samples, _ = parse_samples(text)
        counts: collections.Counter[tuple[str, str]] = collections.Counter()
        for sample in samples:
            if sample.name == "apiserver_request_total":
                counts[(sample.labels.get("resource", ""), sample.labels.get("verb", ""))] += int(sample.value)
        return counts

    async def processed(self) -> float:
        assert self.operator.metrics_url
        async with self.api.session.get(self.operator.metrics_url, ssl=False) as response:
            samples, _ = parse_samples(await response.text())
        return float(sum(s.value for s in samples if s.name == "resource_agent_operator_reconciles_total"))

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    async def snapshot(self, end: bool = False) -> Snapshot:
        """Counters now; the CPU read inside the scrapes of /metrics (their rendering costs the API server)."""
        cpu = self.cpu() if end else {}
        requests, processed = await self.requests(), await self.processed()
        return Snapshot(time.monotonic(), cpu or self.cpu(), requests, processed, self.written)

    async def idle_cores(self, seconds: float) -> dict[str, float]:
        """Cores each process uses with no reports offered (kwok's leases, the operator's timers)."""
        before, started = self.cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        after, elapsed = self.cpu(), time.monotonic() - started
        return {name: (after[name] - before[name]) / elapsed for name in after}

    async def operator_up(self, timeout: float) -> None:
        """Wait until the operator serves its metrics (then its watches are up a moment later)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.processed()
                break
            except aiohttp.ClientError:
                if not self.operator.alive or time.monotonic() > deadline:
                    raise RuntimeError(f"the operator did not start:\n{self.operator.tail()}") from None
                await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)

    async def drain(self, timeout: float) -> float:
        """Wait until the operator has processed every report written; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if await self.processed() >= self.written:
                break
            await asyncio.sleep(0.5)
        return time.monotonic() - started

    async def stored_size(self, sample: int = 20) -> dict[str, float]:
        """Mean bytes of a stored report as the API server returns it (JSON), and of its managedFields."""
        total, managed = [], []
        for i in range(0, len(self.fleet.kinds), max(1, len(self.fleet.kinds) // sample)):
            obj = await self.api.call("GET", f"{REPORTS}/{node_name(i)}")
            total.append(len(json.dumps(obj, separators=(",", ":"))))
            managed.append(len(json.dumps(obj["metadata"].get("managedFields", []), separators=(",", ":"))))
        return {"bytes": statistics.mean(total), "managed_fields_bytes": statistics.mean(managed)}

    # -- nodes and reports ---------------------------------------------------------------------

    async def grow(self, nodes: int) -> dict[str, float]:
        """Create nodes (and their reports) up to ``nodes``; wait for the operator to catch up."""
        first = len(self.fleet.kinds)
        started = time.monotonic()
        self.fleet.add(nodes - first)
        await bounded(range(first, nodes), self.create_agent)
        written = time.monotonic()
        drain = await self.drain(self.args.catch_up_timeout)
        return {"create_s": written - started, "catch_up_s": drain}

    async def create_agent(self, i: int) -> None:
        """A node and, right after it, its first report (else the fleet pass sees nodes without reports)."""
        await self.create_node(i)
        await self.create_report(i)

    async def create_node(self, i: int) -> None:
        body = node_body(NodeSpec(node_name(i)))
        if i >= self.args.kwok_nodes:
            del body["metadata"]["annotations"][next(iter(KWOK_ANNOTATION))]
        created = await self.api.call("POST", "/api/v1/nodes", body)
        self.fleet.uids[i] = created["metadata"]["uid"]

    async def create_report(self, i: int) -> None:
        obj = report_object(self.summary.model_copy(update={"node_name": node_name(i)}), self.fleet.uids[i])
        await self.api.call("PATCH", f"{REPORTS}/{node_name(i)}?fieldManager={FIELD_MANAGER}&force=true", obj, APPLY_PATCH)
        await self.write(i, track=False)

    async def write(self, i: int, track: bool = True) -> None:
        introduces = track and self.fleet.introduces_finding(i)
        body = self.fleet.body(i)
        sent = time.monotonic()
        if introduces:
            self.watch.pending[node_name(i)] = sent
        try:
            await self.api.apply_status(body)
        except (RuntimeError, aiohttp.ClientError):
            self.write_errors += 1
            self.watch.pending.pop(node_name(i), None)
            return
        self.written += 1

    async def write_as(self, i: int, patch: str) -> None:
        await self.api.apply_status(self.fleet.body(i), patch)

    # -- phases ----------------------------------------------------------------------------------

    async def offer(self, rate: float, duration: float) -> None:
        """Writes at ``rate``/s for ``duration`` s in shuffled rounds over the nodes (at most IN_FLIGHT at once;
        when they are all pending, the next write waits: the written rate is then what the API server carries)."""
        nodes = len(self.fleet.kinds)
        order = list(range(nodes))
        slots = asyncio.Semaphore(IN_FLIGHT)
        tasks: set[asyncio.Task[None]] = set()
        started = time.monotonic()
        k = 0
        while (due := started + k / rate) < started + duration:
            if k % nodes == 0:
                self.fleet.rng.shuffle(order)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await slots.acquire()
            if time.monotonic() >= started + duration:  # the API server fell behind: what was not written is not offered
                slots.release()
                break
            task = asyncio.create_task(self.write(order[k % nodes]))
            task.add_done_callback(lambda _: slots.release())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            k += 1
        if tasks:
            await asyncio.wait(tasks)

    async def phase(self, label: str, rate: float, duration: float) -> dict[str, Any]:
        await asyncio.sleep(3.0)  # the operator's last writes after the drain
        idle = await self.idle_cores(self.args.idle)
        self.watch.pending.clear()
        first_sample = len(self.watch.samples)
        before = await self.snapshot()
        await self.offer(rate, duration)
        after = await self.snapshot(end=True)
        backlog = after.written - after.processed
        drain = await self.drain(self.args.catch_up_timeout)
        await asyncio.sleep(1.0)  # the last recommendations' watch events
        latencies = [latency for _, latency in self.watch.samples[first_sample:]]
        elapsed = after.at - before.at
        written = after.written - before.written
        processed = after.processed - before.processed
        cpu = {name: after.cpu[name] - before.cpu[name] for name in after.cpu}
        requests = after.requests - before.requests
        return {
            "label": label, "nodes": len(self.fleet.kinds), "rate": rate, "duration_s": elapsed,
            "written_per_s": written / elapsed, "processed_per_s": processed / elapsed,
            "backlog": backlog, "drain_s": drain, "write_errors": self.write_errors,
            "latency": {f"p{q}": percentile(latencies, q) for q in (50, 95, 99)},
            "latency_samples": len(latencies), "unmatched": len(self.watch.pending),
            "operator_cpu_ms_per_report": 1000 * cpu["operator"] / max(processed, 1),
            "operator_rss_mib": rss_mib(self.pids["operator"]),
            "requests_per_report": sum(requests.values()) / max(written, 1),
            "requests_top": [(f"{verb} {resource}", n / max(written, 1)) for (resource, verb), n in requests.most_common(6)],
            "apiserver_ms_per_report": 1000 * cpu["kube-apiserver"] / max(written, 1),
            "etcd_ms_per_report": 1000 * cpu["etcd"] / max(written, 1),
            "cores": {name: value / elapsed for name, value in cpu.items()}, "idle_cores": idle,
            **(await self.stored_size()),
        }

    async def profile(self, rate: float, duration: float, out: Path) -> list[str]:
        """py-spy on the operator while reports are offered; the top frames by own and by total samples."""
        py_spy = Path(sys.executable).with_name("py-spy")
        if not py_spy.exists():
            return ["(py-spy not installed: uv sync)"]
        raw = out / "operator.pyspy.txt"
        command = [str(py_spy), "record", "--pid", str(self.pids["operator"]), "--duration", str(int(duration)),
                   "--rate", "50", "--gil", "--nonblocking", "--format", "raw", "--output", str(raw)]
        spy = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        await self.offer(rate, duration)
        _, err = await spy.communicate()
        await self.drain(self.args.catch_up_timeout)
        if not raw.exists():
            return [f"(py-spy failed: {err.decode()[-300:]})"]
        return top_frames(raw.read_text())

    async def compare_writes(self, writes: int, objects: int = 50) -> dict[str, Any]:
        """Server-side apply vs JSON merge-patch of the same status bodies, on fresh reports (operator stopped)."""
        first = len(self.fleet.kinds)
        sets = {"apply": range(first, first + objects), "merge-patch": range(first + objects, first + 2 * objects)}
        self.fleet.add(2 * objects)
        await bounded(range(first, first + 2 * objects), self.create_node)
        await bounded(range(first, first + 2 * objects), self.create_report)
        cpu = dict.fromkeys(sets, 0.0)
        count = dict.fromkeys(sets, 0)
        for block in range(4):  # alternate in blocks: the same machine load for both
            for how, nodes in sets.items():
                before = sum(cpu_seconds(self.pids[name]) for name in ("kube-apiserver", "etcd"))
                patch = APPLY_PATCH if how == "apply" else MERGE_PATCH
                todo = [nodes[k % objects] for k in range(block * writes // 4, (block + 1) * writes // 4)]
                await bounded(todo, functools.partial(self.write_as, patch=patch), limit=8)
                cpu[how] += sum(cpu_seconds(self.pids[name]) for name in ("kube-apiserver", "etcd")) - before
                count[how] += len(todo)
        result: dict[str, Any] = {"writes": count}
        for how, nodes in sets.items():
            stored = [await self.api.call("GET", f"{REPORTS}/{node_name(i)}") for i in nodes[:10]]
            result[how] = {
                "cpu_ms_per_write": 1000 * cpu[how] / count[how],
                "bytes": statistics.mean(len(json.dumps(o, separators=(",", ":"))) for o in stored),
                "managed_fields_bytes": statistics.mean(
                    len(json.dumps(o["metadata"]["managedFields"], separators=(",", ":"))) for o in stored),
            }
        return result


async def bounded(items: Any, call: Callable[[int], Any], limit: int = 16) -> None:
    """``call(i)`` for every item, at most ``limit`` at once."""
    slots = asyncio.Semaphore(limit)

    async def one(i: int) -> None:
        async with slots:
            await call(i)

    await asyncio.gather(*(one(i) for i in items))


OUTER_FRAMES = ("(click/core.py)", "(asyncio/base_events.py)", "(asyncio/runners.py)", "(<frozen runpy>)",
                "(resource_agent/cli/operator.py)", "(asyncio/events.py)")  # every sample's outer frames


def top_frames(raw: str, count: int = 15) -> list[str]:
    """From py-spy's collapsed stacks: the functions with the most own samples and the most total samples."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = [frame.split(" (")[0] + " (" + frame.split(" (")[-1].split(":")[0].replace(str(Path.cwd()) + "/", "")
                  .split("site-packages/")[-1] + ")" if " (" in frame else frame for frame in stack.split(";")]
        samples += int(n)
        own[frames[-1]] += int(n)
        for frame in set(frames):
            total[frame] += int(n)
    lines = [f"{samples} samples; own time (function, file):"]
    lines += [f"  {100 * n / samples:5.1f}%  {frame}" for frame, n in own.most_common(count)]
    lines += ["total time (in the function or below it):"]
    lines += [f"  {100 * n / samples:5.1f}%  {frame}" for frame, n in total.most_common()
              if not frame.endswith(OUTER_FRAMES)][:count]
    return lines


def kubectl_for(cluster: LocalCluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(cluster.bin_dir / "kubectl"), f"--kubeconfig={cluster.kubeconfig}", *args],
                              capture_output=True, text=True, check=True, timeout=120)
    return kubectl


def report_interval(args: argparse.Namespace) -> float:
    """The operator's --report-interval: a node's interval at the sampled rate when that is longer than the real
    one (else every report at the largest size would be stale, a coverage finding, and not what is measured)."""
    return max(args.interval, max(int(s) for s in args.sizes.split(",")) / args.rate)


def describe(p: dict[str, Any]) -> str:
    lat = p["latency"]
    ms = " / ".join("-" if lat[q] is None else f"{1000 * lat[q]:.0f}" for q in ("p50", "p95", "p99"))
    top = ", ".join(f"{name} {n:.2f}" for name, n in p["requests_top"])
    return (f"{p['label']}: {p['nodes']} nodes, offered {p['rate']:.1f}/s, written {p['written_per_s']:.1f}/s, "
            f"processed {p['processed_per_s']:.1f}/s, backlog {p['backlog']:.0f} (drained in {p['drain_s']:.1f} s), "
            f"latency p50/p95/p99 {ms} ms ({p['latency_samples']} new findings, {p['unmatched']} unmatched), "
            f"operator {p['operator_cpu_ms_per_report']:.2f} CPU ms/report RSS {p['operator_rss_mib']:.0f} MiB, "
            f"{p['requests_per_report']:.2f} API requests/report ({top}), API server {p['apiserver_ms_per_report']:.2f} + "
            f"etcd {p['etcd_ms_per_report']:.2f} CPU ms/report, cores "
            f"{', '.join(f'{k} {v:.2f}' for k, v in p['cores'].items())} (idle {', '.join(f'{k} {v:.2f}' for k, v in p['idle_cores'].items())}), "
            f"stored report {p['bytes'] / 1024:.1f} KiB (managedFields {p['managed_fields_bytes'] / 1024:.1f} KiB), "
            f"{p['write_errors']} write errors so far")


async def run(cluster: LocalCluster, args: argparse.Namespace, out: Path, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Every phase against ``cluster`` (started); returns the results."""
    for component in cluster.components:
        if component.name in ("kube-controller-manager", "kube-scheduler"):
            component.stop()
    install_crds(kubectl_for(cluster))
    operator = operator_process(out, kubeconfig=cluster.kubeconfig, fleet_interval=args.fleet_interval, log_level="warning")
    operator.args.append(f"--report-interval={report_interval(args):.0f}s")
    api = Api(cluster)
    operator.start()
    bench = Bench(cluster, api, operator, args)
    watcher = asyncio.create_task(bench.watch.run(api))
    results: dict[str, Any] = {"phases": [], "growth": [], "profile": [], "kwok_nodes": args.kwok_nodes}
    try:
        await bench.operator_up(60.0)
        sizes = [int(s) for s in args.sizes.split(",")]
        for nodes in sizes:
            growth = await bench.grow(nodes)
            results["growth"].append({"nodes": nodes, **growth})
            say(f"{nodes} nodes ({min(nodes, args.kwok_nodes)} kwok-managed): created with their first reports in "
                f"{growth['create_s']:.1f} s, operator caught up {growth['catch_up_s']:.1f} s later")
            rates = {"sampled": args.rate}
            if nodes == sizes[-1] and args.real:
                rates["real"] = nodes / args.interval
            for label, rate in rates.items():
                results["phases"].append(await bench.phase(label, rate, args.duration))
                say(describe(results["phases"][-1]))
        if args.profile:
            results["profile"] = await bench.profile(args.rate, args.profile, out)
            say("\n".join(results["profile"]))
        operator.stop()
        if args.compare_writes:
            results["compare"] = await bench.compare_writes(args.compare_writes)
            say(f"apply vs merge-patch: {json.dumps(results['compare'])}")
    finally:
        watcher.cancel()
        operator.stop()
        await api.close()
    return results


def table(results: dict[str, Any]) -> list[str]:
    lines = ["| nodes | phase | offered/s | written/s | processed/s | backlog | p50 / p95 / p99 ms (n) | operator CPU ms/report | "
             "× smallest | operator RSS MiB | API requests/report | API server + etcd CPU ms/report (idle cores) | stored report KiB |",
             "|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    base = results["phases"][0]["operator_cpu_ms_per_report"]  # the smallest size, sampled rate
    for p in results["phases"]:
        lat = p["latency"]
        ms = " / ".join("-" if lat[q] is None else f"{1000 * lat[q]:.0f}" for q in ("p50", "p95", "p99"))
        lines.append(
            f"| {p['nodes']} | {p['label']} | {p['rate']:.1f} | {p['written_per_s']:.1f} | {p['processed_per_s']:.1f} | {p['backlog']:.0f} | "
            f"{ms} ({p['latency_samples']}) | {p['operator_cpu_ms_per_report']:.2f} | {p['operator_cpu_ms_per_report'] / base:.2f} | "
            f"{p['operator_rss_mib']:.0f} | {p['requests_per_report']:.2f} | "
            f"{p['apiserver_ms_per_report']:.1f} + {p['etcd_ms_per_report']:.1f} "
            f"({p['idle_cores']['kube-apiserver']:.2f} + {p['idle_cores']['etcd']:.2f}) | {p['bytes'] / 1024:.1f} |")
    return lines


def carries(phase: dict[str, Any]) -> bool:
    """Whether the phase's rate was written and processed as offered (within 10%), with at most 2 s of backlog."""
    return bool(phase["written_per_s"] >= 0.9 * phase["rate"] and phase["processed_per_s"] >= 0.9 * phase["rate"]
                and phase["backlog"] <= 2 * phase["rate"])


def verdicts(results: dict[str, Any]) -> list[tuple[str, bool]]:
    phases = results["phases"]
    steady = [p for p in phases if p["label"] == "sampled"]
    small, large = steady[0], steady[-1]
    ratio = large["operator_cpu_ms_per_report"] / small["operator_cpu_ms_per_report"]
    carried = [p for p in phases if p["latency"]["p95"] is not None and carries(p)]
    checks = [(f"operator CPU per report at {large['nodes']} nodes is {ratio:.2f}x the figure at {small['nodes']} "
               f"(target <= {TARGET_RATIO}x, margin {TARGET_RATIO / ratio:.1f}x)", ratio <= TARGET_RATIO)]
    if carried:
        top = max(carried, key=lambda p: p["rate"])
        p95 = top["latency"]["p95"]
        checks.append((f"report→recommendation p95 {p95:.2f} s at {top['rate']:.0f} reports/s offered ({top['nodes']} nodes), "
                       f"the highest rate carried without a backlog (target <= {TARGET_P95_S:g} s, margin {TARGET_P95_S / p95:.1f}x)",
                       p95 <= TARGET_P95_S))
    return checks


def compare_lines(compare: dict[str, Any]) -> list[str]:
    a, m = compare["apply"], compare["merge-patch"]
    return [
        "",
        f"Server-side apply vs JSON merge-patch of the same status bodies ({compare['writes']['apply']} writes each, "
        "alternated in 4 blocks, operator stopped; 10 stored objects each):",
        "",
        "| write | API server + etcd CPU ms/write | stored bytes | managedFields bytes |",
        "|---|---:|---:|---:|",
        f"| server-side apply | {a['cpu_ms_per_write']:.2f} | {a['bytes']:.0f} | {a['managed_fields_bytes']:.0f} |",
        f"| merge-patch | {m['cpu_ms_per_write']:.2f} | {m['bytes']:.0f} | {m['managed_fields_bytes']:.0f} |",
        f"| apply / merge-patch | {a['cpu_ms_per_write'] / m['cpu_ms_per_write']:.2f} | {a['bytes'] / m['bytes']:.2f} | "
        f"{a['managed_fields_bytes'] / max(m['managed_fields_bytes'], 1):.2f} |",
    ]


def write_doc(path: Path, results: dict[str, Any], checks: list[tuple[str, bool]], args: argparse.Namespace, bin_dir: Path) -> None:
    apiserver = subprocess.run([str(bin_dir / "kube-apiserver"), "--version"], capture_output=True, text=True, check=False).stdout.strip()
    etcd = subprocess.run([str(bin_dir / "etcd"), "--version"], capture_output=True, text=True, check=False).stdout.splitlines()[0]
    lines = [
        "## One replica on the local control plane (`bench/control_plane_scale.py`)",
        "",
        f"Generated by `python -m bench.control_plane_scale --sizes {args.sizes} --duration {args.duration:g} "
        f"--kwok-nodes {args.kwok_nodes} --rate {args.rate:g} --interval {args.interval:g} --profile {args.profile} "
        f"--write {path}` on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        f"- machine: {machine()}; everything (etcd, API server, kwok, operator, load generator) on it",
        f"- versions: {apiserver}, {etcd}, kwok (devtools/devcluster), {versions('kopf', 'kubernetes', 'aiohttp')}",
        f"- nodes: the first {args.kwok_nodes} kwok-managed (Ready, with leases renewed every 10 s), the rest plain Node "
        "objects with 8 GPUs of capacity (no kubelet, no lease: a lease costs the API server ~6–7 ms CPU per renewal here); "
        "kube-controller-manager and kube-scheduler stopped (see the module docstring)",
        f"- load: {MIX}; reports written as the agent writes them (server-side apply of the status, the body of "
        f"resource_agent/kube/reporter.py) by a load generator, at most {IN_FLIGHT} writes in flight, as the admin "
        "(exempt from API Priority and Fairness; the chart's flowControl and admission policy not installed)",
        f"- rate: `sampled` {args.rate:g} reports/s at every size (what the local API server carries on this shared "
        f"machine; against one report per node per {args.interval:g} s that is time-compressed at the small sizes and "
        "slowed down at the large ones: the per-report figures and latency are compared at one rate); `real`: one report "
        f"per node per {args.interval:g} s at the largest size; each phase {args.duration:g} s, offered on a clock "
        "(what the API server does not take in that time is not written)",
        "- operator: `resource-agent operator` (standalone, no LLM, workloads on, fleet interval "
        f"{args.fleet_interval}, report interval {report_interval(args):.0f} s: a node's interval at the sampled rate, "
        "so that reports are not stale); latency: write sent → the node's recommendation seen not Resolved on a watch, for "
        "writes that introduced a finding (new nodes with findings, flapping nodes turning throttled)",
        "- API requests: all of the API server's `apiserver_request_total` (the report writes, the operator's "
        "requests, kwok's leases) per report written; CPU: /proc of each process over the phase per report "
        f"(all of it, background included); in brackets the idle cores measured for {args.idle:g} s without load "
        "just before (kwok's leases, the operator's timers; other processes on the shared machine are not counted)",
        "",
        *table(results),
        "",
        *[f"- {'met' if ok else 'MISSED'}: {text}" for text, ok in checks],
        "",
        "Time to create the nodes and their first reports, and for the operator to catch up (every new report once):",
        "",
        "| nodes | nodes and first reports created s | operator caught up s later |",
        "|---:|---:|---:|",
        *[f"| {g['nodes']} | {g['create_s']:.1f} | {g['catch_up_s']:.1f} |" for g in results["growth"]],
        *(compare_lines(results["compare"]) if "compare" in results else []),
    ]
    if results["profile"]:
        lines += ["", f"py-spy of the operator at {results['phases'][-1]['nodes']} nodes, {args.profile} s at "
                  f"{args.rate:g} reports/s (50 Hz, samples of the thread holding the GIL: where the CPU goes):", "", "```",
                  *results["profile"], "```"]
    write_section(path, MARKER, lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100,1000,5000")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of offered load per phase")
    p.add_argument("--interval", type=float, default=REAL_INTERVAL_S, help="seconds between two reports of a node")
    p.add_argument("--rate", type=float, default=4.0, help="the sampled rate offered at every size, reports/s")
    p.add_argument("--real", action=argparse.BooleanOptionalAction, default=True,
                   help="the largest size also at one report per node per --interval")
    p.add_argument("--kwok-nodes", type=int, default=100, help="nodes managed by kwok; the rest are plain Node objects")
    p.add_argument("--fleet-interval", default="60s")
    p.add_argument("--idle", type=float, default=10.0, help="seconds without load before each phase (the idle CPU, printed)")
    p.add_argument("--catch-up-timeout", type=float, default=300.0)
    p.add_argument("--profile", type=int, default=30, help="seconds of py-spy on the operator at the largest size (0: not)")
    p.add_argument("--compare-writes", type=int, default=500, help="writes each for apply vs merge-patch (0: not)")
    p.add_argument("--write", type=Path, help="write the results into docs/PERFORMANCE.md")
    p.add_argument("--json", type=Path, help="also save the raw results")
    return p


def main() -> int:
    args = parser().parse_args()
    with tempfile.TemporaryDirectory(prefix="control-plane-scale-") as tmp, LocalCluster(Path(tmp) / "cluster", progress=print) as cluster:
        results = asyncio.run(run(cluster, args, Path(tmp)))
        bin_dir = cluster.bin_dir
    print()
    print("\n".join(table(results)))
    checks = verdicts(results)
    for text, ok in checks:
        print(("OK:   " if ok else "MISS: ") + text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.write:
        write_doc(args.write, results, checks, args, bin_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
