"""A real Prometheus scrapes the agent watching two simulated LMCache instances: the series stay apart.

Issue 15: the LMCache label used to be `instance`, which Prometheus renames to
`exported_instance` on scrape (and a dashboard summing by `instance` blended the caches).
Loopback only, bounded (about 10 s); skipped where no `prometheus` binary is installed
(`scripts/setup --test` installs Debian's).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.demo.stack import free_port, free_port_block
from devtools.lmcache_simulator import SimulatedInstance

DEADLINE_SECONDS = 60.0
CPU_SIZES = {"healthy": 4.0, "thrash": 40.0}  # GiB (LMCache's max_local_cpu_size), configured per instance so their series differ


def _process(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture
def prometheus_binary() -> str:
    found = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").is_file() else None)
    if found is None:
        pytest.skip("no prometheus binary (scripts/setup --test installs Debian's prometheus)")
    return found


@pytest.fixture
def instances() -> Iterator[dict[str, SimulatedInstance]]:
    sims = {
        profile: SimulatedInstance(port=free_port_block(1), workers=0, profile=profile, conf={"max_local_cpu_size": size}).start()
        for profile, size in CPU_SIZES.items()
    }
    yield sims
    for sim in sims.values():
        sim.stop()


def _query(port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_prometheus_keeps_lmcache_instances_apart(prometheus_binary: str, instances: dict[str, SimulatedInstance], tmp_path: Path) -> None:
    agent_port, prometheus_port = free_port(), free_port()
    urls = {profile: sim.urls()[0] for profile, sim in instances.items()}
    agent = _process([
        sys.executable, "-m", "resource_agent", "agent", "--node-name=scrape-node", "--interval=1s", "--window=30s",
        "--no-collector.system", "--no-collector.pressure", "--no-collector.gpu", "--no-collector.podresources",
        "--collector.lmcache", *[f"--lmcache-url={url}" for url in urls.values()], f"--listen=127.0.0.1:{agent_port}",
    ], tmp_path / "agent.log")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: resource-agent\n    static_configs: [{{targets: ['127.0.0.1:{agent_port}']}}]\n"
    )
    prometheus = _process([
        prometheus_binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
    ], tmp_path / "prometheus.log")

    def logs() -> str:
        return "\n".join(f"--- {name}\n{(tmp_path / name).read_text(errors='replace')[-3000:]}" for name in ("agent.log", "prometheus.log"))

    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        sizes: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                sizes = _query(prometheus_port, "resource_agent_lmcache_max_local_cpu_size_bytes")
            except OSError:
                sizes = []
            if len(sizes) == 2:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"Prometheus has {len(sizes)} max_local_cpu_size series, want 2\n{logs()}")
        by_instance = {series["metric"]["lmcache_instance"]: series for series in sizes}
        assert set(by_instance) == set(urls.values()), by_instance.keys()  # one series per LMCache instance, under its own label
        for profile, url in urls.items():
            labels = by_instance[url]["metric"]
            assert float(by_instance[url]["value"][1]) == CPU_SIZES[profile] * 2**30  # GiB
            # the target's labels are Prometheus's own, nothing was renamed
            assert labels["instance"] == f"127.0.0.1:{agent_port}" and labels["job"] == "resource-agent"
            assert not any(name.startswith("exported_") for name in labels), labels
    finally:
        _stop(prometheus)
        _stop(agent)
