"""A simulated LMCache instance speaking LMCache's internal API (0.5.x).

One HTTP server per process, as LMCache runs them: the scheduler on `port`,
worker N on `port + 1 + N`. Each serves:

- `GET /metrics`: the exposition recorded from LMCache's own PrometheusLogger
  (tests/fixtures/lmcache, see scripts/lmcache-record-exposition) with the
  values of a profile that advance with time: `healthy`, `thrash` (low hit
  rate, full cache, evictions, slow retrieves, ping errors), `unused` (traffic,
  no hits), `idle` (no traffic) or `slow-remote` (remote gets take longer than
  the default `blocking_timeout_secs`, so `get_blocking_failed_count` grows
  while pings succeed, until `blocking_timeout_secs` is raised above them);
- `POST /metrics/reset`: counters and histograms back to zero, like LMCache;
- `GET /conf[?names=a,b]` and `POST /conf` with LMCache's semantics: a JSON
  object of key -> value, each converted by the key's env converter; unknown
  keys and failed conversions are reported under "errors"; 400 only when
  nothing was updated. Each process has its own config, and start-up keys
  (sizes) change in /conf without changing the allocated cache, as in LMCache;
- `GET /inference_info`: the vLLM adapter's model and cache config.

Faults for tests: `set_fault(port, "malformed" | "error" | "slow:<seconds>" | "slow-post:<seconds>" | None)`
(`slow-post` delays only the answer to a POST, after the request was received).
Every request is logged (`requests`: method, port, path; never a body), so a
test can tell that nothing was ever posted to an instance.

    python -m devtools.lmcache_simulator --port 6999 --workers 2 --profile thrash
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from resource_agent.lmcache.config import to_bool

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "lmcache"


@dataclass(frozen=True)
class Profile:
    requests_per_second: float
    tokens_per_request: float
    hit_ratio: float
    cache_fill: float  # share of max_local_cpu_size in use
    evictions_per_second: float  # evicted keys per rank
    retrieve_seconds: float
    store_seconds: float
    remote_errors_per_second: float = 0.0  # ping errors per rank
    slow_gets_per_second: float = 0.0  # remote gets per rank that need `slow_get_seconds`
    slow_get_seconds: float = 0.0  # they fail while the port's blocking_timeout_secs is below this


PROFILES: dict[str, Profile] = {
    "healthy": Profile(20.0, 1500.0, 0.65, 0.55, 0.0, 0.015, 0.03),
    "thrash": Profile(25.0, 1500.0, 0.04, 0.995, 40.0, 0.25, 0.3, 0.2),
    "unused": Profile(10.0, 1500.0, 0.0, 0.3, 0.0, 0.01, 0.02),
    "idle": Profile(0.0, 0.0, 0.0, 0.01, 0.0, 0.0, 0.0),
    "slow-remote": Profile(20.0, 1500.0, 0.6, 0.5, 0.0, 0.03, 0.03, slow_gets_per_second=0.5, slow_get_seconds=15.0),
}


def _bool_or_str(value: Any) -> bool:
    return to_bool(value)


def _int_list(value: Any) -> list[int]:
    if isinstance(value, list):
        return [int(item) for item in value]
    return [int(part) for part in str(value).split(",") if part.strip()]


def _extra(value: Any) -> dict | None:
    return value if isinstance(value, dict) else json.loads(value) if value else None


# name -> (default, converter): the LMCache 0.5.6 _CONFIG_DEFINITIONS entries the agent reads or sets
CONFIG_DEFINITIONS: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "chunk_size": (256, int),
    "local_cpu": (True, _bool_or_str),
    "max_local_cpu_size": (5.0, float),
    "local_disk": (None, str),
    "max_local_disk_size": (0.0, float),
    "remote_url": (None, str),
    "remote_serde": ("naive", str),
    "save_decode_cache": (False, _bool_or_str),
    "save_unfull_chunk": (False, _bool_or_str),
    "blocking_timeout_secs": (10, int),
    "lookup_timeout_ms": (3000, int),
    "min_retrieve_tokens": (0, int),
    "priority_limit": (None, int),
    "cache_policy": ("LRU", str),
    "internal_api_server_enabled": (False, _bool_or_str),
    "internal_api_server_host": ("127.0.0.1", str),
    "internal_api_server_port_start": (6999, int),
    "internal_api_server_include_index_list": (None, _int_list),
    "extra_config": (None, _extra),
}


class SimulatedInstance:
    """The shared state of one simulated instance: its profile, clock and per-process configs."""

    def __init__(
        self,
        port: int = 6999,
        workers: int = 2,
        profile: str = "healthy",
        host: str = "127.0.0.1",
        conf: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        fixtures: Path = FIXTURES,
    ) -> None:
        self.profile = PROFILES[profile]
        self.workers = workers
        self.clock = clock
        self.started = clock()
        self.reset_at: dict[int, float] = {}
        self.faults: dict[int, str | None] = {}
        self.requests: list[tuple[str, int, str]] = []  # (method, port, path), in order
        self._get_failures: dict[int, float] = {}  # per port, integrated over time (the rate depends on the config)
        self._ticked: dict[int, float] = {}  # elapsed seconds up to which _get_failures is integrated
        self._gets: dict[int, float] = {}  # remote blocking gets per port, integrated like _get_failures
        self._get_ms: dict[int, float] = {}  # their total time (ms): a failed get waits the whole timeout
        base = {name: default for name, (default, _) in CONFIG_DEFINITIONS.items()}
        base.update({"internal_api_server_enabled": True, "internal_api_server_host": host, "internal_api_server_port_start": port})
        base.update(conf or {})
        self.startup_cpu_gb = float(base["max_local_cpu_size"])  # the buffer is allocated once, at start-up
        self.ports = [port + offset for offset in range(workers + 1)]
        self.configs = {p: dict(base) for p in self.ports}
        self.templates = {
            p: list(text_string_to_metric_families((fixtures / ("scheduler.prom" if i == 0 else f"worker{min(i - 1, 1)}.prom")).read_text()))
            for i, p in enumerate(self.ports)
        }
        self.lock = threading.Lock()
        self.servers: list[ThreadingHTTPServer] = []
        self.host = host

    # --- values -------------------------------------------------------------------

    def _elapsed(self, port: int) -> float:
        return max(self.clock() - self.reset_at.get(port, self.started), 0.0)

    def _tick(self, port: int) -> float:
        """Integrate the failed remote gets of `port` up to now with its current blocking_timeout_secs (hold the lock)."""
        now, since = self._elapsed(port), self._ticked.get(port, 0.0)
        p = self.profile
        timeout = float(self.configs[port]["blocking_timeout_secs"])
        gets = p.slow_gets_per_second * max(now - since, 0.0)
        if gets:
            self._gets[port] = self._gets.get(port, 0.0) + gets
            # remote_time_to_get_sync is observed for failed gets too (LMCache's RemoteBackend.get_blocking)
            self._get_ms[port] = self._get_ms.get(port, 0.0) + gets * min(p.slow_get_seconds, timeout) * 1000
        if gets and timeout < p.slow_get_seconds:
            self._get_failures[port] = self._get_failures.get(port, 0.0) + gets
        self._ticked[port] = now
        return self._get_failures.get(port, 0.0)

    def log_request(self, method: str, port: int, path: str) -> None:
        with self.lock:
            self.requests.append((method, port, path))

    def posts(self, path: str = "/conf") -> list[int]:
        """The ports that got a POST to `path`, one entry per request."""
        with self.lock:
            return [port for method, port, logged in self.requests if method == "POST" and logged == path]

    def values(self, port: int) -> dict[str, float]:
        """Current value of each simulated lmcache: series on `port` (name without prefix)."""
        p, t = self.profile, self._elapsed(port)
        requests = p.requests_per_second * t
        tokens = requests * p.tokens_per_request
        if port == self.ports[0]:
            return {"num_lookup_requests_total": requests, "num_lookup_tokens_total": tokens,
                    "num_lookup_hits_total": tokens * p.hit_ratio, "lmcache_is_healthy": 1.0}
        ping_errors = p.remote_errors_per_second * t
        with self.lock:
            get_failures = self._tick(port)
            gets, get_ms = self._gets.get(port, 0.0), self._get_ms.get(port, 0.0)
        # vLLM's v1 adapter retrieves only the tokens the lookup found: requested == lookup hits, all load
        return {
            "num_retrieve_requests_total": requests, "num_store_requests_total": requests,
            "num_requested_tokens_total": tokens * p.hit_ratio, "num_hit_tokens_total": tokens * p.hit_ratio,
            "num_stored_tokens_total": tokens * (1 - p.hit_ratio),
            "local_cpu_evict_count_total": p.evictions_per_second * t / 8,
            "local_cpu_evict_keys_count_total": p.evictions_per_second * t,
            "local_cache_usage": self.startup_cpu_gb * 1024**3 * p.cache_fill, "local_storage_usage": 0.0,
            "time_to_retrieve": p.retrieve_seconds, "time_to_store": p.store_seconds,
            "retrieve_speed": p.tokens_per_request * p.hit_ratio / p.retrieve_seconds if p.retrieve_seconds else 0.0,
            "_requests": requests, "remote_ping_errors_total": ping_errors, "remote_ping_successes_total": t / 10,
            "remote_ping_latency": 1.2, "lmcache_is_healthy": 1.0, "put_failed_count": 0.0,
            "get_blocking_failed_count": get_failures,
            "_remote_gets": gets, "_remote_get_ms": get_ms,
        }

    def exposition(self, port: int) -> bytes:
        """The /metrics body of `port`: the recorded families, simulated values, this port's worker_id."""
        values = self.values(port)
        worker_id = "0" if port == self.ports[0] else str(self.ports.index(port) - 1)
        families = [self._family(family, values, worker_id) for family in self.templates[port]]
        labels = next((dict(x.labels) for f in families for x in f.samples if "worker_id" in x.labels), None)
        if port != self.ports[0] and labels is not None and values.get("_remote_gets"):
            families = [f for f in families if f.name != "lmcache:remote_time_to_get_sync"]
            families.append(_get_sync_family(labels, values["_remote_gets"], values["_remote_get_ms"]))
        registry = CollectorRegistry()
        registry.register(_Fixed(families))
        return generate_latest(registry)

    def _family(self, template: Metric, values: dict[str, float], worker_id: str) -> Metric:
        family = Metric(template.name, template.documentation, template.type, template.unit)
        base = template.name.removeprefix("lmcache:")
        for sample in template.samples:
            labels = dict(sample.labels)
            if "worker_id" in labels:
                labels["worker_id"] = worker_id
            family.add_sample(sample.name, labels, self._value(base, sample.name, sample.value, labels, values))
        return family

    @staticmethod
    def _value(base: str, name: str, recorded: float, labels: dict[str, str], values: dict[str, float]) -> float:
        short = name.removeprefix("lmcache:")
        if not name.startswith("lmcache:") or name.endswith("_created"):
            return recorded
        if base in ("time_to_retrieve", "time_to_store", "retrieve_speed"):
            observation, count = values.get(base), values.get("_requests", 0.0)
            if observation is None or not count:
                return 0.0
            if short.endswith("_bucket"):
                return count if float(labels["le"]) >= observation else 0.0
            return count * observation if short.endswith("_sum") else count
        return values.get(short, 0.0)

    # --- config ----------------------------------------------------------------------

    def get_conf(self, port: int, names: str | None) -> dict[str, Any]:
        config = self.configs[port]
        keys = names.split(",") if names else list(CONFIG_DEFINITIONS)
        return {key: config[key] for key in keys if key in config}

    def post_conf(self, port: int, body: Any) -> tuple[int, dict[str, Any]]:
        """LMCache's POST /conf: convert each key with its env converter, report what failed."""
        if not isinstance(body, dict):
            return 400, {"error": "Request body must be a JSON object"}
        updated: dict[str, Any] = {}
        errors: dict[str, str] = {}
        with self.lock:
            for key, value in body.items():
                if key not in CONFIG_DEFINITIONS:
                    errors[key] = "Unknown config"
                    continue
                converter = CONFIG_DEFINITIONS[key][1]
                try:
                    converted = None if value is None else converter(value)
                except (ValueError, TypeError, json.JSONDecodeError):
                    errors[key] = "Failed to set config value"
                    continue
                if key == "blocking_timeout_secs":
                    self._tick(port)  # failures so far count with the old timeout
                self.configs[port][key] = converted
                updated[key] = converted
        result: dict[str, Any] = {"updated": updated}
        if errors:
            result["errors"] = errors
        return (400 if errors and not updated else 200), result

    def inference_info(self) -> dict[str, Any]:
        ranks = max(self.workers, 1)
        return {
            "vllm_version": "0.11.0", "lmcache_version": "0.5.6",
            "vllm_config": "model='meta-llama/Llama-3.1-8B-Instruct'",
            "model_config": {"model": "meta-llama/Llama-3.1-8B-Instruct", "dtype": "torch.bfloat16", "max_model_len": 8192,
                             "vocab_size": 128256, "num_layers": 32, "num_attention_heads": 32 // ranks,
                             "num_kv_heads": max(8 // ranks, 1), "head_size": 128},
            "cache_config": {"block_size": 16, "cache_dtype": "auto", "gpu_memory_utilization": 0.9,
                             "swap_space": 4, "enable_prefix_caching": True},
        }

    # --- serving -------------------------------------------------------------------------

    def set_fault(self, port: int, fault: str | None) -> None:
        self.faults[port] = fault

    def reset_metrics(self, port: int) -> None:
        with self.lock:
            self.reset_at[port] = self.clock()
            self._get_failures[port] = 0.0
            self._gets[port] = self._get_ms[port] = 0.0
            self._ticked[port] = 0.0

    def start(self) -> SimulatedInstance:
        for port in self.ports:
            server = ThreadingHTTPServer((self.host, port), _handler(self, port))
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, name=f"lmcache-sim-{port}", daemon=True).start()
            self.servers.append(server)
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        self.servers.clear()

    def urls(self) -> list[str]:
        return [f"http://{self.host}:{port}" for port in self.ports]

    def spec(self) -> str:
        """The --lmcache-url spec naming every port."""
        return f"http://{self.host}:{','.join(str(port) for port in self.ports)}"


class _Fixed:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def _get_sync_family(labels: dict[str, str], count: float, total_ms: float) -> Metric:
    """lmcache:remote_time_to_get_sync (ms, LMCache's buckets) with `count` gets of `total_ms` in all."""
    family = Metric("lmcache:remote_time_to_get_sync", "Time to get from remote backends synchronously(ms)", "histogram")
    each = total_ms / count
    for bound in (1, 5, 10, 20, 40, 60, 80, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000, float("inf")):
        le = "+Inf" if bound == float("inf") else f"{float(bound)}"
        family.add_sample("lmcache:remote_time_to_get_sync_bucket", {**labels, "le": le}, count if each <= bound else 0.0)
    family.add_sample("lmcache:remote_time_to_get_sync_count", labels, count)
    family.add_sample("lmcache:remote_time_to_get_sync_sum", labels, total_ms)
    return family


def _handler(sim: SimulatedInstance, port: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and the demo read stdout
            return

        def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _fault(self) -> bool:
            fault = sim.faults.get(port)
            slow = "slow:" if self.command == "GET" else ("slow:", "slow-post:")
            if fault and fault.startswith(slow):
                time.sleep(float(fault.split(":", 1)[1]))
            elif fault == "error":
                self._send(500, b"Internal Server Error")
                return True
            return False

        def do_GET(self) -> None:
            sim.log_request("GET", port, urlsplit(self.path).path)
            if self._fault():
                return
            url = urlsplit(self.path)
            if url.path == "/metrics":
                body = b"lmcache:num_hit_tokens_total{role=\"worker\" 12\n" if sim.faults.get(port) == "malformed" else sim.exposition(port)
                self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
            elif url.path == "/conf":
                names = parse_qs(url.query).get("names", [None])[0]
                self._send(200, json.dumps(sim.get_conf(port, names), indent=2).encode())
            elif url.path == "/inference_info":
                self._send(200, json.dumps(sim.inference_info(), indent=2).encode(), "application/json")
            else:
                self._send(404, b'{"detail":"Not Found"}', "application/json")

        def do_POST(self) -> None:
            sim.log_request("POST", port, urlsplit(self.path).path)
            if self._fault():
                return
            path = urlsplit(self.path).path
            if path == "/metrics/reset":
                sim.reset_metrics(port)
                self._send(200, b"ok")
                return
            if path != "/conf":
                self._send(404, b'{"detail":"Not Found"}', "application/json")
                return
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError as exc:
                status, result = 400, {"error": "Invalid JSON body", "message": str(exc)}
            else:
                status, result = sim.post_conf(port, body)
            self._send(status, json.dumps(result).encode(), "application/json")

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Simulated LMCache instance (scheduler + N worker ports).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6999)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="healthy")
    parser.add_argument("--max-local-cpu-size", type=float, default=5.0, help="GB per worker")
    parser.add_argument("--remote-url", default=None)
    args = parser.parse_args(argv)
    sim = SimulatedInstance(args.port, args.workers, args.profile, args.host,
                            conf={"max_local_cpu_size": args.max_local_cpu_size, "remote_url": args.remote_url}).start()
    print(f"LMCache simulator ({args.profile}) serving {sim.spec()}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        sim.stop()


if __name__ == "__main__":
    main()
