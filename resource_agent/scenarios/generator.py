"""Generate a deterministic stream of `Sample`s from a scenario profile.

Noise comes from one `random.Random` seeded by (scenario, seed), so the same
arguments always give the same stream. Gauges are drawn around their profile
level each sample; counters (PSI totals, violation seconds, ECC, LMCache, the
serving engines' tokens and requests) grow by rate x interval, as the kernel, the
driver, LMCache and vLLM/SGLang report them; the engines' latency histograms get
one observation per simulated request, in the engines' own buckets.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from resource_agent.api.samples import (
    CollectorState,
    CollectorStatus,
    CpuSample,
    DiskSample,
    GpuDeviceSample,
    GpuProcess,
    GpuSample,
    LMCacheInstanceSample,
    LMCacheSample,
    MemorySample,
    NetworkSample,
    PressureLine,
    PressureResource,
    PressureSample,
    Sample,
    ServingHistogram,
    ServingInstanceSample,
    ServingSample,
    SystemSample,
    XidEvent,
)
from resource_agent.scenarios.profile import GpuProfile, Level, LMCacheProfile, Profile, ServingProfile, load_profile

GIB = 1024**3
MIB = 1024**2
DEFAULT_START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
IDLE_SM_UTILIZATION = 5.0  # below this the driver reports the GpuIdle clock event reason
PROCESS_NAME = "vllm"
# the engines' histogram buckets: vllm/v1/metrics/loggers.py, sglang/srt/metrics/collector.py (as devtools/serving_simulator.py)
VLLM_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
VLLM_ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
VLLM_REQUEST_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
SGLANG_TTFT_BUCKETS = (0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400)
SGLANG_ITL_BUCKETS = (0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060, 0.080, 0.100, 0.200, 0.400, 0.600, 0.800, 1.000, 2.000, 4.000, 6.000, 8.000)
SGLANG_E2E_BUCKETS = (0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400, 600, 1200, 1800, 2400)
HISTOGRAM_BUCKETS = {
    "vllm": {"ttft": VLLM_TTFT_BUCKETS, "itl": VLLM_ITL_BUCKETS, "e2e": VLLM_REQUEST_BUCKETS, "queue": VLLM_REQUEST_BUCKETS},
    "sglang": {"ttft": SGLANG_TTFT_BUCKETS, "itl": SGLANG_ITL_BUCKETS, "e2e": SGLANG_E2E_BUCKETS, "queue": SGLANG_E2E_BUCKETS},
}


class _Noise:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def draw(self, level: Level, low: float = 0.0, high: float = float("inf")) -> float:
        value = level.mean + (self.rng.uniform(-level.jitter, level.jitter) if level.jitter else 0.0)
        return round(min(max(value, low), high), 3)

    def percent(self, level: Level) -> float:
        return self.draw(level, 0.0, 100.0)

    def happens(self, probability: float) -> bool:
        return probability >= 1.0 or (probability > 0.0 and self.rng.random() < probability)


@dataclass
class _Histogram:
    """Observations per bucket (not cumulative; the last is +Inf) and their sum."""

    bounds: tuple[float, ...]
    counts: list[int]
    sum: float = 0.0

    def observe(self, value: float) -> None:
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        self.counts[index] += 1
        self.sum += value

    def scraped(self) -> ServingHistogram:
        cumulative, total = [], 0
        for count in self.counts:
            total += count
            cumulative.append(float(total))
        return ServingHistogram(bounds=list(self.bounds), counts=cumulative, sum=round(self.sum, 6))


_K = TypeVar("_K")
_N = TypeVar("_N", int, float)


@dataclass
class _Counters:
    """Cumulative values carried from one sample to the next."""

    psi_microseconds: dict[str, float] = field(default_factory=dict)
    violation_seconds: dict[tuple[int, str], float] = field(default_factory=dict)
    ecc_uncorrected: dict[int, int] = field(default_factory=dict)
    lmcache: dict[tuple[str, str], float] = field(default_factory=dict)
    serving: dict[tuple[str, str], float] = field(default_factory=dict)
    histograms: dict[tuple[str, str], _Histogram] = field(default_factory=dict)

    def add(self, table: dict[_K, _N], key: _K, amount: _N) -> _N:
        table[key] = table.get(key, 0) + amount
        return table[key]


def _stable_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(frozen=True)
class _Identity:
    """Names that stay fixed for the whole stream."""

    hostname: str
    boot_id: str
    gpu_uuids: tuple[str, ...]
    pod_uids: tuple[str, ...]

    @classmethod
    def of(cls, profile: Profile, seed: int, gpus: int, hostname: str | None = None) -> _Identity:
        rng = random.Random(f"identity:{profile.name}:{seed}")
        return cls(
            hostname=hostname or profile.hostname or f"sim-{profile.name}-{seed}",
            boot_id=_stable_uuid(rng),
            gpu_uuids=tuple(f"GPU-{_stable_uuid(rng)}" for _ in range(gpus)),
            pod_uids=tuple(_stable_uuid(rng) for _ in range(gpus)),
        )


class ScenarioStream:
    """One simulated node: `sample(step, timestamp)` gives its next sample."""

    def __init__(self, profile: Profile, seed: int, interval: float, gpus: int, hostname: str | None = None) -> None:
        self.profile = profile
        self.interval = interval
        self.noise = _Noise(random.Random(f"noise:{profile.name}:{seed}"))
        self.identity = _Identity.of(profile, seed, gpus, hostname)
        self.devices = [profile.gpus.device(index) for index in range(gpus)]
        # a serving engine's pod holds its GPUs: their processes carry the pod's uid (its first GPU's)
        self.gpu_pod_uids = list(self.identity.pod_uids)
        self.serving_pod_uids: dict[str, str | None] = {}
        for engine in profile.serving:
            held = [index for index in engine.gpus if index < gpus]
            self.serving_pod_uids[engine.instance] = self.identity.pod_uids[held[0]] if held else None
            for index in held:
                self.gpu_pod_uids[index] = self.identity.pod_uids[held[0]]
        self.counters = _Counters()
        self.elapsed = interval

    def sample(self, step: int, timestamp: float, elapsed: float | None = None) -> Sample:
        """The sample of `step`; counters grow by `elapsed` seconds (default: the stream's interval)."""
        self.elapsed = self.interval if elapsed is None else elapsed
        return Sample(
            timestamp=timestamp,
            system=self._system(step),
            pressure=self._pressure(),
            gpu=self._gpus(step, timestamp) if self.devices else None,
            lmcache=self._lmcache() if self.profile.lmcache else None,
            serving=ServingSample(instances=[self._engine(engine) for engine in self.profile.serving]) if self.profile.serving else None,
            collectors=[CollectorStatus(name="scenario", state=CollectorState.OK)],
        )

    # --- host ------------------------------------------------------------------

    def _system(self, step: int) -> SystemSample:
        host, noise = self.profile.host, self.noise
        utilization = noise.percent(host.cpu_utilization_percent)
        cores = [noise.draw(Level(mean=utilization, jitter=5.0), 0.0, 100.0) for _ in range(host.cpu_cores - 1)]
        cores.insert(0, noise.percent(host.busiest_core_percent))
        total = int(host.memory_total_gib * GIB)
        available = int(total * noise.percent(host.memory_available_percent) / 100)
        cached = min(int(total * 0.1), available // 2)
        buffers = min(int(total * 0.01), available // 4)
        swap_total = int(host.swap_total_gib * GIB)
        return SystemSample(
            hostname=self.identity.hostname,
            boot_id=self.identity.boot_id,
            uptime_seconds=86_400.0 * 3 + step * self.interval,
            cpu=CpuSample(
                utilization_percent=utilization,
                per_core_utilization_percent=cores,
                iowait_percent=noise.percent(host.iowait_percent),
                steal_percent=noise.percent(host.steal_percent),
                frequency_mhz=noise.draw(Level(mean=2600.0, jitter=150.0)),
                load1=round(host.cpu_cores * utilization / 100, 2),
                load5=round(host.cpu_cores * host.cpu_utilization_percent.mean / 100, 2),
                load15=round(host.cpu_cores * host.cpu_utilization_percent.mean / 100, 2),
                context_switches_per_second=noise.draw(Level(mean=250_000.0, jitter=20_000.0)),
                logical_cores=host.cpu_cores,
                model=host.cpu_model,
            ),
            memory=MemorySample(
                total_bytes=total,
                available_bytes=available,
                used_bytes=total - available - cached - buffers,
                cached_bytes=cached,
                buffers_bytes=buffers,
                swap_total_bytes=swap_total,
                swap_used_bytes=swap_total // 2 if swap_total else 0,
                swap_in_bytes_per_second=noise.draw(host.swap_in_mib_per_second) * MIB,
                swap_out_bytes_per_second=noise.draw(host.swap_out_mib_per_second) * MIB,
            ),
            disks=[
                DiskSample(
                    device=disk.device,
                    mountpoint=disk.mountpoint,
                    total_bytes=int(disk.total_gib * GIB),
                    used_bytes=int(disk.total_gib * GIB * noise.percent(disk.used_percent) / 100),
                    read_bytes_per_second=noise.draw(disk.read_mib_per_second) * MIB,
                    write_bytes_per_second=noise.draw(disk.write_mib_per_second) * MIB,
                    read_iops=noise.draw(disk.read_mib_per_second) * 8,
                    write_iops=noise.draw(disk.write_mib_per_second) * 8,
                    busy_percent=noise.percent(disk.busy_percent),
                )
                for disk in host.disks
            ],
            networks=[
                NetworkSample(
                    interface=nic.interface,
                    rx_bytes_per_second=noise.draw(nic.rx_gbit_per_second) * 1e9 / 8,
                    tx_bytes_per_second=noise.draw(nic.tx_gbit_per_second) * 1e9 / 8,
                    rx_errors_per_second=noise.draw(nic.errors_per_second),
                    tx_errors_per_second=0.0,
                    rx_drops_per_second=noise.draw(nic.drops_per_second),
                    tx_drops_per_second=0.0,
                )
                for nic in host.networks
            ],
        )

    def _pressure_line(self, name: str, level: Level) -> PressureLine:
        avg10 = self.noise.percent(level)
        total = self.counters.add(self.counters.psi_microseconds, name, avg10 / 100 * self.elapsed * 1e6)
        return PressureLine(avg10=avg10, avg60=level.mean, avg300=level.mean, total_microseconds=int(total))

    def _pressure(self) -> PressureSample:
        psi = self.profile.host.pressure
        return PressureSample(
            cpu=PressureResource(some=self._pressure_line("cpu_some", psi.cpu_some)),
            memory=PressureResource(
                some=self._pressure_line("memory_some", psi.memory_some),
                full=self._pressure_line("memory_full", psi.memory_full),
            ),
            io=PressureResource(
                some=self._pressure_line("io_some", psi.io_some),
                full=self._pressure_line("io_full", psi.io_full),
            ),
        )

    # --- gpu ---------------------------------------------------------------------

    def _gpus(self, step: int, timestamp: float) -> GpuSample:
        gpus = self.profile.gpus
        return GpuSample(
            driver_version=gpus.driver_version,
            cuda_driver_version=gpus.cuda_driver_version,
            devices=[self._device(index, device, step, timestamp) for index, device in enumerate(self.devices)],
        )

    def _device(self, index: int, gpu: GpuProfile, step: int, timestamp: float) -> GpuDeviceSample:
        model, noise, counters = self.profile.gpus.model, self.noise, self.counters
        sm = noise.percent(gpu.sm_utilization_percent)
        used = int(model.memory_total_bytes * noise.percent(gpu.memory_used_percent) / 100)
        reasons = [reason for reason, share in sorted(gpu.clock_event_reasons.items()) if noise.happens(share)]
        if sm < IDLE_SM_UTILIZATION:
            reasons.append("GpuIdle")
        violations = {
            policy: round(counters.add(counters.violation_seconds, (index, policy), share * self.elapsed), 3)
            for policy, share in sorted(gpu.violation_share.items())
        }
        if gpu.ecc_uncorrected_every and step % gpu.ecc_uncorrected_every == gpu.ecc_uncorrected_every // 2:
            counters.add(counters.ecc_uncorrected, index, 1)
        uncorrected = counters.ecc_uncorrected.get(index, 0)
        xids = [
            XidEvent(xid=code, timestamp=timestamp)
            for code, every in sorted(gpu.xid_every.items())
            if every > 0 and step % every == every // 2
        ]
        return GpuDeviceSample(
            index=index,
            uuid=self.identity.gpu_uuids[index],
            name=model.name,
            pci_bus_id=f"00000000:{0x18 + 0x10 * index:02X}:00.0",
            mig_mode=False,
            sm_utilization_percent=sm,
            memory_utilization_percent=noise.percent(gpu.memory_utilization_percent),
            memory_used_bytes=used,
            memory_total_bytes=model.memory_total_bytes,
            temperature_celsius=noise.draw(gpu.temperature_celsius),
            slowdown_temperature_celsius=model.slowdown_temperature_celsius,
            shutdown_temperature_celsius=model.shutdown_temperature_celsius,
            power_watts=noise.draw(gpu.power_watts, 0.0, gpu.power_limit_watts),
            power_limit_watts=gpu.power_limit_watts,
            power_default_limit_watts=model.power_default_limit_watts,
            power_limit_max_watts=model.power_limit_max_watts,
            sm_clock_mhz=noise.draw(gpu.sm_clock_mhz, 0.0, model.sm_clock_max_mhz),
            sm_clock_max_mhz=model.sm_clock_max_mhz,
            memory_clock_mhz=noise.draw(gpu.memory_clock_mhz, 0.0, model.memory_clock_max_mhz),
            memory_clock_max_mhz=model.memory_clock_max_mhz,
            clock_event_reasons=reasons,
            violation_seconds=violations,
            ecc_corrected_volatile=0,
            ecc_uncorrected_volatile=uncorrected,
            ecc_corrected_aggregate=0,
            ecc_uncorrected_aggregate=uncorrected,
            remapped_rows_correctable=0,
            remapped_rows_uncorrectable=uncorrected,
            remapped_rows_pending=gpu.remapped_rows_pending,
            remapped_rows_failure=gpu.remapped_rows_failure,
            pcie_link_generation=gpu.pcie_generation,
            pcie_link_generation_max=model.pcie_generation_max,
            pcie_link_width=gpu.pcie_width,
            pcie_link_width_max=model.pcie_width_max,
            pcie_rx_bytes_per_second=noise.draw(gpu.pcie_rx_gib_per_second) * GIB,
            pcie_tx_bytes_per_second=noise.draw(gpu.pcie_tx_gib_per_second) * GIB,
            performance_state=0 if sm >= IDLE_SM_UTILIZATION else 8,
            processes=[
                GpuProcess(
                    pid=4000 + 100 * index + number,
                    used_memory_bytes=used // gpu.processes,
                    name=PROCESS_NAME,
                    pod_uid=self.gpu_pod_uids[index],
                )
                for number in range(gpu.processes)
            ],
            xid_events=xids,
            recovery_action=gpu.recovery_action or "none",
        )

    # --- LMCache -------------------------------------------------------------------

    def _lmcache(self) -> LMCacheSample:
        return LMCacheSample(instances=[self._instance(cache) for cache in self.profile.lmcache])

    def _instance(self, cache: LMCacheProfile) -> LMCacheInstanceSample:
        noise, counters, interval = self.noise, self.counters, self.elapsed
        if not cache.reachable:
            return LMCacheInstanceSample(
                instance=cache.instance, pod=cache.pod, namespace=cache.namespace, urls=[cache.url],
                reachable=False, error="connection refused",
            )
        requested = noise.draw(cache.requested_tokens_per_second) * interval
        hit = requested * noise.draw(cache.hit_rate, 0.0, 1.0)

        def grow(name: str, amount: float) -> float:
            return round(counters.add(counters.lmcache, (cache.instance, name), amount), 1)

        size = cache.max_local_cpu_gib * GIB
        return LMCacheInstanceSample(
            instance=cache.instance,
            pod=cache.pod,
            namespace=cache.namespace,
            urls=[cache.url],
            healthy=cache.healthy,
            model_name=cache.model_name,
            requested_tokens_total=grow("requested", requested),
            hit_tokens_total=grow("hit", hit),
            lookup_tokens_total=grow("lookup", requested),
            lookup_hits_total=grow("lookup_hits", hit),
            stored_tokens_total=grow("stored", requested - hit),
            evictions_total=grow("evictions", noise.draw(cache.evictions_per_second) * interval),
            remote_errors_total=grow("remote_errors", noise.draw(cache.remote_errors_per_second) * interval),
            retrieve_requests_total=grow("retrieves", requested / 256),
            store_requests_total=grow("stores", (requested - hit) / 256),
            local_cpu_usage_bytes=round(size * noise.percent(cache.usage_percent) / 100),
            retrieve_latency_seconds=noise.draw(cache.retrieve_latency_seconds),
            store_latency_seconds=noise.draw(cache.store_latency_seconds),
            retrieve_throughput_tokens_per_second=round(hit / interval, 1),
            remote_ping_seconds=noise.draw(cache.remote_ping_seconds) if cache.remote_ping_seconds else None,
            max_local_cpu_size_bytes=size,
            local_cpu_enabled=True,
            remote_backend=cache.remote_backend,
            kv_bytes_per_token=cache.kv_bytes_per_token,
        )


    # --- serving engines ----------------------------------------------------------------

    def _requests(self, rate: float) -> int:
        """A whole number of requests with rate x interval as its mean."""
        expected = max(rate, 0.0) * self.elapsed
        whole = math.floor(expected)
        return whole + (1 if self.noise.rng.random() < expected - whole else 0)

    def _histogram(self, engine: ServingProfile, name: str) -> _Histogram:
        bounds = HISTOGRAM_BUCKETS[engine.engine][name]
        return self.counters.histograms.setdefault((engine.instance, name), _Histogram(bounds, [0] * (len(bounds) + 1)))

    def _around(self, median: float, spread: float = 0.5) -> float:
        return median * math.exp(self.noise.rng.gauss(0.0, spread))

    def _engine(self, engine: ServingProfile) -> ServingInstanceSample:
        identity = {
            "instance": engine.instance, "engine": engine.engine, "pod": engine.pod, "namespace": engine.namespace,
            "pod_uid": self.serving_pod_uids.get(engine.instance), "url": engine.url,
        }
        if not engine.reachable:
            return ServingInstanceSample(**identity, reachable=False, error=f"{engine.url}: connection refused")
        noise = self.noise
        requests = self._requests(noise.draw(engine.requests_per_second))
        prompt = requests * engine.prompt_tokens_per_request
        hit_rate = noise.draw(engine.prefix_hit_rate, 0.0, 1.0)
        ttft, itl, e2e, queue = (self._histogram(engine, name) for name in ("ttft", "itl", "e2e", "queue"))
        for _ in range(requests):
            first = self._around(engine.ttft_seconds)
            ttft.observe(first)
            queue.observe(self._around(engine.queue_seconds))
            gap = self._around(engine.inter_token_seconds, 0.25)
            e2e.observe(first + gap * engine.output_tokens_per_request)
            for _ in range(4):  # a few inter-token gaps per request (the engines observe one per output token)
                itl.observe(self._around(engine.inter_token_seconds, 0.25))

        def grow(name: str, amount: float) -> float:
            return round(self.counters.add(self.counters.serving, (engine.instance, name), amount), 1)

        vllm = engine.engine == "vllm"
        return ServingInstanceSample(
            **identity,
            model_name=engine.model_name,
            engine_index="0" if vllm else None,
            requests_running=round(noise.draw(engine.running)),
            requests_waiting=round(noise.draw(engine.waiting)),
            kv_cache_usage_percent=noise.percent(engine.kv_cache_usage_percent),
            prefix_cache_hit_rate_percent=None if vllm else round(hit_rate * 100, 2),
            preemptions_total=grow("preemptions", self._requests(noise.draw(engine.preemptions_per_second))),
            prefix_cache_queries_total=grow("prefix_queries", prompt) if vllm else None,
            prefix_cache_hits_total=grow("prefix_hits", prompt * hit_rate) if vllm else None,
            prompt_tokens_total=grow("prompt", prompt),
            generation_tokens_total=grow("generation", requests * engine.output_tokens_per_request),
            requests_finished_total=grow("finished", requests),
            requests_finished_by_reason={"stop": grow("finished_stop", requests)} if vllm else {},
            ttft_seconds=ttft.scraped(),
            inter_token_latency_seconds=itl.scraped(),
            e2e_latency_seconds=e2e.scraped(),
            queue_time_seconds=queue.scraped(),
            gpu_memory_utilization=engine.gpu_memory_utilization if vllm else None,
            num_gpu_blocks=engine.num_gpu_blocks if vllm else None,
            block_size=engine.block_size if vllm else None,
            max_total_num_tokens=engine.num_gpu_blocks * engine.block_size if not vllm else None,
        )


def generate(
    name: str,
    *,
    seed: int = 0,
    samples: int = 60,
    interval_seconds: float = 5.0,
    gpus: int = 8,
    start: float = DEFAULT_START,
) -> Iterator[Sample]:
    """Yield `samples` samples of the named scenario, `interval_seconds` apart from `start`."""
    if samples < 0:
        raise ValueError(f"samples must not be negative, got {samples}")
    if interval_seconds <= 0:
        raise ValueError(f"interval_seconds must be positive, got {interval_seconds}")
    if gpus < 0:
        raise ValueError(f"gpus must not be negative, got {gpus}")
    generator = ScenarioStream(load_profile(name), seed, interval_seconds, gpus)
    for step in range(samples):
        yield generator.sample(step, start + step * interval_seconds)


def stream(
    name: str, *, seed: int = 0, interval_seconds: float = 5.0, gpus: int = 8, hostname: str | None = None
) -> ScenarioStream:
    """An endless stream for collectors: call `.sample(step, timestamp)` once per step."""
    return ScenarioStream(load_profile(name), seed, interval_seconds, gpus, hostname)
