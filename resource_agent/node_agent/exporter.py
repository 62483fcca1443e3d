"""Prometheus exposition of the latest sample (a custom prometheus_client collector).

Names follow Prometheus conventions: namespace `resource_agent_`, base units
in the name (_bytes, _seconds, _celsius, _watts, _hertz, _ratio for 0-1),
counters end in _total. Every metric is listed in docs/metrics.md.

No series carries a label Prometheus or the Prometheus Operator sets on the
target (`RESERVED_TARGET_LABELS`): a scrape would rename it to `exported_<name>`
(or, with honor_labels, overwrite the target's), and per-instance series would blend.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as PrometheusCollector

from resource_agent.api.samples import (
    CollectorState,
    GpuDeviceSample,
    IrqPressure,
    LMCacheInstanceSample,
    PressureResource,
    Sample,
    ServingInstanceSample,
    ServingSample,
    SystemSample,
)
from resource_agent.node_agent.nvml_names import CLOCK_EVENT_REASON_NAMES
from resource_agent.node_agent.serving_summary import ServingReducer

NAMESPACE = "resource_agent"
# Target labels: Prometheus's own (job, instance), what Kubernetes service discovery and
# the Prometheus Operator attach (namespace, pod, container, service, endpoint), and `node`,
# which the chart's ServiceMonitor/PodMonitor set from the agent pod's node.
RESERVED_TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "container", "service", "endpoint", "node"})
MHZ = 1e6
PERCENT = 100.0


class _Families:
    """Builds metric families on demand; each name is created once with its HELP text."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
        return self._get(GaugeMetricFamily, name, documentation, labels)  # type: ignore[return-value]  # _get makes each name with the kind it is asked for

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> CounterMetricFamily:
        return self._get(CounterMetricFamily, name, documentation, labels)  # type: ignore[return-value]  # _get makes each name with the kind it is asked for

    def _get(self, kind: type, name: str, documentation: str, labels: Sequence[str]) -> Metric:
        full = f"{NAMESPACE}_{name}"
        family = self._families.get(full)
        if family is None:
            family = self._families[full] = kind(full, documentation, labels=list(labels))
        return family

    def set(self, name: str, documentation: str, value: float | int | bool | None, labels: dict[str, str] | None = None) -> None:
        """Add a gauge value; skipped when the value is unknown."""
        if value is None:
            return
        labels = labels or {}
        self.gauge(name, documentation, list(labels)).add_metric(list(labels.values()), float(value))

    def count(self, name: str, documentation: str, value: float | int | None, labels: dict[str, str] | None = None) -> None:
        """Add a counter value (name without _total); skipped when unknown."""
        if value is None:
            return
        labels = labels or {}
        self.counter(name, documentation, list(labels)).add_metric(list(labels.values()), float(value))

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())


def _ratio(percent: float | None) -> float | None:
    return None if percent is None else percent / PERCENT


def _hertz(mhz: float | None) -> float | None:
    return None if mhz is None else mhz * MHZ


class SampleExporter(PrometheusCollector):
    """Exposes the most recent sample; counts XID events across samples."""

    def __init__(self) -> None:
        self._latest: Sample | None = None
        self._xids: Counter[tuple[str, str, str]] = Counter()  # (gpu index, uuid, xid) -> events since start
        self._lock = threading.Lock()
        self._serving: dict[tuple[str, str, str], tuple[float, ServingInstanceSample]] = {}  # engine key -> previous scrape
        self._serving_derived: list[tuple[dict[str, str], dict[str, float | None]]] = []

    def observe(self, sample: Sample) -> None:
        with self._lock:
            self._latest = sample
            self._serving_derived, self._serving = _serving_intervals(sample, self._serving)
            for device in sample.gpu.devices if sample.gpu else []:
                for event in device.xid_events:
                    self._xids[(str(device.index), device.uuid, str(event.xid))] += 1

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            sample, xids, serving_derived = self._latest, dict(self._xids), list(self._serving_derived)
        families = _Families()
        if sample is not None:
            if sample.system is not None:
                _system(families, sample.system)
            if sample.pressure is not None:
                for resource in ("cpu", "memory", "io", "irq"):
                    _pressure(families, resource, getattr(sample.pressure, resource))
            if sample.gpu is not None:
                families.set("gpu_devices", "Number of GPUs NVML reports.", len(sample.gpu.devices))
                families.set("gpu_pci_devices", "NVIDIA GPUs on the PCI bus (what NVML should report).", sample.gpu.pci_gpu_count)
                for lost in sample.gpu.lost:
                    labels = {"gpu": "" if lost.index is None else str(lost.index), "uuid": lost.uuid or "", "pci_bus_id": lost.pci_bus_id or ""}
                    families.set("gpu_lost", "1 for each GPU NVML lost or does not list although the PCI bus does.", 1, labels)
                for device in sample.gpu.devices:
                    _gpu(families, device, sample.gpu.driver_version)
            for (index, uuid, xid), events in sorted(xids.items()):
                families.count("gpu_xid_errors", "XID errors seen since the agent started.", events, {"gpu": index, "uuid": uuid, "xid": xid})
            for instance in sample.lmcache.instances if sample.lmcache else []:
                _lmcache(families, instance)
            for engine in sample.serving.instances if sample.serving else []:
                _serving(families, engine)
            for labels, derived in serving_derived:
                _serving_derived_figures(families, labels, derived)
            for status in sample.collectors:
                labels = {"collector": status.name}
                families.set("collector_duration_seconds", "Time a collector took in the last sample.", status.duration_seconds, labels)
                families.set("collector_success", "1 when the collector did not fail (it may have had nothing to collect).", status.state is not CollectorState.FAILED, labels)
                families.set("collector_available", "1 when the collector found something to collect (e.g. NVML, PSI).", status.state is CollectorState.OK, labels)
            families.set("last_sample_timestamp_seconds", "Unix time of the last sample.", sample.timestamp)
        return list(families)


def _system(families: _Families, system: SystemSample) -> None:
    families.set("node_info", "Host identity; always 1.", 1, {"hostname": system.hostname, "boot_id": system.boot_id or ""})
    families.set("uptime_seconds", "Seconds since the host booted.", system.uptime_seconds)
    cpu = system.cpu
    families.set("cpu_logical_cores", "Logical CPU cores.", cpu.logical_cores)
    families.set("cpu_utilization_ratio", "Busy share of all cores since the previous sample (0-1).", _ratio(cpu.utilization_percent))
    for core, percent in enumerate(cpu.per_core_utilization_percent):
        families.set("cpu_core_utilization_ratio", "Busy share of one core since the previous sample (0-1).", _ratio(percent), {"core": str(core)})
    families.set("cpu_iowait_ratio", "Share of CPU time waiting on I/O since the previous sample (0-1).", _ratio(cpu.iowait_percent))
    families.set("cpu_steal_ratio", "Share of CPU time stolen by the hypervisor since the previous sample (0-1).", _ratio(cpu.steal_percent))
    families.set("cpu_frequency_hertz", "Mean current CPU core frequency.", _hertz(cpu.frequency_mhz))
    families.set("load1", "1-minute load average.", cpu.load1)
    families.set("load5", "5-minute load average.", cpu.load5)
    families.set("load15", "15-minute load average.", cpu.load15)
    families.set("context_switches_per_second", "Context switches per second since the previous sample.", cpu.context_switches_per_second)
    memory = system.memory
    families.set("memory_total_bytes", "Total memory.", memory.total_bytes)
    families.set("memory_available_bytes", "Memory available for new work without swapping.", memory.available_bytes)
    families.set("memory_used_bytes", "Memory in use.", memory.used_bytes)
    families.set("memory_cached_bytes", "Page cache.", memory.cached_bytes)
    families.set("memory_buffers_bytes", "Buffer memory.", memory.buffers_bytes)
    families.set("swap_total_bytes", "Total swap.", memory.swap_total_bytes)
    families.set("swap_used_bytes", "Swap in use.", memory.swap_used_bytes)
    families.set("swap_in_bytes_per_second", "Bytes swapped in per second since the previous sample.", memory.swap_in_bytes_per_second)
    families.set("swap_out_bytes_per_second", "Bytes swapped out per second since the previous sample.", memory.swap_out_bytes_per_second)
    for disk in system.disks:
        labels = {"device": disk.device, "mountpoint": disk.mountpoint or ""}
        families.set("disk_size_bytes", "Size of the filesystem on the disk.", disk.total_bytes, labels)
        families.set("disk_used_bytes", "Used space of the filesystem on the disk.", disk.used_bytes, labels)
        families.set("disk_read_bytes_per_second", "Bytes read per second.", disk.read_bytes_per_second, labels)
        families.set("disk_written_bytes_per_second", "Bytes written per second.", disk.write_bytes_per_second, labels)
        families.set("disk_reads_per_second", "Read operations per second.", disk.read_iops, labels)
        families.set("disk_writes_per_second", "Write operations per second.", disk.write_iops, labels)
        families.set("disk_busy_ratio", "Share of time the disk was busy (0-1).", _ratio(disk.busy_percent), labels)
        families.set("disk_queue_depth", "Mean I/O requests in flight since the previous sample (iostat aqu-sz).", disk.queue_depth, labels)
        families.set("disk_await_seconds", "Mean time per completed read or write since the previous sample (iostat await).", disk.await_seconds, labels)
    for network in system.networks:
        labels = {"interface": network.interface}
        families.set("network_receive_bytes_per_second", "Bytes received per second.", network.rx_bytes_per_second, labels)
        families.set("network_transmit_bytes_per_second", "Bytes sent per second.", network.tx_bytes_per_second, labels)
        families.set("network_receive_errors_per_second", "Receive errors per second.", network.rx_errors_per_second, labels)
        families.set("network_transmit_errors_per_second", "Transmit errors per second.", network.tx_errors_per_second, labels)
        families.set("network_receive_drops_per_second", "Received packets dropped per second.", network.rx_drops_per_second, labels)
        families.set("network_transmit_drops_per_second", "Transmitted packets dropped per second.", network.tx_drops_per_second, labels)


def _pressure(families: _Families, resource: str, pressure: PressureResource | IrqPressure | None) -> None:
    if pressure is None:
        return
    for kind, line in (("some", getattr(pressure, "some", None)), ("full", pressure.full)):  # irq has only "full"
        if line is None:
            continue
        for window, value in (("10s", line.avg10), ("60s", line.avg60), ("300s", line.avg300)):
            labels = {"resource": resource, "kind": kind, "window": window}
            families.set("pressure_stall_ratio", "PSI: share of wall time tasks were stalled, averaged over the window (0-1).", _ratio(value), labels)
        families.count("pressure_stalled_seconds", "PSI: total time tasks were stalled.", line.total_microseconds / 1e6, {"resource": resource, "kind": kind})


def _gpu(families: _Families, device: GpuDeviceSample, driver: str | None) -> None:
    gpu = {"gpu": str(device.index), "uuid": device.uuid}
    info = gpu | {"name": device.name, "pci_bus_id": device.pci_bus_id or "", "driver_version": driver or "", "mig_mode": str(bool(device.mig_mode)).lower()}
    families.set("gpu_info", "GPU identity; always 1.", 1, info)
    families.set("gpu_utilization_ratio", "Share of time a kernel ran on the GPU (0-1).", _ratio(device.sm_utilization_percent), gpu)
    families.set("gpu_memory_utilization_ratio", "Share of time device memory was read or written (0-1).", _ratio(device.memory_utilization_percent), gpu)
    families.set("gpu_memory_used_bytes", "GPU memory in use.", device.memory_used_bytes, gpu)
    families.set("gpu_memory_total_bytes", "GPU memory in total.", device.memory_total_bytes, gpu)
    families.set("gpu_memory_reserved_bytes", "GPU memory reserved by the driver and firmware.", device.memory_reserved_bytes, gpu)
    families.set("gpu_temperature_celsius", "GPU core temperature.", device.temperature_celsius, gpu)
    families.set("gpu_slowdown_temperature_celsius", "Temperature at which the GPU slows down.", device.slowdown_temperature_celsius, gpu)
    families.set("gpu_shutdown_temperature_celsius", "Temperature at which the GPU shuts down.", device.shutdown_temperature_celsius, gpu)
    families.set("gpu_power_watts", "GPU power draw.", device.power_watts, gpu)
    families.set("gpu_power_limit_watts", "Enforced GPU power limit.", device.power_limit_watts, gpu)
    families.set("gpu_power_default_limit_watts", "Default GPU power limit.", device.power_default_limit_watts, gpu)
    families.set("gpu_power_limit_min_watts", "Lowest power limit the GPU accepts.", device.power_limit_min_watts, gpu)
    families.set("gpu_power_limit_max_watts", "Highest power limit the GPU accepts.", device.power_limit_max_watts, gpu)
    families.set("gpu_sm_clock_hertz", "SM clock.", _hertz(device.sm_clock_mhz), gpu)
    families.set("gpu_sm_clock_max_hertz", "Maximum SM clock.", _hertz(device.sm_clock_max_mhz), gpu)
    families.set("gpu_memory_clock_hertz", "Memory clock.", _hertz(device.memory_clock_mhz), gpu)
    families.set("gpu_memory_clock_max_hertz", "Maximum memory clock.", _hertz(device.memory_clock_max_mhz), gpu)
    active = set(device.clock_event_reasons)
    for reason in sorted(set(CLOCK_EVENT_REASON_NAMES) | active):
        families.set("gpu_clock_event_reason_active", "1 when the clock event (throttle) reason is active.", reason in active, gpu | {"reason": reason})
    for policy, seconds in sorted(device.violation_seconds.items()):
        families.count("gpu_violation_seconds", "Time the GPU was held below its clocks by the policy.", seconds, gpu | {"policy": policy})
    for error, counter, value in (
        ("corrected", "volatile", device.ecc_corrected_volatile),
        ("uncorrected", "volatile", device.ecc_uncorrected_volatile),
        ("corrected", "aggregate", device.ecc_corrected_aggregate),
        ("uncorrected", "aggregate", device.ecc_uncorrected_aggregate),
    ):
        families.count("gpu_ecc_errors", "ECC memory errors (volatile: since driver load; aggregate: lifetime).", value, gpu | {"error": error, "counter": counter})
    families.set("gpu_retired_pages", "Retired memory pages by cause.", device.retired_pages_single_bit, gpu | {"cause": "multiple_single_bit"})
    families.set("gpu_retired_pages", "Retired memory pages by cause.", device.retired_pages_double_bit, gpu | {"cause": "double_bit"})
    families.set("gpu_retired_pages_pending", "1 when a page retirement waits for a reset.", device.retired_pages_pending, gpu)
    families.set("gpu_remapped_rows", "Remapped memory rows by error kind.", device.remapped_rows_correctable, gpu | {"error": "correctable"})
    families.set("gpu_remapped_rows", "Remapped memory rows by error kind.", device.remapped_rows_uncorrectable, gpu | {"error": "uncorrectable"})
    families.set("gpu_remapped_rows_pending", "1 when a row remap waits for a reset.", device.remapped_rows_pending, gpu)
    families.set("gpu_remapped_rows_failure", "1 when a row remap failed.", device.remapped_rows_failure, gpu)
    families.set("gpu_pcie_link_generation", "Current PCIe link generation.", device.pcie_link_generation, gpu)
    families.set("gpu_pcie_link_generation_max", "Maximum PCIe link generation.", device.pcie_link_generation_max, gpu)
    families.set("gpu_pcie_link_width", "Current PCIe link width (lanes).", device.pcie_link_width, gpu)
    families.set("gpu_pcie_link_width_max", "Maximum PCIe link width (lanes).", device.pcie_link_width_max, gpu)
    families.set("gpu_pcie_receive_bytes_per_second", "PCIe bytes received by the GPU per second.", device.pcie_rx_bytes_per_second, gpu)
    families.set("gpu_pcie_transmit_bytes_per_second", "PCIe bytes sent by the GPU per second.", device.pcie_tx_bytes_per_second, gpu)
    families.set("gpu_fan_speed_ratio", "Fan speed as a share of its maximum (0-1).", _ratio(device.fan_speed_percent), gpu)
    families.set("gpu_performance_state", "Performance state (0 = P0, fastest .. 15).", device.performance_state, gpu)
    families.set("gpu_processes", "Compute processes on the GPU.", len(device.processes), gpu)
    for process in device.processes:
        labels = gpu | {"pid": str(process.pid), "pod_uid": process.pod_uid or "", "container_id": process.container_id or ""}
        families.set("gpu_process_memory_used_bytes", "GPU memory used by a compute process.", process.used_memory_bytes, labels)
    if device.recovery_action is not None:
        families.set("gpu_recovery_action_info", "The recovery NVML recommends for the GPU; always 1.", 1, gpu | {"action": device.recovery_action})


_LMCACHE_COUNTERS = (
    ("lmcache_requested_tokens", "requested_tokens_total", "Tokens requested from the cache."),
    ("lmcache_hit_tokens", "hit_tokens_total", "Tokens served from the cache."),
    ("lmcache_lookup_tokens", "lookup_tokens_total", "Tokens looked up."),
    ("lmcache_lookup_hit_tokens", "lookup_hits_total", "Tokens found by lookups."),
    ("lmcache_stored_tokens", "stored_tokens_total", "Tokens stored."),
    ("lmcache_evictions", "evictions_total", "Cache evictions."),
    ("lmcache_remote_errors", "remote_errors_total", "Errors talking to the remote backend."),
    ("lmcache_retrieve_requests", "retrieve_requests_total", "Retrieve requests."),
    ("lmcache_store_requests", "store_requests_total", "Store requests."),
    ("lmcache_remote_get_failures", "remote_get_failures_total", "Blocking gets from the remote backend that failed or timed out."),
    ("lmcache_remote_put_failures", "remote_put_failures_total", "Puts to the remote backend that failed."),
    ("lmcache_remote_ping_errors", "remote_ping_errors_total", "Failed pings of the remote backend."),
    ("lmcache_remote_pings", "remote_ping_successes_total", "Successful pings of the remote backend."),
)
_LMCACHE_GAUGES = (
    ("lmcache_local_cpu_usage_bytes", "local_cpu_usage_bytes", "Local CPU (host memory) cache in use."),
    ("lmcache_local_disk_usage_bytes", "local_disk_usage_bytes", "Local disk cache in use."),
    ("lmcache_remote_usage_bytes", "remote_usage_bytes", "Remote cache in use."),
    ("lmcache_max_local_cpu_size_bytes", "max_local_cpu_size_bytes", "Configured local CPU cache size."),
    ("lmcache_max_local_disk_size_bytes", "max_local_disk_size_bytes", "Configured local disk cache size."),
    ("lmcache_retrieve_latency_seconds", "retrieve_latency_seconds", "Mean retrieve latency since the previous sample."),
    ("lmcache_store_latency_seconds", "store_latency_seconds", "Mean store latency since the previous sample."),
    ("lmcache_retrieve_throughput_tokens_per_second", "retrieve_throughput_tokens_per_second", "Retrieve throughput."),
    ("lmcache_remote_ping_seconds", "remote_ping_seconds", "Round trip to the remote backend."),
    ("lmcache_blocking_timeout_seconds", "blocking_timeout_seconds", "Configured timeout of a blocking remote get (blocking_timeout_secs)."),
    ("lmcache_worker_ranks", "worker_ranks", "Worker processes of the instance."),
)


def _lmcache(families: _Families, instance: LMCacheInstanceSample) -> None:
    labels = {"lmcache_instance": instance.instance}  # not "instance": Prometheus owns that target label
    families.set("lmcache_up", "1 when the LMCache instance answered.", instance.reachable, labels)
    for name, field, documentation in _LMCACHE_COUNTERS:
        families.count(name, documentation, getattr(instance, field), labels)
    for name, field, documentation in _LMCACHE_GAUGES:
        families.set(name, documentation, getattr(instance, field), labels)


# --- serving engines ------------------------------------------------------------------
# Labels: serving_instance (endpoint id), serving_engine (vllm | sglang), model_name, engine_index
# (vLLM's `engine`); never `instance` or `job`, which Prometheus sets on the agent's own target.

_SERVING_GAUGES = (
    ("serving_requests_running", "requests_running", "Requests in the engine's running batch."),
    ("serving_requests_waiting", "requests_waiting", "Requests queued in the engine."),
)
_SERVING_COUNTERS = (
    ("serving_preemptions", "preemptions_total", "Requests the engine preempted (vLLM) or retracted (SGLang)."),
    ("serving_prompt_tokens", "prompt_tokens_total", "Prompt tokens the engine processed."),
    ("serving_generation_tokens", "generation_tokens_total", "Tokens the engine generated."),
    ("serving_requests_finished", "requests_finished_total", "Requests the engine finished."),
)
_LATENCIES = {
    "ttft": "ttft_seconds",
    "inter_token": "inter_token_latency_seconds",
    "queue": "queue_time_seconds",
    "e2e": "e2e_latency_seconds",
}


def _serving_labels(instance: ServingInstanceSample) -> dict[str, str]:
    return {
        "serving_instance": instance.instance,
        "serving_engine": instance.engine,
        "model_name": instance.model_name or "",
        "engine_index": instance.engine_index or "",
    }


def _serving(families: _Families, instance: ServingInstanceSample) -> None:
    labels = _serving_labels(instance)
    families.set("serving_up", "1 when the serving engine's /metrics answered.", instance.reachable, labels)
    for name, field, documentation in _SERVING_GAUGES:
        families.set(name, documentation, getattr(instance, field), labels)
    families.set("serving_kv_cache_usage_ratio", "KV-cache use of the engine, 0-1.", _ratio(instance.kv_cache_usage_percent), labels)
    for name, field, documentation in _SERVING_COUNTERS:
        families.count(name, documentation, getattr(instance, field), labels)


def _serving_intervals(
    sample: Sample, previous: dict[tuple[str, str, str], tuple[float, ServingInstanceSample]]
) -> tuple[list[tuple[dict[str, str], dict[str, float | None]]], dict[tuple[str, str, str], tuple[float, ServingInstanceSample]]]:
    """Figures over the interval since the previous sample, per engine: rates, hit ratio, latency quantiles."""
    derived, latest = [], {}
    for instance in sample.serving.instances if sample.serving else []:
        if not instance.reachable:
            continue
        key = (instance.instance, instance.model_name or "", instance.engine_index or "")
        latest[key] = (sample.timestamp, instance)
        before = previous.get(key)
        if before is None or sample.timestamp <= before[0]:
            continue
        reducer = ServingReducer()
        reducer.add(before[0], ServingSample(instances=[before[1]]))
        reducer.add(sample.timestamp, ServingSample(instances=[instance]))
        summary = next(iter(reducer.instances()))
        figures: dict[str, float | None] = {
            "prompt_tokens_per_second": summary.prompt_tokens_per_second,
            "generation_tokens_per_second": summary.generation_tokens_per_second,
            "requests_per_second": summary.requests_per_second,
            "prefix_cache_hit_ratio": summary.prefix_cache_hit_rate,
        }
        for latency, field in _LATENCIES.items():
            histogram = getattr(summary, field)
            figures[f"{latency}:0.5"] = histogram.p50 if histogram else None
            figures[f"{latency}:0.95"] = histogram.p95 if histogram else None
        derived.append((_serving_labels(instance), figures))
    return derived, latest


def _serving_derived_figures(families: _Families, labels: dict[str, str], figures: dict[str, float | None]) -> None:
    families.set("serving_prompt_tokens_per_second", "Prompt tokens per second since the previous sample.", figures["prompt_tokens_per_second"], labels)
    families.set("serving_generation_tokens_per_second", "Generated tokens per second since the previous sample.", figures["generation_tokens_per_second"], labels)
    families.set("serving_requests_per_second", "Finished requests per second since the previous sample.", figures["requests_per_second"], labels)
    families.set("serving_prefix_cache_hit_ratio", "Prefix-cache hits / queries since the previous sample.", figures["prefix_cache_hit_ratio"], labels)
    for latency in _LATENCIES:
        for quantile in ("0.5", "0.95"):
            families.set(
                "serving_latency_seconds",
                "Latency quantile since the previous sample: histogram_quantile of the bucket increases (latency: ttft, inter_token, queue, e2e).",
                figures[f"{latency}:{quantile}"],
                {**labels, "latency": latency, "quantile": quantile},
            )


def build_registry(exporter: SampleExporter) -> CollectorRegistry:
    """A registry with the sample exporter and the agent's own process metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(exporter)
    ProcessCollector(registry=registry)
    return registry
