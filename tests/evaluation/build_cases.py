"""Build the labelled evaluation recordings (tests/evaluation/cases/*.jsonl) from per-case parameters.

Each case is one function below that returns its samples; the numbers come from the
public material cited in the case's `NAME.label.yaml` (written by hand, from the source,
before the engine ran on the case). Everything is deterministic: no clock, no randomness
other than a `random.Random` seeded by the case name.

    .venv/bin/python -m tests.evaluation.build_cases          # rewrite every recording
    .venv/bin/python -m tests.evaluation.build_cases --check  # fail if a recording is stale

Recordings are JSON Lines of `resource_agent.api.samples.Sample` (docs/recording-format.md),
written with the agent's own `write_recording`, so every line validates against the model.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
    LostGpu,
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
from resource_agent.node_agent.recording import write_recording

CASES_DIR = Path(__file__).parent / "cases"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z; every recording starts here
INTERVAL = 5.0  # the agent's default sampling interval
MIB = 1024**2
GIB = 1024**3


# --- GPU models (constants from the cited nvidia-smi outputs) -----------------------------


@dataclass(frozen=True)
class GpuModel:
    name: str
    memory_mib: int
    power_default_w: float
    power_min_w: float
    power_max_w: float
    sm_max_mhz: float
    mem_max_mhz: float
    idle_sm_mhz: float
    pcie_gen_max: int
    pcie_width_max: int = 16
    idle_power_w: float = 60.0


# H100 80GB HBM3: 81559 MiB, 700 W (vllm-project/vllm#55169); 1980/2619 MHz max, 345 MHz idle SM (NVIDIA/DCGM#120)
H100 = GpuModel("NVIDIA H100 80GB HBM3", 81559, 700.0, 200.0, 700.0, 1980.0, 2619.0, 345.0, 5, idle_power_w=99.0)
# A100-SXM4-80GB: default/max 400 W, min 100 W, 1410/1593 MHz max (NVIDIA/DCGM#152)
A100 = GpuModel("NVIDIA A100-SXM4-80GB", 81920, 400.0, 100.0, 400.0, 1410.0, 1593.0, 210.0, 4, idle_power_w=55.0)
# A100 80GB PCIe (wtdcode/vllm-backport#62 runs 4x A100-80GB PCIe); 300 W board power is NVIDIA's PCIe spec
A100_PCIE = GpuModel("NVIDIA A100 80GB PCIe", 81920, 300.0, 150.0, 300.0, 1410.0, 1512.0, 210.0, 4, idle_power_w=45.0)
# RTX 4090: 24564 MiB (vllm-project/vllm#7553), 450 W default/max, 150 W min (1Panel-dev/1Panel#11910)
RTX4090 = GpuModel("NVIDIA GeForce RTX 4090", 24564, 450.0, 150.0, 450.0, 2520.0, 10501.0, 210.0, 4, idle_power_w=16.0)
# V100-SXM2: 300 W (l4rz/reverse-engineering-dell-idrac-to-get-rid-of-gpu-throttling#3), 1530/877 MHz
V100 = GpuModel("Tesla V100-SXM2-32GB", 32768, 300.0, 150.0, 300.0, 1530.0, 877.0, 135.0, 3, idle_power_w=40.0)


@dataclass
class Gpu:
    """One GPU's behaviour over the recording: each callable gets the step number."""

    model: GpuModel
    index: int
    sm: Callable[[int], float] = lambda step: 0.0
    memory_used_mib: Callable[[int], float] = lambda step: 0.0
    temperature: Callable[[int], float] = lambda step: 35.0
    power: Callable[[int], float] | None = None  # default: idle + share of the limit by SM
    sm_clock: Callable[[int], float] | None = None  # default: max when busy, idle clock when idle
    reasons: Callable[[int], Sequence[str]] | None = None  # default: GpuIdle when SM is 0, else none
    power_limit_w: float | None = None  # enforced; default: the model's default limit
    pcie_gen: Callable[[int], int] | None = None  # default: max when busy, 1 when idle (ASPM/power saving)
    pcie_width: int | None = None
    violation: dict[str, Callable[[int], float]] = field(default_factory=dict)  # cumulative seconds
    ecc: Callable[[int], dict] = lambda step: {}  # extra ECC / remap fields
    xids: dict[int, Sequence[int]] = field(default_factory=dict)  # step -> XIDs seen since the last sample
    recovery: Callable[[int], str | None] = lambda step: None
    processes: Callable[[int], list[GpuProcess]] | None = None
    present: Callable[[int], bool] = lambda step: True  # False: NVML no longer returns it (lost)
    slowdown_c: float | None = None
    shutdown_c: float | None = None

    @property
    def uuid(self) -> str:
        return f"GPU-{self.index:08x}-eval-4c1d-9a3e-{zlib.crc32(self.model.name.encode()):012d}"

    @property
    def bus_id(self) -> str:
        return f"00000000:{0x18 + 0x11 * self.index:02X}:00.0"

    def sample(self, step: int, timestamp: float) -> GpuDeviceSample:
        m = self.model
        sm = round(self.sm(step), 1)
        limit = self.power_limit_w if self.power_limit_w is not None else m.power_default_w
        power = self.power(step) if self.power else m.idle_power_w + (limit - m.idle_power_w) * 0.85 * sm / 100
        clock = self.sm_clock(step) if self.sm_clock else (m.sm_max_mhz if sm > 0 else m.idle_sm_mhz)
        reasons = list(self.reasons(step)) if self.reasons else (["GpuIdle"] if sm == 0 else [])
        gen = self.pcie_gen(step) if self.pcie_gen else (m.pcie_gen_max if sm > 0 else 1)
        used = int(self.memory_used_mib(step) * MIB)
        procs = self.processes(step) if self.processes else []
        return GpuDeviceSample(
            index=self.index,
            uuid=self.uuid,
            name=m.name,
            pci_bus_id=self.bus_id,
            mig_mode=False,
            sm_utilization_percent=sm,
            memory_utilization_percent=round(sm * 0.55, 1),
            memory_used_bytes=used,
            memory_total_bytes=m.memory_mib * MIB,
            memory_reserved_bytes=569 * MIB,
            temperature_celsius=round(self.temperature(step), 1),
            slowdown_temperature_celsius=self.slowdown_c,
            shutdown_temperature_celsius=self.shutdown_c,
            power_watts=round(min(power, limit + 5.0), 1),
            power_limit_watts=limit,
            power_default_limit_watts=m.power_default_w,
            power_limit_min_watts=m.power_min_w,
            power_limit_max_watts=m.power_max_w,
            sm_clock_mhz=round(clock),
            sm_clock_max_mhz=m.sm_max_mhz,
            memory_clock_mhz=m.mem_max_mhz,
            memory_clock_max_mhz=m.mem_max_mhz,
            clock_event_reasons=reasons,
            violation_seconds={name: round(fn(step), 3) for name, fn in self.violation.items()},
            ecc_corrected_volatile=0,
            ecc_uncorrected_volatile=0,
            ecc_corrected_aggregate=0,
            ecc_uncorrected_aggregate=0,
            remapped_rows_correctable=0,
            remapped_rows_uncorrectable=0,
            remapped_rows_pending=False,
            remapped_rows_failure=False,
            pcie_link_generation=gen,
            pcie_link_generation_max=m.pcie_gen_max,
            pcie_link_width=self.pcie_width or m.pcie_width_max,
            pcie_link_width_max=m.pcie_width_max,
            performance_state=0 if sm > 0 else 8,
            processes=procs,
            xid_events=[XidEvent(xid=xid, timestamp=timestamp - 1.0) for xid in self.xids.get(step, ())],
            recovery_action=self.recovery(step),
        ).model_copy(update=self.ecc(step))


def vllm_process(pid: int, used_mib: float, started_at: float = START - 86_400, pod: str = "llm/vllm-0") -> GpuProcess:
    return GpuProcess(pid=pid, used_memory_bytes=int(used_mib * MIB), name="python3", started_at=started_at, pod_uid=f"uid-{pod.replace('/', '-')}")


def vllm_reserved_mib(model: GpuModel, fraction: float, overhead_mib: float = 600.0) -> float:
    """What NVML shows for a vLLM worker: its gpu_memory_utilization share plus CUDA context/graphs."""
    return model.memory_mib * fraction + overhead_mib


# --- host -----------------------------------------------------------------------------------


@dataclass
class Disk:
    device: str
    mountpoint: str
    total_gib: float
    used_gib: Callable[[int], float]
    busy: Callable[[int], float] = lambda step: 3.0
    read_bps: Callable[[int], float] = lambda step: 2e6
    write_bps: Callable[[int], float] = lambda step: 1e6
    iops: Callable[[int], float] = lambda step: 50.0
    queue_depth: Callable[[int], float] | None = None
    await_s: Callable[[int], float] | None = None

    def sample(self, step: int) -> DiskSample:
        return DiskSample(
            device=self.device,
            mountpoint=self.mountpoint,
            total_bytes=int(self.total_gib * GIB),
            used_bytes=int(self.used_gib(step) * GIB),
            read_bytes_per_second=self.read_bps(step),
            write_bytes_per_second=self.write_bps(step),
            read_iops=round(self.iops(step) * 0.3, 1),
            write_iops=round(self.iops(step) * 0.7, 1),
            busy_percent=round(self.busy(step), 1),
            queue_depth=round(self.queue_depth(step), 3) if self.queue_depth else None,
            await_seconds=self.await_s(step) if self.await_s else None,
        )


@dataclass
class Host:
    hostname: str
    cores: int = 224
    cpu_model: str = "Intel(R) Xeon(R) Platinum 8480+"
    cpu: Callable[[int], float] = lambda step: 12.0
    iowait: Callable[[int], float] = lambda step: 0.3
    memory_gib: float = 2015.0
    available_gib: Callable[[int], float] = lambda step: 1700.0
    cached_gib: float = 150.0
    swap_gib: float = 0.0
    swap_used_gib: Callable[[int], float] = lambda step: 0.0
    swap_io_bps: Callable[[int], float] = lambda step: 0.0
    psi_cpu_some: Callable[[int], float] = lambda step: 0.5
    psi_mem_some: Callable[[int], float] = lambda step: 0.0
    psi_mem_full: Callable[[int], float] = lambda step: 0.0
    psi_io_some: Callable[[int], float] = lambda step: 0.2
    psi_io_full: Callable[[int], float] = lambda step: 0.0
    disks: list[Disk] = field(default_factory=lambda: [Disk("nvme0n1", "/", 3500.0, lambda step: 900.0)])

    def system(self, step: int, interval: float = INTERVAL) -> SystemSample:
        util = self.cpu(step)
        per_core = [round(min(100.0, max(0.0, util + 6 * math.sin(step + core))), 1) for core in range(min(self.cores, 16))]
        total = int(self.memory_gib * GIB)
        available = int(self.available_gib(step) * GIB)
        load = round(self.cores * util / 100 + self.cores * self.psi_cpu_some(step) / 100, 2)
        swap_io = self.swap_io_bps(step)
        return SystemSample(
            hostname=self.hostname,
            boot_id="7f3c2b1a-eval-4d5e-8f90-0123456789ab",
            uptime_seconds=864_000.0 + step * interval,
            cpu=CpuSample(
                utilization_percent=round(util, 1),
                per_core_utilization_percent=per_core,
                iowait_percent=round(self.iowait(step), 1),
                steal_percent=0.0,
                frequency_mhz=2000.0,
                load1=load,
                load5=load,
                load15=load,
                context_switches_per_second=45_000.0,
                logical_cores=self.cores,
                model=self.cpu_model,
            ),
            memory=MemorySample(
                total_bytes=total,
                available_bytes=available,
                used_bytes=max(0, total - available - int(self.cached_gib * GIB)),
                cached_bytes=int(self.cached_gib * GIB),
                buffers_bytes=GIB,
                swap_total_bytes=int(self.swap_gib * GIB),
                swap_used_bytes=int(self.swap_used_gib(step) * GIB),
                swap_in_bytes_per_second=swap_io / 2,
                swap_out_bytes_per_second=swap_io / 2,
            ),
            disks=[disk.sample(step) for disk in self.disks],
            networks=[NetworkSample(interface="eth0", rx_bytes_per_second=2.5e7, tx_bytes_per_second=1.1e7, rx_errors_per_second=0.0, tx_errors_per_second=0.0, rx_drops_per_second=0.0, tx_drops_per_second=0.0)],
        )

    def pressure(self, step: int, interval: float = INTERVAL) -> PressureSample:
        def resource(some: float, full: float | None) -> PressureResource:
            def line(value: float) -> PressureLine:
                return PressureLine(avg10=round(value, 2), avg60=round(value, 2), avg300=round(value, 2), total_microseconds=int(value * 1e4 * (step + 1) * interval))

            return PressureResource(some=line(some), full=line(full) if full is not None else None)

        return PressureSample(
            cpu=resource(self.psi_cpu_some(step), 0.0),
            memory=resource(self.psi_mem_some(step), self.psi_mem_full(step)),
            io=resource(self.psi_io_some(step), self.psi_io_full(step)),
        )


# --- LMCache --------------------------------------------------------------------------------


@dataclass
class LMCache:
    instance: str
    requested_per_s: float
    hit_rate: float  # of requested tokens (and of looked-up tokens)
    evictions_per_s: float
    max_cpu_gib: float
    usage_fraction: float

    def sample(self, step: int, interval: float = INTERVAL) -> LMCacheInstanceSample:
        elapsed = (step + 1) * interval
        requested = self.requested_per_s * elapsed
        hits = requested * self.hit_rate
        namespace, pod = self.instance.split("/")
        return LMCacheInstanceSample(
            instance=self.instance,
            pod=pod,
            namespace=namespace,
            urls=[f"http://{pod}.{namespace}:6999"],
            healthy=True,
            model_name="meta-llama/Llama-3.1-8B-Instruct",
            requested_tokens_total=round(requested),
            hit_tokens_total=round(hits),
            lookup_tokens_total=round(requested),
            lookup_hits_total=round(hits),
            stored_tokens_total=round(requested - hits),
            evictions_total=round(self.evictions_per_s * elapsed),
            remote_errors_total=0.0,
            retrieve_requests_total=round(requested / 256),
            store_requests_total=round((requested - hits) / 256),
            local_cpu_usage_bytes=self.max_cpu_gib * GIB * self.usage_fraction,
            retrieve_latency_seconds=0.004,
            store_latency_seconds=0.003,
            max_local_cpu_size_bytes=self.max_cpu_gib * GIB,
            local_cpu_enabled=True,
            kv_bytes_per_token=131072.0,
            worker_ranks=1,
        )


# --- serving engines (vLLM V1) --------------------------------------------------------------

# bucket lists of vllm/v1/metrics/loggers.py (PrometheusStatLogger)
VLLM_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
VLLM_ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
VLLM_REQUEST_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)


class _Observed:
    """A cumulative histogram fed deterministic observations (log-normal around a median)."""

    def __init__(self, name: str, bounds: Sequence[float], median: float, spread: float = 0.5) -> None:
        self.name, self.bounds, self.median, self.spread = name, tuple(bounds), median, spread
        self.counts = [0.0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, step: int, count: int) -> ServingHistogram:
        rng = random.Random(f"{self.name}:{step}")
        for _ in range(count):
            value = self.median * math.exp(rng.gauss(0.0, self.spread))
            self.sum += value
            for position, bound in enumerate(self.bounds):
                if value <= bound:
                    self.counts[position] += 1
            self.counts[-1] += 1
        return ServingHistogram(bounds=list(self.bounds), counts=list(self.counts), sum=self.sum)


@dataclass
class Serving:
    """A vLLM V1 replica on a GPU node, as the serving collector samples it."""

    instance: str  # "<namespace>/<pod>"
    requests_per_s: float
    running: Callable[[int], float]
    waiting: Callable[[int], float]
    kv_usage_percent: Callable[[int], float]
    ttft_median_s: float = 0.15
    itl_median_s: float = 0.025
    queue_median_s: float = 0.005
    preemptions_per_s: float = 0.0
    prompt_tokens: float = 1500.0
    output_tokens: float = 250.0
    prefix_hit_rate: float = 0.4
    gpu_memory_utilization: float = 0.9
    model_name: str = "meta-llama/Llama-3.1-8B-Instruct"

    def samples(self, steps: int, interval: float = INTERVAL) -> list[ServingInstanceSample]:
        namespace, pod = self.instance.split("/")
        ttft = _Observed(f"{self.instance}:ttft", VLLM_TTFT_BUCKETS, self.ttft_median_s)
        itl = _Observed(f"{self.instance}:itl", VLLM_ITL_BUCKETS, self.itl_median_s, 0.25)
        queue = _Observed(f"{self.instance}:queue", VLLM_REQUEST_BUCKETS, self.queue_median_s)
        e2e = _Observed(f"{self.instance}:e2e", VLLM_REQUEST_BUCKETS, self.ttft_median_s + self.itl_median_s * self.output_tokens, 0.3)
        result, finished = [], 0
        for step in range(steps):
            count = round(self.requests_per_s * interval * (step + 1)) - finished
            finished += count
            queries = finished * self.prompt_tokens
            result.append(ServingInstanceSample(
                instance=self.instance, engine="vllm", model_name=self.model_name, engine_index="0", pod=pod, namespace=namespace,
                pod_uid=f"uid-{namespace}-{pod}", url=f"http://{pod}.{namespace}:8000/metrics",
                requests_running=self.running(step), requests_waiting=self.waiting(step), kv_cache_usage_percent=self.kv_usage_percent(step),
                preemptions_total=float(round(self.preemptions_per_s * interval * step)),
                prefix_cache_queries_total=queries, prefix_cache_hits_total=queries * self.prefix_hit_rate,
                prompt_tokens_total=queries, generation_tokens_total=finished * self.output_tokens,
                requests_finished_total=float(finished), requests_finished_by_reason={"stop": float(finished), "length": 0.0, "abort": 0.0},
                ttft_seconds=ttft.observe(step, count), inter_token_latency_seconds=itl.observe(step, 4 * count),
                queue_time_seconds=queue.observe(step, count), e2e_latency_seconds=e2e.observe(step, count),
                gpu_memory_utilization=self.gpu_memory_utilization, num_gpu_blocks=27975.0, block_size=16.0,
            ))
        return result


# --- one recording --------------------------------------------------------------------------


@dataclass
class Recording:
    host: Host
    gpus: list[Gpu] = field(default_factory=list)
    caches: list[LMCache] = field(default_factory=list)
    servings: list[Serving] = field(default_factory=list)
    samples: int = 24
    interval: float = INTERVAL  # seconds between samples (the agent's --interval)
    pci_gpu_count: int | None = None  # default: the number of GPUs
    extra_lost: Callable[[int], list[LostGpu]] = lambda step: []
    unattributed_xids: dict[int, Sequence[int]] = field(default_factory=dict)  # step -> XIDs from a device NVML could not name

    def build(self) -> list[Sample]:
        result = []
        engines = [serving.samples(self.samples, self.interval) for serving in self.servings]
        for step in range(self.samples):
            timestamp = START + step * self.interval
            collectors = [CollectorStatus(name="system", state=CollectorState.OK, duration_seconds=0.002), CollectorStatus(name="pressure", state=CollectorState.OK, duration_seconds=0.0004)]
            gpu = None
            if self.gpus:
                present = [g for g in self.gpus if g.present(step)]
                lost = [LostGpu(index=g.index, uuid=g.uuid, pci_bus_id=g.bus_id, error="GPU is lost") for g in self.gpus if not g.present(step)]
                gpu = GpuSample(
                    driver_version="550.90.07",
                    cuda_driver_version="12.4",
                    devices=[g.sample(step, timestamp) for g in present],
                    lost=lost + self.extra_lost(step),
                    pci_gpu_count=self.pci_gpu_count if self.pci_gpu_count is not None else len(self.gpus),
                    pci_bus_ids=[g.bus_id for g in self.gpus],
                    xid_events_unattributed=[XidEvent(xid=xid, timestamp=timestamp - 1.0) for xid in self.unattributed_xids.get(step, ())],
                )
                collectors.append(CollectorStatus(name="gpu", state=CollectorState.OK, duration_seconds=0.03))
            else:
                collectors.append(CollectorStatus(name="gpu", state=CollectorState.UNAVAILABLE, reason="NVML not available", duration_seconds=0.0))
            lmcache = LMCacheSample(instances=[c.sample(step, self.interval) for c in self.caches]) if self.caches else None
            if lmcache is not None:
                collectors.append(CollectorStatus(name="lmcache", state=CollectorState.OK, duration_seconds=0.01))
            serving = ServingSample(instances=[samples[step] for samples in engines]) if engines else None
            if serving is not None:
                collectors.append(CollectorStatus(name="serving", state=CollectorState.OK, duration_seconds=0.008))
            result.append(Sample(timestamp=timestamp, system=self.host.system(step, self.interval), pressure=self.host.pressure(step, self.interval), gpu=gpu, lmcache=lmcache, serving=serving, collectors=collectors))
        return result


# --- helpers for per-step shapes --------------------------------------------------------------


def const(value: float) -> Callable[[int], float]:
    return lambda step: value


def jitter(name: str, base: float, spread: float, low: float = 0.0, high: float = 100.0) -> Callable[[int], float]:
    """base +- spread, deterministic per (case name, step)."""

    def value(step: int) -> float:
        return max(low, min(high, base + random.Random(f"{name}:{step}:{base}").uniform(-spread, spread)))

    return value


def every(steps: Sequence[int], value: float, otherwise: float) -> Callable[[int], float]:
    chosen = set(steps)
    return lambda step: value if step in chosen else otherwise


def counter(per_step: float, start: float = 0.0) -> Callable[[int], float]:
    return lambda step: start + per_step * step


CASES: dict[str, Callable[[], Recording]] = {}


def case(name: str) -> Callable[[Callable[[], Recording]], Callable[[], Recording]]:
    def register(function: Callable[[], Recording]) -> Callable[[], Recording]:
        CASES[name] = function
        return function

    return register


def serving_gpu(name: str, model: GpuModel, index: int, fraction: float, sm: float = 70.0, **kwargs) -> Gpu:
    """A GPU steadily serving with vLLM: memory at the reserved share, SM busy around `sm`."""
    used = vllm_reserved_mib(model, fraction)
    return Gpu(
        model,
        index,
        sm=jitter(f"{name}{index}", sm, 20.0, 5.0, 100.0),
        memory_used_mib=const(used),
        temperature=jitter(f"{name}{index}t", 62.0, 4.0),
        processes=lambda step, used=used: [vllm_process(4000 + index, used, pod=f"llm/vllm-{index}")],
        **kwargs,
    )


# =============================================================================================
# Healthy and near-miss nodes: no warning or critical finding expected
# =============================================================================================


@case("healthy-vllm-h100-default-092")
def _() -> Recording:
    name = "healthy-vllm-h100-default-092"
    return Recording(Host("gpu-h100-a"), [serving_gpu(name, H100, i, 0.92, sm=65.0) for i in range(4)])


@case("healthy-vllm-4090-cudagraphs-097")
def _() -> Recording:
    name = "healthy-vllm-4090-cudagraphs-097"
    gpus = [
        Gpu(RTX4090, i, sm=jitter(f"{name}{i}", 55.0, 25.0, 5.0, 100.0), memory_used_mib=const(23859.0),
            temperature=jitter(f"{name}{i}t", 58.0, 5.0), processes=lambda step, i=i: [vllm_process(5100 + i, 23859.0 - 400, pod="llm/yi-34b")])
        for i in range(4)
    ]
    return Recording(Host("gpu-4090-a", cores=64, cpu_model="AMD EPYC 7543", memory_gib=503.0, available_gib=const(380.0)), gpus)


@case("healthy-vllm-a100-095")
def _() -> Recording:
    name = "healthy-vllm-a100-095"
    return Recording(Host("gpu-a100-a", cores=128, cpu_model="AMD EPYC 7763"), [serving_gpu(name, A100, i, 0.95, sm=60.0) for i in range(2)])


@case("healthy-bursty-gpu-idle-clocks")
def _() -> Recording:
    busy = lambda step: 96.0 if (step // 3) % 2 == 0 else 0.0  # noqa: E731  3 samples busy, 3 idle
    used = vllm_reserved_mib(H100, 0.90)
    gpu = Gpu(H100, 0, sm=busy, memory_used_mib=const(used), temperature=lambda s: 55.0 if busy(s) else 41.0,
              sm_clock=lambda s: 1980.0 if busy(s) else 345.0, reasons=lambda s: [] if busy(s) else ["GpuIdle"],
              processes=lambda step: [vllm_process(4100, used)])
    return Recording(Host("gpu-h100-b"), [gpu], samples=36)


@case("healthy-h100-default-power-swpowercap")
def _() -> Recording:
    name = "healthy-h100-default-power-swpowercap"
    capped = lambda step: step % 5 != 4  # noqa: E731  SwPowerCap in 4 of 5 samples at full load
    used = vllm_reserved_mib(H100, 0.90)
    gpus = [
        Gpu(H100, i, sm=jitter(f"{name}{i}", 97.0, 2.0), memory_used_mib=const(used), temperature=jitter(f"{name}{i}t", 66.0, 3.0),
            power=lambda s: 697.0 if capped(s) else 668.0, sm_clock=lambda s: 1755.0 if capped(s) else 1980.0,
            reasons=lambda s: ["SwPowerCap"] if capped(s) else [], violation={"power": counter(4.0, 1200.0)},
            processes=lambda step, i=i: [vllm_process(4200 + i, used)])
        for i in range(2)
    ]
    return Recording(Host("gpu-h100-c"), gpus)


@case("healthy-a100-default-power-swpowercap")
def _() -> Recording:
    name = "healthy-a100-default-power-swpowercap"
    capped = lambda step: step % 5 in (0, 1, 3)  # noqa: E731  60% of samples
    used = vllm_reserved_mib(A100, 0.90)
    gpu = Gpu(A100, 0, sm=jitter(name, 95.0, 4.0), memory_used_mib=const(used), temperature=jitter(f"{name}t", 64.0, 3.0),
              power=lambda s: 398.0 if capped(s) else 371.0, sm_clock=lambda s: 1275.0 if capped(s) else 1410.0,
              reasons=lambda s: ["SwPowerCap"] if capped(s) else [], violation={"power": counter(3.0, 800.0)},
              processes=lambda step: [vllm_process(4300, used)])
    return Recording(Host("gpu-a100-b", cores=128, cpu_model="AMD EPYC 7763"), [gpu])


@case("healthy-model-loading-young-process")
def _() -> Recording:
    target = vllm_reserved_mib(H100, 0.90)
    started = START - 20.0  # the vLLM worker started 20 s before the window

    def used(step: int) -> float:  # weights load (16 GiB), then KV cache allocated at step 16
        return min(16_500.0, 600.0 + step * 1100.0) if step < 16 else target

    gpu = Gpu(H100, 0, sm=lambda s: 35.0 if s in (16, 17) else (3.0 if s > 17 else 0.0), memory_used_mib=used,
              temperature=const(38.0), processes=lambda step: [vllm_process(4400, used(step), started_at=started)])
    return Recording(Host("gpu-h100-d", cpu=const(9.0), iowait=const(4.0)), [gpu])


@case("healthy-idle-replica-beside-download")
def _() -> Recording:
    used = vllm_reserved_mib(H100, 0.90)
    replica = Gpu(H100, 0, sm=const(0.0), memory_used_mib=const(used), temperature=const(36.0), processes=lambda step: [vllm_process(4500, used, pod="llm/vllm-replica-1")])
    empty = Gpu(H100, 1, temperature=const(33.0))
    disk = Disk("nvme0n1", "/", 3500.0, lambda step: 900.0 + step * 7.0, busy=const(88.0), write_bps=const(1.5e9), iops=const(11_000.0),
                queue_depth=const(3.1), await_s=const(0.00028))
    host = Host("gpu-h100-e", cores=32, cpu_model="AMD EPYC 9354", cpu=jitter("dl-cpu", 9.0, 3.0), iowait=jitter("dl-io", 34.0, 6.0),
                memory_gib=503.0, available_gib=const(310.0), psi_io_some=const(22.0), psi_io_full=const(9.0), disks=[disk])
    return Recording(host, [replica, empty])


@case("healthy-nvme-busy-shallow-queue")
def _() -> Recording:
    name = "healthy-nvme-busy-shallow-queue"
    nvme = Disk("nvme1n1", "/var/lib/lmcache", 3500.0, const(1200.0), busy=jitter(name, 99.0, 1.0), write_bps=const(105_250_500.0),
                iops=const(7497.0 / 0.7), queue_depth=jitter(f"{name}q", 0.23, 0.02), await_s=const(0.00003))
    host = Host("gpu-h100-f", disks=[Disk("nvme0n1", "/", 1800.0, const(400.0)), nvme])
    return Recording(host, [serving_gpu(name, H100, 0, 0.90, sm=60.0)])


@case("healthy-idle-node")
def _() -> Recording:
    return Recording(Host("gpu-a100-idle", cores=128, cpu=const(1.5)), [Gpu(A100, i, memory_used_mib=const(4.0), temperature=const(31.0 + i)) for i in range(8)])


@case("healthy-pcie-gen1-at-idle")
def _() -> Recording:
    gpus = [Gpu(A100, i, memory_used_mib=const(4.0), temperature=const(30.0), pcie_gen=const(1)) for i in range(2)]
    return Recording(Host("gpu-a100-c", cores=128, cpu=const(2.0)), gpus)


@case("healthy-lmcache-good-hit-rate")
def _() -> Recording:
    name = "healthy-lmcache-good-hit-rate"
    cache = LMCache("llm/vllm-0", requested_per_s=12_000.0, hit_rate=0.62, evictions_per_s=0.0, max_cpu_gib=80.0, usage_fraction=0.55)
    return Recording(Host("gpu-h100-g"), [serving_gpu(name, H100, 0, 0.90, sm=70.0)], caches=[cache])


@case("healthy-vllm-busy-h100")
def _() -> Recording:
    name = "healthy-vllm-busy-h100"
    engine = Serving("llm/vllm-0", requests_per_s=6.0, running=jitter(f"{name}r", 48.0, 6.0), waiting=const(0.0),
                     kv_usage_percent=jitter(f"{name}kv", 67.0, 8.0))
    return Recording(Host("gpu-h100-s1"), [serving_gpu(name, H100, 0, 0.90, sm=75.0)], servings=[engine])


@case("nearmiss-vllm-idle-replica-short-window")
def _() -> Recording:
    name = "nearmiss-vllm-idle-replica-short-window"
    engine = Serving("llm/vllm-0", requests_per_s=0.0, running=const(0.0), waiting=const(0.0), kv_usage_percent=const(0.0))
    return Recording(Host("gpu-h100-s2"), [serving_gpu(name, H100, 0, 0.90, sm=0.5)], servings=[engine])


def idle_replica(name: str, minutes: int) -> Recording:
    """A vLLM replica with no traffic for `minutes`, sampled every 3 minutes (`agent --interval 3m`) to keep the file small."""
    engine = Serving("llm/vllm-0", requests_per_s=0.0, running=const(0.0), waiting=const(0.0), kv_usage_percent=const(0.0))
    used = vllm_reserved_mib(H100, 0.90)
    gpu = Gpu(H100, 0, sm=const(0.0), memory_used_mib=const(used), temperature=const(35.0), processes=lambda step: [vllm_process(4000, used)])
    return Recording(Host(name), [gpu], servings=[engine], samples=minutes // 3 + 1, interval=180.0)


@case("nearmiss-vllm-idle-replica-45min")
def _() -> Recording:
    return idle_replica("gpu-h100-s3", 45)


@case("fault-vllm-idle-replica-2h")
def _() -> Recording:
    return idle_replica("gpu-h100-s4", 120)


@case("nearmiss-xid43-after-app-exit")
def _() -> Recording:
    name = "nearmiss-xid43-after-app-exit"
    gpu = serving_gpu(name, H100, 0, 0.90, sm=60.0)
    gpu.xids = {9: (43,)}
    return Recording(Host("gpu-h100-h"), [gpu])


@case("nearmiss-xid92-sbe-rate")
def _() -> Recording:
    name = "nearmiss-xid92-sbe-rate"
    gpu = serving_gpu(name, A100, 0, 0.90, sm=65.0)
    gpu.xids = {6: (92,)}
    gpu.ecc = lambda step: {"ecc_corrected_volatile": 150 + step, "ecc_corrected_aggregate": 150 + step}
    return Recording(Host("gpu-a100-d", cores=128), [gpu])


@case("healthy-host-page-cache-full")
def _() -> Recording:
    name = "healthy-host-page-cache-full"
    host = Host("gpu-h100-i", memory_gib=2015.0, available_gib=const(1450.0), cached_gib=1380.0, psi_mem_some=const(0.1))
    return Recording(host, [serving_gpu(name, H100, i, 0.90, sm=65.0) for i in range(2)])


# =============================================================================================
# Real faults
# =============================================================================================


@case("fault-vllm-kv-cache-bound")
def _() -> Recording:
    name = "fault-vllm-kv-cache-bound"
    engine = Serving("llm/vllm-0", requests_per_s=5.0, running=jitter(f"{name}r", 60.0, 2.0), waiting=jitter(f"{name}w", 20.0, 6.0),
                     kv_usage_percent=jitter(f"{name}kv", 98.5, 1.5), ttft_median_s=3.0, itl_median_s=0.05, queue_median_s=2.5,
                     preemptions_per_s=1.0)
    return Recording(Host("gpu-h100-s3"), [serving_gpu(name, H100, 0, 0.90, sm=85.0)], servings=[engine])


@case("fault-vllm-scheduler-bound")
def _() -> Recording:
    name = "fault-vllm-scheduler-bound"
    engine = Serving("llm/vllm-0", requests_per_s=4.0, running=const(16.0), waiting=jitter(f"{name}w", 30.0, 5.0),
                     kv_usage_percent=jitter(f"{name}kv", 20.0, 5.0), ttft_median_s=2.5, itl_median_s=0.022, queue_median_s=2.2)
    return Recording(Host("gpu-h100-s4"), [serving_gpu(name, H100, 0, 0.90, sm=30.0)], servings=[engine])


@case("fault-xid48-dbe-hbm-degrading-a100")
def _() -> Recording:
    name = "fault-xid48-dbe-hbm-degrading-a100"
    gpus = [serving_gpu(name, A100_PCIE, i, 0.90, sm=70.0) for i in range(4)]
    bad = gpus[2]
    bad.xids = {8: (48, 63), 9: (94, 94, 154)}

    def ecc(step: int) -> dict:
        hit = step >= 8
        return {"ecc_uncorrected_volatile": 1 if hit else 0, "ecc_uncorrected_aggregate": 4 if hit else 3,
                "remapped_rows_uncorrectable": 11, "remapped_rows_pending": hit}

    bad.ecc = ecc
    bad.recovery = lambda step: "drain_and_reset" if step >= 9 else None
    return Recording(Host("gpu-a100pcie-a", cores=64, cpu_model="AMD EPYC 7543", memory_gib=503.0, available_gib=const(400.0)), gpus)


@case("fault-xid79-off-bus-lost")
def _() -> Recording:
    name = "fault-xid79-off-bus-lost"
    gpus = [serving_gpu(name, A100, i, 0.90, sm=70.0) for i in range(4)]
    gone = gpus[3]
    gone.xids = {7: (79,)}
    gone.present = lambda step: step <= 7
    return Recording(Host("node-11", cores=128), gpus)


@case("fault-xid79-unattributed-after-restart")
def _() -> Recording:
    name = "fault-xid79-unattributed-after-restart"
    gpus = [serving_gpu(name, A100, i, 0.90, sm=70.0) for i in range(3)]
    never_named = lambda step: [LostGpu(index=3, error="GPU is lost")]  # noqa: E731
    return Recording(Host("node-12", cores=128), gpus, pci_gpu_count=4, extra_lost=never_named, unattributed_xids={2: (79,)})


@case("fault-gpu-missing-no-xid")
def _() -> Recording:
    name = "fault-gpu-missing-no-xid"
    gpus = [serving_gpu(name, H100, i, 0.90, sm=70.0) for i in range(7)]
    lost = lambda step: [LostGpu(pci_bus_id="00000000:B3:00.0", error="listed on the PCI bus, not by NVML")]  # noqa: E731
    return Recording(Host("gpu-h100-j"), gpus, pci_gpu_count=8, extra_lost=lost)


@case("fault-xid94-contained-ecc")
def _() -> Recording:
    name = "fault-xid94-contained-ecc"
    gpu = serving_gpu(name, A100, 0, 0.90, sm=70.0)
    gpu.xids = {10: (94,)}
    gpu.ecc = lambda step: {"ecc_uncorrected_volatile": 1 if step >= 10 else 0, "ecc_uncorrected_aggregate": 5 if step >= 10 else 4}
    return Recording(Host("gpu-a100-e", cores=128), [gpu])


@case("fault-xid95-uncontained-ecc")
def _() -> Recording:
    name = "fault-xid95-uncontained-ecc"
    gpus = [serving_gpu(name, H100, i, 0.90, sm=70.0) for i in range(2)]
    gpus[1].xids = {6: (95,)}
    gpus[1].ecc = lambda step: {"ecc_uncorrected_volatile": 1 if step >= 6 else 0, "ecc_uncorrected_aggregate": 1 if step >= 6 else 0}
    gpus[1].recovery = lambda step: "gpu_reset" if step >= 6 else None
    return Recording(Host("gpu-h100-k"), gpus)


@case("fault-xid63-row-remap-pending")
def _() -> Recording:
    name = "fault-xid63-row-remap-pending"
    gpu = serving_gpu(name, A100, 0, 0.90, sm=70.0)
    gpu.xids = {5: (63,)}
    gpu.ecc = lambda step: {"ecc_corrected_volatile": 177, "ecc_corrected_aggregate": 177, "remapped_rows_correctable": 1 if step >= 5 else 0,
                            "remapped_rows_pending": step >= 5}
    return Recording(Host("gpu-a100-f", cores=128), [gpu])


@case("fault-xid64-row-remap-failure")
def _() -> Recording:
    name = "fault-xid64-row-remap-failure"
    gpu = serving_gpu(name, A100, 0, 0.90, sm=70.0)
    gpu.xids = {4: (64,)}
    gpu.ecc = lambda step: {"ecc_uncorrected_volatile": 1, "ecc_uncorrected_aggregate": 6, "remapped_rows_uncorrectable": 12,
                            "remapped_rows_failure": step >= 4}
    return Recording(Host("gpu-a100-g", cores=128), [gpu])


@case("fault-xid74-nvlink")
def _() -> Recording:
    name = "fault-xid74-nvlink"
    gpus = [serving_gpu(name, H100, i, 0.90, sm=70.0) for i in range(8)]
    gpus[5].xids = {11: (74,)}
    return Recording(Host("gpu-h100-l"), gpus)


@case("fault-xid119-gsp-rpc-timeout")
def _() -> Recording:
    name = "fault-xid119-gsp-rpc-timeout"
    gpus = [serving_gpu(name, H100, i, 0.90, sm=70.0) for i in range(2)]
    gpus[0].xids = {7: (119,), 8: (119,)}
    return Recording(Host("gpu-h100-m"), gpus)


@case("fault-xid62-pmu-halt-with-xid45")
def _() -> Recording:
    name = "fault-xid62-pmu-halt-with-xid45"
    gpus = [serving_gpu(name, A100, i, 0.90, sm=70.0) for i in range(8)]
    gpus[3].xids = {6: (62, 45, 45, 45)}
    return Recording(Host("gpu-a100-h", cores=256), gpus)


@case("fault-xid140-ecc-escape")
def _() -> Recording:
    name = "fault-xid140-ecc-escape"
    gpu = serving_gpu(name, H100, 0, 0.90, sm=70.0)
    gpu.xids = {5: (140,)}
    return Recording(Host("gpu-h100-n"), [gpu])


@case("fault-ecc-uncorrectable-counter-only")
def _() -> Recording:
    name = "fault-ecc-uncorrectable-counter-only"
    gpus = [serving_gpu(name, A100, i, 0.90, sm=70.0) for i in range(2)]
    gpus[0].ecc = lambda step: {"ecc_uncorrected_volatile": 1, "ecc_uncorrected_aggregate": 5} if step >= 3 else {"ecc_uncorrected_aggregate": 4}
    return Recording(Host("gpu-a100-i", cores=128), gpus)


@case("fault-thermal-slowdown-no-fan")
def _() -> Recording:
    name = "fault-thermal-slowdown-no-fan"
    hot = lambda step: step % 2 == 0  # noqa: E731  throttled in half of the samples
    used = vllm_reserved_mib(A100, 0.90)
    gpus = [serving_gpu(name, A100, i, 0.90, sm=80.0) for i in range(4)]
    gpus[2] = Gpu(A100, 2, sm=jitter(name, 85.0, 8.0), memory_used_mib=const(used), temperature=lambda s: 76.0 if hot(s) else 74.0,
                  sm_clock=lambda s: 765.0 if hot(s) else 1200.0, reasons=lambda s: ["SwThermalSlowdown", "HwThermalSlowdown"] if hot(s) else ["SwThermalSlowdown"],
                  violation={"thermal": counter(3.3, 100.0)}, processes=lambda step: [vllm_process(4602, used)])
    return Recording(Host("gpu-a100-j", cores=128), gpus)


@case("fault-power-limit-below-default")
def _() -> Recording:
    name = "fault-power-limit-below-default"
    used = 30_000.0

    def gpu(index: int) -> Gpu:
        low = index == 1
        capped = (lambda s: True) if low else (lambda s: s % 5 in (0, 2))
        return Gpu(V100, index, sm=jitter(f"{name}{index}", 97.0, 2.0), memory_used_mib=const(used), temperature=jitter(f"{name}{index}t", 60.0, 3.0),
                   power_limit_w=150.0 if low else None, power=lambda s: (149.0 if low else (298.0 if capped(s) else 281.0)),
                   sm_clock=lambda s: (1005.0 if low else (1380.0 if capped(s) else 1530.0)),
                   reasons=lambda s: ["SwPowerCap"] if capped(s) else [], violation={"power": counter(5.0 if low else 2.0, 50.0)},
                   processes=lambda step: [vllm_process(4700 + index, used)])

    return Recording(Host("c4140-a", cores=80, cpu_model="Intel(R) Xeon(R) Gold 6148", memory_gib=384.0, available_gib=const(300.0)), [gpu(i) for i in range(4)])


@case("fault-hw-power-brake")
def _() -> Recording:
    name = "fault-hw-power-brake"
    brake = lambda step: step % 3 == 0  # noqa: E731
    used = vllm_reserved_mib(A100, 0.90)
    gpus = [
        Gpu(A100, i, sm=jitter(f"{name}{i}", 92.0, 5.0), memory_used_mib=const(used), temperature=jitter(f"{name}{i}t", 63.0, 3.0),
            power=lambda s: 180.0 if brake(s) else 240.0, sm_clock=lambda s: 705.0 if brake(s) else 1140.0,
            reasons=lambda s: ["HwSlowdown", "HwPowerBrakeSlowdown"] if brake(s) else ["SwPowerCap"],
            violation={"power": counter(4.0, 10.0)}, processes=lambda step, i=i: [vllm_process(4800 + i, used)])
        for i in range(2)
    ]
    return Recording(Host("t550-a", cores=64, cpu_model="Intel(R) Xeon(R) Gold 6338", memory_gib=256.0, available_gib=const(180.0)), gpus)


@case("fault-pcie-downgraded-under-load")
def _() -> Recording:
    name = "fault-pcie-downgraded-under-load"
    gpus = [
        Gpu(RTX4090, i, sm=jitter(f"{name}{i}", 80.0, 10.0), memory_used_mib=const(22_000.0), temperature=jitter(f"{name}{i}t", 60.0, 3.0),
            pcie_gen=const(1 if i == 0 else 4), processes=lambda step, i=i: [vllm_process(4900 + i, 21_500.0)])
        for i in range(2)
    ]
    return Recording(Host("jan-2x4090", cores=32, cpu_model="AMD Ryzen Threadripper 3970X", memory_gib=128.0, available_gib=const(80.0)), gpus)


@case("fault-host-memory-pressure-psi")
def _() -> Recording:
    name = "fault-host-memory-pressure-psi"
    host = Host("gpu-h100-o", cores=64, memory_gib=256.0, available_gib=jitter(f"{name}a", 6.0, 1.5, 2.5, 20.0), cached_gib=3.0,
                swap_gib=16.0, swap_used_gib=const(12.0), swap_io_bps=const(6e7), psi_mem_some=jitter(f"{name}s", 45.0, 8.0),
                psi_mem_full=jitter(f"{name}f", 24.0, 5.0), cpu=const(35.0), iowait=const(8.0))
    return Recording(host, [serving_gpu(name, H100, 0, 0.90, sm=50.0)])


@case("fault-disk-full-model-cache")
def _() -> Recording:
    cache = Disk("nvme1n1", "/model-cache", 512.0, const(512.0 - 9476.35 / 1024), busy=const(40.0), write_bps=const(4e8))
    host = Host("gpu-h100-p", disks=[Disk("nvme0n1", "/", 1800.0, const(400.0)), cache])
    return Recording(host, [Gpu(H100, 0, temperature=const(33.0))])


@case("fault-cpu-saturated-gpus-waiting")
def _() -> Recording:
    name = "fault-cpu-saturated-gpus-waiting"
    used = vllm_reserved_mib(A100, 0.90)
    gpu = Gpu(A100, 0, sm=jitter(name, 32.0, 8.0), memory_used_mib=const(used), temperature=const(52.0), processes=lambda step: [vllm_process(5000, used)])
    host = Host("gpu-a100-k", cores=8, cpu_model="Intel(R) Xeon(R) Gold 6240", cpu=jitter(f"{name}c", 97.0, 2.0), psi_cpu_some=jitter(f"{name}p", 55.0, 8.0),
                memory_gib=64.0, available_gib=const(30.0))
    return Recording(host, [gpu])


@case("fault-lmcache-low-hit-rate-evicting")
def _() -> Recording:
    name = "fault-lmcache-low-hit-rate-evicting"
    cache = LMCache("llm/vllm-0", requested_per_s=15_000.0, hit_rate=0.08, evictions_per_s=40.0, max_cpu_gib=20.0, usage_fraction=0.99)
    return Recording(Host("gpu-h100-q"), [serving_gpu(name, H100, 0, 0.90, sm=75.0)], caches=[cache])


@case("fault-xid31-mmu-fault-app")
def _() -> Recording:
    name = "fault-xid31-mmu-fault-app"
    gpus = [serving_gpu(name, H100, i, 0.90, sm=70.0) for i in range(2)]
    gpus[1].xids = {12: (31,)}
    return Recording(Host("gpu-h100-r"), gpus)


# --- writing --------------------------------------------------------------------------------


def build_all(directory: Path = CASES_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in sorted(CASES.items()):
        path = directory / f"{name}.jsonl"
        write_recording(path, make().build())
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed recording differs from what the builder makes")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            stale = [p.name for p in build_all(Path(tmp)) if not (CASES_DIR / p.name).exists() or (CASES_DIR / p.name).read_bytes() != p.read_bytes()]
        if stale:
            print("stale recordings (run python -m tests.evaluation.build_cases):", *stale, sep="\n  ")
            return 1
        print(f"{len(CASES)} recordings up to date")
        return 0
    for path in build_all():
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
