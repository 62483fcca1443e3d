#!/usr/bin/env python3
"""Resource use of `resource-agent agent`, with and without `--report`, beside Debian's prometheus-node-exporter.

A local control plane (kube-apiserver + etcd, the CRDs installed, one kwok
node) takes the reports. Three processes run on loopback ports for a bounded
time, scraped by this script at the same rate: the agent with `--report`
(the DaemonSet's command; it writes its ResourceReport with the admin
kubeconfig and discovers LMCache and serving pods, as in a cluster), the
agent without, node_exporter, and the agent with `--report` on a serving node:
a second node whose agent scrapes a simulated vLLM and a simulated LMCache
instance (3 ports) on loopback. Prints RSS (MiB; and the
peak), CPU per collection (the agent samples once per interval,
node_exporter collects once per scrape) and the ratios. Exits 1 when the
agent with `--report` misses a target (RSS <= 45 MiB, CPU per sample <=
node_exporter's CPU per scrape) or wrote no report, 2 when a peer cannot start.
The serving node's agent is shown beside them, not held to the targets (it loads
httpx's async path for its scrapes; docs/PERFORMANCE.md says what that costs).

    python -m bench.agent_vs_node_exporter [--seconds 120] [--write docs/PERFORMANCE.md]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from bench.docsection import machine, write_section
from devtools.demo.stack import free_port_block, install_crds
from devtools.devcluster.local import LocalCluster
from devtools.devcluster.nodes import NodeSpec, add_nodes
from devtools.lmcache_simulator import SimulatedInstance
from devtools.serving_simulator import SimulatedEngine, serve

RSS_TARGET_MIB = 45.0
CPU_TARGET_RATIO = 1.0  # agent CPU per sample / node_exporter CPU per scrape
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
NODE = "bench-node"
SERVING_NODE = "bench-serving-node"  # the agent that scrapes a vLLM and an LMCache instance
SERVING_PEER = "agent --report, serving node"
MARKER = "<!-- agent-vs-node-exporter -->"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM): resident now and at the peak."""
    values = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(values["VmRSS"].split()[0]) / 1024, int(values["VmHWM"].split()[0]) / 1024


def private_and_shared_mib(pid: int) -> tuple[float, float]:
    """(private, shared) resident MiB from /proc/<pid>/smaps_rollup: pages only this process maps, and pages it shares
    with others (libraries' code: libpython, pydantic-core, OpenSSL; what a second Python process on the node reuses)."""
    values = {line.split(":")[0]: int(line.split()[1]) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]}
    return (values["Private_Clean"] + values["Private_Dirty"]) / 1024, (values["Shared_Clean"] + values["Shared_Dirty"]) / 1024


def scrape(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        return len(response.read())


def wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            scrape(url)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


@dataclass
class Peer:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    cpu_start: float = 0.0
    scrapes: int = 0
    bytes: int = 0
    rss: float = 0.0
    peak: float = 0.0
    private: float = 0.0
    shared: float = 0.0
    cpu: float = 0.0


def agent(port: int, args: argparse.Namespace, cluster: LocalCluster, *extra: str, node: str = NODE, targets: str = "") -> subprocess.Popen[bytes]:
    """The agent as the DaemonSet runs it; LMCache and serving pod discovery on (the in-cluster default) through the
    kubeconfig, as no ServiceAccount is mounted here. `targets`: more lines of its config file (URLs to scrape)."""
    config = cluster.state_dir / f"agent-{port}.yaml"
    config.write_text("options:\n  lmcache.discover-pods: 'true'\n  serving.discover-pods: 'true'\n" + targets)
    command = [sys.executable, "-m", "resource_agent", "agent", f"--config={config}", f"--node-name={node}", f"--interval={args.interval:g}s",
               f"--report-interval={args.report_interval:g}s", f"--listen=127.0.0.1:{port}", "--log-level=warning", *extra]
    return subprocess.Popen(command, env={**os.environ, "KUBERNETES_SERVICE_HOST": "", "KUBECONFIG": str(cluster.kubeconfig)})


def compile_bytecode() -> None:
    """Byte-compile the environment and the package, as the image does (UV_COMPILE_BYTECODE=1): an agent that compiles its
    imports from source at start keeps the compiler's memory (~10 MiB more RSS) and is not what runs in a cluster."""
    paths = sorted({*sysconfig.get_paths()["purelib"].split(os.pathsep), str(Path(__file__).resolve().parents[1] / "resource_agent")})
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", *paths], env=env, check=True, stdout=subprocess.DEVNULL)


def reported_at(cluster: LocalCluster) -> str | None:
    url = f"{cluster.server}/apis/resource.optiinfra.io/v1alpha1/resourcereports/{NODE}"
    try:
        with urllib.request.urlopen(url, timeout=10, context=cluster.ssl_context()) as response:
            return json.loads(response.read()).get("status", {}).get("reportedAt")
    except OSError:
        return None


def measure(cluster: LocalCluster, exporter: str, args: argparse.Namespace) -> tuple[list[Peer], float, int]:
    """Run the three peers; their figures, the measured seconds and the reports written meanwhile."""
    ports = [free_port() for _ in range(4)]
    engine = serve(SimulatedEngine("vllm", profile="healthy"), free_port())
    lmcache = SimulatedInstance(port=free_port_block(3), workers=2, profile="healthy").start()
    scraped = (f"servingUrls: ['vllm=http://127.0.0.1:{engine.server_address[1]}/metrics']\n"
               f"lmcacheUrls: ['{lmcache.spec()}']\n")
    peers = [
        Peer("agent --report", agent(ports[0], args, cluster, "--report", f"--kubeconfig={cluster.kubeconfig}"), f"http://127.0.0.1:{ports[0]}/metrics"),
        Peer("agent", agent(ports[1], args, cluster), f"http://127.0.0.1:{ports[1]}/metrics"),
        Peer("node_exporter", subprocess.Popen([exporter, f"--web.listen-address=127.0.0.1:{ports[2]}"], stderr=subprocess.DEVNULL),
             f"http://127.0.0.1:{ports[2]}/metrics"),
        Peer(SERVING_PEER, agent(ports[3], args, cluster, "--report", f"--kubeconfig={cluster.kubeconfig}", node=SERVING_NODE, targets=scraped),
             f"http://127.0.0.1:{ports[3]}/metrics"),
    ]
    try:
        for peer in peers:
            wait_ready(peer.url, peer.process)
        time.sleep(args.interval)  # let start-up costs (imports, first sample, first report) pass
        for peer in peers:
            peer.cpu_start = cpu_seconds(peer.process.pid)
        before = reported_at(cluster)
        seen = {before}
        started = time.monotonic()
        while time.monotonic() - started < args.seconds:
            tick = time.monotonic()
            for peer in peers:
                peer.bytes += scrape(peer.url)
                peer.scrapes += 1
            seen.add(reported_at(cluster))
            time.sleep(max(0.0, args.interval - (time.monotonic() - tick)))
        wall = time.monotonic() - started
        for peer in peers:
            peer.rss, peer.peak = memory_mib(peer.process.pid)
            peer.private, peer.shared = private_and_shared_mib(peer.process.pid)
            peer.cpu = cpu_seconds(peer.process.pid) - peer.cpu_start
    finally:
        for peer in peers:
            peer.process.terminate()
        for peer in peers:
            peer.process.wait(timeout=20)
        engine.shutdown()
        engine.server_close()
        lmcache.stop()
    return peers, wall, len(seen - {None, before})  # reportedAt values first seen after the start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="measured time (default 120)")
    parser.add_argument("--interval", type=float, default=5.0, help="agent sampling and scrape interval (default 5, the chart's)")
    parser.add_argument("--report-interval", type=float, default=60.0, help="agent report interval (default 60, the chart's)")
    parser.add_argument("--write", type=Path, help="write the results between the markers in this file (docs/PERFORMANCE.md)")
    args = parser.parse_args()
    exporter = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if exporter is None:
        print("node exporter not installed (apt-get install prometheus-node-exporter)", file=sys.stderr)
        return 2
    compile_bytecode()
    try:
        with LocalCluster(progress=lambda line: print(line, file=sys.stderr)) as cluster:
            kubectl = str(cluster.bin_dir / "kubectl")
            install_crds(lambda *a, **_: subprocess.run([kubectl, f"--kubeconfig={cluster.kubeconfig}", *a], check=True, capture_output=True, text=True))
            with cluster.api_client() as admin:
                add_nodes(admin, [NodeSpec(name=NODE, gpus=0), NodeSpec(name=SERVING_NODE, gpus=0)])
            peers, wall, writes = measure(cluster, exporter, args)
    except RuntimeError as exc:
        print(f"a peer could not start: {exc}", file=sys.stderr)
        return 2
    collections = max(1, round(wall / args.interval))
    answer = subprocess.run([exporter, "--version"], capture_output=True, text=True)
    exporter_version = (answer.stdout or answer.stderr).split("\n")[0].split(" (")[0]
    by_name = {peer.name: peer for peer in peers}
    reporting, node_exporter = by_name["agent --report"], by_name["node_exporter"]
    per_collection = {peer.name: 1000 * peer.cpu / collections for peer in peers}
    cpu_ratio = per_collection[reporting.name] / max(per_collection[node_exporter.name], 1e-9)
    checks = [
        (f"RSS of the agent with --report {reporting.rss:.1f} MiB (target <= {RSS_TARGET_MIB:g} MiB, margin {RSS_TARGET_MIB / reporting.rss:.2f}x)",
         reporting.rss <= RSS_TARGET_MIB),
        (f"CPU per sample of the agent with --report {per_collection[reporting.name]:.1f} ms, {cpu_ratio:.2f}x node_exporter's per scrape "
         f"(target <= {CPU_TARGET_RATIO:g}x, margin {CPU_TARGET_RATIO / max(cpu_ratio, 1e-9):.2f}x)", cpu_ratio <= CPU_TARGET_RATIO),
        (f"ResourceReport writes seen during the run: {writes} (at least 1: the first window's; then one per material change or "
         f"5-minute heartbeat)", writes >= 1),
    ]
    serving = by_name[SERVING_PEER]
    beside = (f"not a target row: the agent with --report on a node with a vLLM and an LMCache instance to scrape, "
              f"{serving.rss:.1f} MiB ({serving.rss - reporting.rss:+.1f} MiB against the node with nothing to scrape; "
              f"{'within' if serving.rss <= RSS_TARGET_MIB else 'over'} the {RSS_TARGET_MIB:g} MiB target)")
    rows = [f"| {peer.name} | {peer.rss:.1f} | {peer.peak:.1f} | {peer.private:.1f} | {peer.shared:.1f} | {peer.cpu:.2f} | {per_collection[peer.name]:.1f} | "
            f"{peer.cpu / wall:.2%} | {peer.bytes / peer.scrapes / 1024:.1f} | {peer.rss / node_exporter.rss:.2f} | "
            f"{per_collection[peer.name] / max(per_collection[node_exporter.name], 1e-9):.2f} |" for peer in peers]
    table = ["| process | RSS MiB | peak RSS MiB | private MiB | shared MiB | CPU s | CPU ms/collection | core share | scrape KiB | "
             "RSS × node_exporter | CPU × node_exporter |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *rows]
    print(f"measured {wall:.0f} s, sample and scrape interval {args.interval:g} s, report interval {args.report_interval:g} s, "
          f"{collections} collections each")
    print("\n".join(table))
    print(f"CPU resolution: one clock tick ({1000 / CLOCK_TICKS:g} ms) per process, {1000 / CLOCK_TICKS / collections:.2f} ms per collection")
    for text, ok in checks:
        print(("OK:   " if ok else "MISS: ") + text)
    print(f"INFO: {beside}")
    if args.write:
        write_section(args.write, MARKER, [
            "## The agent beside node_exporter (`bench/agent_vs_node_exporter.py`)",
            "",
            f"Generated by `python -m bench.agent_vs_node_exporter --seconds {args.seconds:g} --write {args.write}` on "
            f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}: {wall:.0f} s measured after one interval of warm-up, "
            f"sample and scrape interval {args.interval:g} s, report interval {args.report_interval:g} s (the chart's), "
            f"bytecode compiled as in the image, {writes} ResourceReport writes to a local kube-apiserver; collectors as deployed (system, pressure, "
            "podresources: no kubelet socket here, gpu: no NVML here, lmcache and serving: pod discovery on, nothing found). "
            "The serving node's agent also scrapes a simulated vLLM (`devtools/serving_simulator.py`) and a simulated LMCache "
            "instance with 3 ports (`devtools/lmcache_simulator.py`) on loopback.",
            "",
            f"- machine: {machine()}",
            f"- versions: resource-agent {version('resource-agent')}, {exporter_version}, pydantic {version('pydantic')}, "
            f"prometheus-client {version('prometheus-client')}, httpx {version('httpx')} (the serving node's scrapes only)",
            "",
            *table,
            "",
            "Private and shared split the RSS by /proc/<pid>/smaps_rollup: shared pages are mapped by another process too "
            "(here the other agent: libpython, pydantic-core's and OpenSSL's code), so a node pays them once. The target is on RSS.",
            "",
            f"CPU is read from /proc/<pid>/stat in clock ticks: ±{1000 / CLOCK_TICKS / collections:.2f} ms per collection "
            "at this length (a longer `--seconds` resolves finer).",
            "",
            *[f"- {'met' if ok else 'MISSED'}: {text}" for text, ok in checks],
            f"- {beside}",
        ])
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
