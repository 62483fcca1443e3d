"""A simulated vLLM (or SGLang) /metrics server driven by a load profile.

The metric families are declared exactly as the engines declare them, with
prometheus_client, so the exposition has their shape: HELP/TYPE lines, the
`model_name` and `engine` labels, `_created` samples and the engines' own bucket
boundaries.

- vLLM: `vllm/v1/metrics/loggers.py` (`PrometheusStatLogger`, vLLM 0.10/0.11:
  `vllm:kv_cache_usage_perc`, `vllm:prefix_cache_queries/_hits`,
  `vllm:inter_token_latency_seconds`; with `legacy=True` the deprecated twins
  `vllm:gpu_cache_usage_perc`, `vllm:gpu_prefix_cache_*` and
  `vllm:time_per_output_token_seconds` are exposed too, as 0.9/0.10 did), and
  `vllm:cache_config_info` (labels: the CacheConfig and `engine`).
- SGLang: `python/sglang/srt/metrics/collector.py` (`SchedulerMetricsCollector`,
  `TokenizerMetricsCollector`).

    python -m devtools.serving_simulator --port 8000 --profile kv-bound
    python -m devtools.serving_simulator --engine sglang --port 30000 --profile healthy
"""

from __future__ import annotations

import argparse
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# vllm/v1/metrics/loggers.py
VLLM_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
VLLM_ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
VLLM_REQUEST_LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
VLLM_FINISH_REASONS = ("stop", "length", "abort")  # vllm.v1.engine.FinishReason, str() of each
# python/sglang/srt/metrics/collector.py
SGLANG_TTFT_BUCKETS = (0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400)
SGLANG_E2E_BUCKETS = (0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400, 600, 1200, 1800, 2400)
SGLANG_ITL_BUCKETS = (0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060, 0.080, 0.100, 0.200, 0.400, 0.600, 0.800, 1.000, 2.000, 4.000, 6.000, 8.000)
SGLANG_QUEUE_BUCKETS = (0.0, 0.1, 0.2, 0.5, 1, 2, 3, 4, 5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1200, 1400, 1600, 1800, 2000, 2500, 3000)


@dataclass(frozen=True)
class LoadProfile:
    """What the engine does, per second, on average."""

    requests_per_second: float
    running: float  # requests in the batch
    waiting: float  # requests queued
    kv_cache_usage: float  # 0-1
    prompt_tokens: float = 1000.0  # per request
    output_tokens: float = 200.0
    ttft_seconds: float = 0.2  # median
    itl_seconds: float = 0.03
    queue_seconds: float = 0.01
    prefix_hit_ratio: float = 0.5
    preemptions_per_second: float = 0.0


PROFILES: dict[str, LoadProfile] = {
    "healthy": LoadProfile(requests_per_second=6.0, running=40, waiting=0, kv_cache_usage=0.55, ttft_seconds=0.18, itl_seconds=0.028),
    "kv-bound": LoadProfile(requests_per_second=5.0, running=60, waiting=25, kv_cache_usage=0.985, ttft_seconds=3.5, itl_seconds=0.06, queue_seconds=3.0, preemptions_per_second=0.8),
    "scheduler-bound": LoadProfile(requests_per_second=4.0, running=16, waiting=30, kv_cache_usage=0.2, ttft_seconds=2.5, itl_seconds=0.025, queue_seconds=2.2),
    "idle": LoadProfile(requests_per_second=0.0, running=0, waiting=0, kv_cache_usage=0.0),
    "low-prefix-hit": LoadProfile(requests_per_second=5.0, running=30, waiting=0, kv_cache_usage=0.7, prompt_tokens=6000, prefix_hit_ratio=0.04, ttft_seconds=0.6),
}


class VllmMetrics:
    """vLLM's PrometheusStatLogger families in a private registry."""

    def __init__(self, model_name: str = "meta-llama/Llama-3.1-8B-Instruct", engines: tuple[int, ...] = (0,), legacy: bool = False,
                 cache_config: dict[str, str] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.model_name, self.engines, self.legacy = model_name, engines, legacy
        labels = ["model_name", "engine"]
        r = self.registry
        self.running = Gauge("vllm:num_requests_running", "Number of requests in model execution batches.", labels, registry=r)
        self.waiting = Gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels, registry=r)
        self.kv_usage = Gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", labels, registry=r)
        self.prefix_queries = Counter("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.", labels, registry=r)
        self.prefix_hits = Counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", labels, registry=r)
        if legacy:
            self.gpu_cache_usage = Gauge("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.DEPRECATED: Use vllm:kv_cache_usage_perc instead.", labels, registry=r)
            self.gpu_prefix_queries = Counter("vllm:gpu_prefix_cache_queries", "GPU prefix cache queries, in terms of number of queriedtokens. DEPRECATED: Use vllm:prefix_cache_queries instead.", labels, registry=r)
            self.gpu_prefix_hits = Counter("vllm:gpu_prefix_cache_hits", "GPU prefix cache hits, in terms of number of cached tokens. DEPRECATED: Use vllm:prefix_cache_hits instead.", labels, registry=r)
            self.tpot = Histogram("vllm:time_per_output_token_seconds", "Histogram of time per output token in seconds.DEPRECATED: Use vllm:inter_token_latency_seconds instead.", labels, buckets=VLLM_ITL_BUCKETS, registry=r)
        self.preemptions = Counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.", labels, registry=r)
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Number of prefill tokens processed.", labels, registry=r)
        self.generation_tokens = Counter("vllm:generation_tokens", "Number of generation tokens processed.", labels, registry=r)
        self.success = Counter("vllm:request_success", "Count of successfully processed requests.", [*labels, "finished_reason"], registry=r)
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", labels, buckets=VLLM_TTFT_BUCKETS, registry=r)
        self.itl = Histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", labels, buckets=VLLM_ITL_BUCKETS, registry=r)
        self.e2e = Histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", labels, buckets=VLLM_REQUEST_LATENCY_BUCKETS, registry=r)
        self.queue = Histogram("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", labels, buckets=VLLM_REQUEST_LATENCY_BUCKETS, registry=r)
        config = cache_config or {"block_size": "16", "cache_dtype": "auto", "enable_prefix_caching": "True", "gpu_memory_utilization": "0.9",
                                  "num_cpu_blocks": "None", "num_gpu_blocks": "27975", "prefix_caching_hash_algo": "builtin", "swap_space": "4"}
        info = Gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig", [*config, "engine"], registry=r)
        for engine in engines:
            info.labels(**config, engine=str(engine)).set(1)
            for reason in VLLM_FINISH_REASONS:
                self.success.labels(model_name, str(engine), reason)
            for family in (self.running, self.waiting, self.kv_usage, self.prefix_queries, self.prefix_hits, self.preemptions,
                           self.prompt_tokens, self.generation_tokens, self.ttft, self.itl, self.e2e, self.queue):
                family.labels(model_name, str(engine))

    def advance(self, profile: LoadProfile, seconds: float, rng: random.Random, engine: int = 0) -> None:
        """`seconds` of `profile`'s load on one engine."""
        labels = (self.model_name, str(engine))
        self.running.labels(*labels).set(profile.running)
        self.waiting.labels(*labels).set(profile.waiting)
        self.kv_usage.labels(*labels).set(profile.kv_cache_usage)
        requests = _count(profile.requests_per_second * seconds, rng)
        prompt = requests * profile.prompt_tokens
        hits = prompt * profile.prefix_hit_ratio
        self.prefix_queries.labels(*labels).inc(prompt)
        self.prefix_hits.labels(*labels).inc(hits)
        self.prompt_tokens.labels(*labels).inc(prompt)
        self.generation_tokens.labels(*labels).inc(requests * profile.output_tokens)
        self.preemptions.labels(*labels).inc(_count(profile.preemptions_per_second * seconds, rng))
        if self.legacy:
            self.gpu_cache_usage.labels(*labels).set(profile.kv_cache_usage)
            self.gpu_prefix_queries.labels(*labels).inc(prompt)
            self.gpu_prefix_hits.labels(*labels).inc(hits)
        for _ in range(requests):
            ttft = _around(profile.ttft_seconds, rng)
            queue = _around(profile.queue_seconds, rng)
            itl = _around(profile.itl_seconds, rng, spread=0.25)
            self.ttft.labels(*labels).observe(ttft)
            self.queue.labels(*labels).observe(queue)
            self.e2e.labels(*labels).observe(ttft + itl * profile.output_tokens)
            self.success.labels(*labels, "stop" if rng.random() < 0.9 else "length").inc()
            for _ in range(4):  # a few inter-token gaps per request (vLLM observes one per output token)
                self.itl.labels(*labels).observe(_around(profile.itl_seconds, rng, spread=0.25))
                if self.legacy:
                    self.tpot.labels(*labels).observe(itl)

    def exposition(self) -> str:
        return generate_latest(self.registry).decode()


class SglangMetrics:
    """SGLang's scheduler and tokenizer families (one TP rank) in a private registry."""

    def __init__(self, model_name: str = "Qwen/Qwen2.5-7B-Instruct", max_total_num_tokens: int = 400_000) -> None:
        self.registry = r = CollectorRegistry()
        self.model_name = model_name
        scheduler_labels = {"model_name": model_name, "engine_type": "unified", "tp_rank": "0", "pp_rank": "0", "moe_ep_rank": "0"}
        self.scheduler_labels, self.tokenizer_labels = scheduler_labels, {"model_name": model_name}
        keys = list(scheduler_labels)
        self.running = Gauge("sglang:num_running_reqs", "The number of running requests.", keys, registry=r)
        self.used_tokens = Gauge("sglang:num_used_tokens", "The number of used tokens.", keys, registry=r)
        self.token_usage = Gauge("sglang:token_usage", "The token usage.", keys, registry=r)
        self.queue = Gauge("sglang:num_queue_reqs", "The number of requests in the waiting queue.", keys, registry=r)
        self.cache_hit_rate = Gauge("sglang:cache_hit_rate", "The prefix cache hit rate.", keys, registry=r)
        self.max_tokens = Gauge("sglang:max_total_num_tokens", "Maximum total number of tokens in the KV cache pool.", keys, registry=r)
        self.retracted = Counter("sglang:num_retracted_requests", "Total number of retracted requests.", keys, registry=r)
        self.queue_time = Histogram("sglang:queue_time_seconds", "Histogram of queueing time in seconds.", keys, buckets=SGLANG_QUEUE_BUCKETS, registry=r)
        tk = ["model_name"]
        self.prompt_tokens = Counter("sglang:prompt_tokens", "Number of prefill tokens processed.", tk, registry=r)
        self.generation_tokens = Counter("sglang:generation_tokens", "Number of generation tokens processed.", tk, registry=r)
        self.cached_tokens = Counter("sglang:cached_tokens", "Number of cached prompt tokens.", tk, registry=r)
        self.requests = Counter("sglang:num_requests", "Number of requests processed.", tk, registry=r)
        self.ttft = Histogram("sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds.", tk, buckets=SGLANG_TTFT_BUCKETS, registry=r)
        self.itl = Histogram("sglang:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", tk, buckets=SGLANG_ITL_BUCKETS, registry=r)
        self.e2e = Histogram("sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds", tk, buckets=SGLANG_E2E_BUCKETS, registry=r)
        self.max_tokens.labels(**scheduler_labels).set(max_total_num_tokens)
        self.max_total_num_tokens = max_total_num_tokens

    def advance(self, profile: LoadProfile, seconds: float, rng: random.Random, engine: int = 0) -> None:
        s, t = self.scheduler_labels, self.tokenizer_labels
        self.running.labels(**s).set(profile.running)
        self.queue.labels(**s).set(profile.waiting)
        self.token_usage.labels(**s).set(profile.kv_cache_usage)
        self.used_tokens.labels(**s).set(int(profile.kv_cache_usage * self.max_total_num_tokens))
        self.cache_hit_rate.labels(**s).set(profile.prefix_hit_ratio)
        self.retracted.labels(**s).inc(_count(profile.preemptions_per_second * seconds, rng))
        requests = _count(profile.requests_per_second * seconds, rng)
        self.prompt_tokens.labels(**t).inc(requests * profile.prompt_tokens)
        self.cached_tokens.labels(**t).inc(requests * profile.prompt_tokens * profile.prefix_hit_ratio)
        self.generation_tokens.labels(**t).inc(requests * profile.output_tokens)
        self.requests.labels(**t).inc(requests)
        for _ in range(requests):
            ttft = _around(profile.ttft_seconds, rng)
            self.ttft.labels(**t).observe(ttft)
            self.queue_time.labels(**s).observe(_around(profile.queue_seconds, rng))
            self.e2e.labels(**t).observe(ttft + profile.itl_seconds * profile.output_tokens)
            for _ in range(4):
                self.itl.labels(**t).observe(_around(profile.itl_seconds, rng, spread=0.25))

    def exposition(self) -> str:
        return generate_latest(self.registry).decode()


def _count(expected: float, rng: random.Random) -> int:
    """A whole number with `expected` as its mean."""
    whole = math.floor(expected)
    return whole + (1 if rng.random() < expected - whole else 0)


def _around(median: float, rng: random.Random, spread: float = 0.5) -> float:
    return max(median * math.exp(rng.gauss(0.0, spread)), 0.0)


class SimulatedEngine:
    """An engine whose metrics advance with (simulated or wall-clock) time under a profile."""

    def __init__(self, engine: str = "vllm", profile: str | LoadProfile = "healthy", seed: int = 0, clock: Callable[[], float] = time.monotonic, **kwargs: object) -> None:
        self.metrics: VllmMetrics | SglangMetrics = VllmMetrics(**kwargs) if engine == "vllm" else SglangMetrics(**kwargs)  # type: ignore[arg-type]
        self.profile = PROFILES[profile] if isinstance(profile, str) else profile
        self._rng = random.Random(seed)
        self._clock = clock
        self._at = clock()
        self._lock = threading.Lock()

    def set_profile(self, profile: str | LoadProfile, **changes: float) -> None:
        with self._lock:
            base = PROFILES[profile] if isinstance(profile, str) else profile
            self.profile = replace(base, **changes)

    def exposition(self) -> str:
        with self._lock:
            now = self._clock()
            if now > self._at:
                self.metrics.advance(self.profile, now - self._at, self._rng)
                self._at = now
            return self.metrics.exposition()


def serve(engine: SimulatedEngine, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve `engine`'s /metrics on a background thread; `shutdown()` the server to stop."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = engine.exposition().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name=f"serving-sim-{port}", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("vllm", "sglang"), default="vllm")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="healthy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    server = serve(SimulatedEngine(args.engine, args.profile, args.seed), args.port, args.host)
    print(f"simulated {args.engine} ({args.profile}) on http://{args.host}:{args.port}/metrics", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
