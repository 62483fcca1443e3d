#!/usr/bin/env python3
"""Resource use of `resource-agent agent` beside Debian's prometheus-node-exporter.

Both run on loopback ports for a bounded time and are scraped by this script
at the same rate. Prints RSS (MiB), CPU seconds per collection and their
ratio, and the agent's share of one core. Exits 1 when the agent is over
80 MiB RSS or 2% of one core, 2 when a peer cannot start.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

RSS_LIMIT_MIB = 80.0
CORE_SHARE_LIMIT = 0.02
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def scrape(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        return len(response.read())


def wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured time (default 60)")
    parser.add_argument("--interval", type=float, default=5.0, help="agent sampling and scrape interval (default 5)")
    args = parser.parse_args()
    exporter = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    agent_binary = Path(sys.executable).with_name("resource-agent")
    if exporter is None:
        print("node exporter not installed (apt-get install prometheus-node-exporter)", file=sys.stderr)
        return 2
    agent_port, exporter_port = free_port(), free_port()
    peers = [
        Peer("resource-agent", subprocess.Popen([str(agent_binary), "agent", "--interval", f"{args.interval}s", "--listen", f"127.0.0.1:{agent_port}", "--log-level", "warning"]), f"http://127.0.0.1:{agent_port}/metrics"),
        Peer("node_exporter", subprocess.Popen([exporter, f"--web.listen-address=127.0.0.1:{exporter_port}"], stderr=subprocess.DEVNULL), f"http://127.0.0.1:{exporter_port}/metrics"),
    ]
    try:
        for peer in peers:
            wait_ready(peer.url, peer.process)
        time.sleep(args.interval)  # let start-up costs (imports, first sample) pass
        for peer in peers:
            peer.cpu_start = cpu_seconds(peer.process.pid)
        started = time.monotonic()
        while time.monotonic() - started < args.seconds:
            tick = time.monotonic()
            for peer in peers:
                peer.bytes += scrape(peer.url)
                peer.scrapes += 1
            time.sleep(max(0.0, args.interval - (time.monotonic() - tick)))
        wall = time.monotonic() - started
        results = {peer.name: (rss_mib(peer.process.pid), cpu_seconds(peer.process.pid) - peer.cpu_start, peer) for peer in peers}
    finally:
        for peer in peers:
            peer.process.terminate()
        for peer in peers:
            peer.process.wait(timeout=20)
    collections = max(1, round(wall / args.interval))  # the agent samples once per interval, node_exporter once per scrape
    print(f"measured {wall:.0f} s, scrape and sample interval {args.interval:g} s, {collections} collections each")
    print(f"{'':<16}{'RSS MiB':>10}{'CPU s':>10}{'CPU ms/collection':>20}{'core share':>12}{'scrape KiB':>12}")
    for name, (rss, cpu, peer) in results.items():
        print(f"{name:<16}{rss:>10.1f}{cpu:>10.2f}{1000 * cpu / collections:>20.1f}{cpu / wall:>11.2%}{peer.bytes / peer.scrapes / 1024:>12.1f}")
    agent_rss, agent_cpu, _ = results["resource-agent"]
    exporter_rss, exporter_cpu, _ = results["node_exporter"]
    print(f"ratio agent/node_exporter: RSS {agent_rss / exporter_rss:.2f}x, CPU {agent_cpu / max(exporter_cpu, 1e-9):.2f}x")
    share = agent_cpu / wall
    if agent_rss > RSS_LIMIT_MIB or share > CORE_SHARE_LIMIT:
        print(f"FAIL: agent over budget (RSS {agent_rss:.1f} MiB > {RSS_LIMIT_MIB:g} or core share {share:.2%} > {CORE_SHARE_LIMIT:.0%})")
        return 1
    print(f"OK: agent within {RSS_LIMIT_MIB:g} MiB RSS and {CORE_SHARE_LIMIT:.0%} of one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
