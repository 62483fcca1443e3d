"""The window summary: what a node agent reports and what the analysis reads.

`NodeSummary` is the body of a ResourceReport's status and the input of the
analysis engine. It is made by the window from a run of `Sample`s (see
`resource_agent.node_agent.window`) and holds, per metric, a `Stat` over the
window instead of the raw series (Prometheus keeps the series).
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from resource_agent.api.base import ApiModel
from resource_agent.api.samples import CollectorStatus, GpuAllocation, GpuProcess

NAN = math.nan


class Stat(ApiModel):
    """Window statistics of one metric.

    A window summary has every member. A stored ResourceReport keeps only the members something reads
    (`resource_agent.api.stored.KEPT_STATS`): the others are absent there and read as NaN here (no
    comparison with NaN holds; NaN members are left out when dumped)."""

    mean: float = NAN
    """Mean over the window."""
    p95: float = NAN
    """95th percentile over the window."""
    max: float = NAN
    """Highest value in the window."""
    min: float = NAN
    """Lowest value in the window."""
    last: float = NAN
    """Value of the most recent sample."""

    # no return annotation: pydantic would make it the serialization schema (and the CRD's) instead of the fields'
    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        dumped: dict[str, Any] = handler(self)
        return {key: value for key, value in dumped.items() if not (isinstance(value, float) and math.isnan(value))}


class Window(ApiModel):
    start: float
    """Unix time (seconds) of the first sample in the window."""
    end: float
    """Unix time (seconds) of the last sample in the window."""
    samples: int
    """Number of samples the window summarises."""
    interval_seconds: float
    """Seconds between samples (the agent's sample interval)."""


# --- inventory -------------------------------------------------------------------


class GpuInventory(ApiModel):
    index: int
    """NVML index of the GPU on the node."""
    uuid: str
    """GPU UUID (GPU-...), stable across reboots."""
    name: str
    """Product name as NVML reports it, e.g. NVIDIA H100 80GB HBM3."""
    pci_bus_id: str | None = None
    """PCI bus id (domain:bus:device.function)."""
    mig_mode: bool | None = None
    """True when MIG mode is enabled on the GPU."""
    memory_total_bytes: int | None = None
    """Device memory in total, in bytes."""


class NodeInventory(ApiModel):
    hostname: str
    """Host name the agent runs on."""
    boot_id: str | None = None
    """Kernel boot id (/proc/sys/kernel/random/boot_id); changes on every reboot."""
    cpu_model: str | None = None
    """CPU model name from /proc/cpuinfo."""
    cpu_cores: int
    """Logical CPU cores."""
    memory_total_bytes: int
    """Physical memory in total, in bytes."""
    swap_total_bytes: int = 0
    """Swap space in total, in bytes (0 when there is none)."""
    gpus: list[GpuInventory] = Field(default_factory=list)
    """GPUs NVML lists on the node."""
    driver_version: str | None = None
    """NVIDIA driver version."""
    cuda_driver_version: str | None = None
    """Highest CUDA version the driver supports."""


# --- host ----------------------------------------------------------------------


class CpuSummary(ApiModel):
    utilization_percent: Stat | None = None
    """Busy share of all cores, in percent."""
    busiest_core_utilization_percent: Stat | None = None
    """Per sample, the busy share of the busiest core, in percent."""
    iowait_percent: Stat | None = None
    """Share of CPU time waiting on I/O, in percent."""
    steal_percent: Stat | None = None
    """Share of CPU time stolen by the hypervisor, in percent."""
    frequency_mhz: Stat | None = None
    """Mean current core frequency, in MHz."""
    load1: Stat
    """1-minute load average."""
    context_switches_per_second: Stat | None = None
    """Context switches per second."""


class MemorySummary(ApiModel):
    total_bytes: int
    """Physical memory in total, in bytes."""
    available_bytes: Stat
    """Memory available for new work without swapping, in bytes."""
    used_bytes: Stat | None = None
    """Memory in use, in bytes."""
    cached_bytes: Stat | None = None
    """Page cache, in bytes."""
    buffers_bytes: Stat | None = None
    """Buffer memory, in bytes."""
    available_percent: Stat
    """Available memory as a share of the total, in percent."""
    swap_total_bytes: int = 0
    """Swap space in total, in bytes."""
    swap_used_bytes: Stat | None = None
    """Swap in use, in bytes."""
    swap_in_bytes_per_second: Stat | None = None
    """Bytes swapped in per second."""
    swap_out_bytes_per_second: Stat | None = None
    """Bytes swapped out per second."""


class DiskSummary(ApiModel):
    device: str
    """Block device name, e.g. nvme0n1."""
    mountpoint: str | None = None
    """Where the device's filesystem is mounted, when it is."""
    total_bytes: int | None = None
    """Size of the filesystem, in bytes."""
    used_percent: Stat | None = None
    """Used space of the filesystem, in percent."""
    read_bytes_per_second: Stat | None = None
    """Bytes read per second."""
    write_bytes_per_second: Stat | None = None
    """Bytes written per second."""
    read_iops: Stat | None = None
    """Read operations per second."""
    write_iops: Stat | None = None
    """Write operations per second."""
    busy_percent: Stat | None = None
    """Share of time the device was busy, in percent."""
    queue_depth: Stat | None = None
    """Mean I/O requests in flight per sample interval (iostat aqu-sz)."""
    await_seconds: Stat | None = None
    """Mean time per completed read or write (iostat await), over the samples that completed any."""


class NetworkSummary(ApiModel):
    interface: str
    """Network interface name."""
    rx_bytes_per_second: Stat | None = None
    """Bytes received per second."""
    tx_bytes_per_second: Stat | None = None
    """Bytes sent per second."""
    rx_errors_per_second: Stat | None = None
    """Receive errors per second."""
    tx_errors_per_second: Stat | None = None
    """Transmit errors per second."""
    rx_drops_per_second: Stat | None = None
    """Received packets dropped per second."""
    tx_drops_per_second: Stat | None = None
    """Transmitted packets dropped per second."""


class PressureLineSummary(ApiModel):
    avg10: Stat
    """PSI 10-second average share of stalled time, in percent."""
    avg60: Stat | None = None
    """PSI 60-second average share of stalled time, in percent."""
    stalled_seconds: float | None = None
    """Seconds tasks were stalled during the window (increase of the PSI total counter)."""


class PressureResourceSummary(ApiModel):
    some: PressureLineSummary
    """Share of time at least one task was stalled on the resource."""
    full: PressureLineSummary | None = None
    """Share of time all non-idle tasks were stalled on the resource."""


class IrqPressureSummary(ApiModel):
    """IRQ pressure has only a "full" line (see `IrqPressure`)."""

    full: PressureLineSummary
    """Share of time all non-idle tasks were stalled on interrupt handling."""


class PressureSummary(ApiModel):
    available: bool
    """True when the kernel exposes PSI (/proc/pressure)."""
    reason: str | None = None
    """Why PSI is unavailable, when it is."""
    cpu: PressureResourceSummary | None = None
    """CPU pressure."""
    memory: PressureResourceSummary | None = None
    """Memory pressure."""
    io: PressureResourceSummary | None = None
    """I/O pressure."""
    irq: IrqPressureSummary | None = None
    """Interrupt pressure (kernels 6.1 and later)."""


# --- gpu -------------------------------------------------------------------------


class EccSummary(ApiModel):
    corrected_volatile: int | None = None
    """Corrected ECC errors since the driver loaded."""
    uncorrected_volatile: int | None = None
    """Uncorrected ECC errors since the driver loaded."""
    corrected_aggregate: int | None = None
    """Corrected ECC errors over the GPU's lifetime."""
    uncorrected_aggregate: int | None = None
    """Uncorrected ECC errors over the GPU's lifetime."""
    uncorrected_increase: int = 0
    """New uncorrected ECC errors within the window."""
    retired_pages_single_bit: int | None = None
    """Pages retired after multiple single-bit errors."""
    retired_pages_double_bit: int | None = None
    """Pages retired after a double-bit error."""
    retired_pages_pending: bool | None = None
    """True when a page retirement waits for a GPU reset."""
    remapped_rows_correctable: int | None = None
    """Rows remapped after correctable errors."""
    remapped_rows_uncorrectable: int | None = None
    """Rows remapped after uncorrectable errors."""
    remapped_rows_pending: bool | None = None
    """True when a row remap waits for a GPU reset."""
    remapped_rows_failure: bool | None = None
    """True when a row remap failed (the GPU needs service)."""


class PcieSummary(ApiModel):
    link_generation: int | None = None
    """Current PCIe link generation."""
    link_generation_max: int | None = None
    """Highest PCIe link generation the GPU and slot support."""
    link_width: int | None = None
    """Current PCIe link width, in lanes."""
    link_width_max: int | None = None
    """Highest PCIe link width, in lanes."""
    rx_bytes_per_second: Stat | None = None
    """PCIe bytes received by the GPU per second."""
    tx_bytes_per_second: Stat | None = None
    """PCIe bytes sent by the GPU per second."""


class GpuFaultKind(StrEnum):
    """Hardware faults that stand until the GPU is reset or the node reboots (not window events)."""

    ECC_UNCORRECTED = "ecc-uncorrected"  # volatile uncorrected ECC count above zero on this boot
    ROW_REMAP_PENDING = "row-remap-pending"
    ROW_REMAP_FAILURE = "row-remap-failure"
    RECOVERY_ACTION = "recovery-action"  # NVML recovery action other than none
    FATAL_XID = "fatal-xid"  # a fatal XID since the last GPU reset or boot
    LOST = "lost"  # NVML lost the GPU, or the PCI bus lists it and NVML does not


class GpuFault(ApiModel):
    """One standing hardware fault, kept per boot id and GPU uuid until it is fixed."""

    kind: GpuFaultKind
    """What kind of standing hardware fault this is."""
    since: float
    """Unix time (seconds) it was first seen on this boot."""
    detail: str
    """What was seen, e.g. uncorrected volatile ECC 2, XID 79, recovery action: reset."""
    xid: int | None = None
    """The XID code, for fatal-xid faults."""


class GpuSummary(ApiModel):
    index: int
    """NVML index of the GPU on the node."""
    uuid: str
    """GPU UUID (GPU-...)."""
    name: str
    """Product name as NVML reports it."""
    pci_bus_id: str | None = None
    """PCI bus id (domain:bus:device.function)."""
    mig_mode: bool | None = None
    """True when MIG mode is enabled."""
    sm_utilization_percent: Stat | None = None
    """Share of time a kernel ran on the GPU, in percent."""
    memory_utilization_percent: Stat | None = None
    """Share of time device memory was read or written, in percent."""
    memory_used_bytes: Stat | None = None
    """Device memory in use, in bytes."""
    memory_used_percent: Stat | None = None
    """Device memory in use, in percent of the total."""
    memory_total_bytes: int | None = None
    """Device memory in total, in bytes."""
    memory_reserved_bytes: int | None = None
    """Device memory reserved by the driver and firmware, in bytes."""
    temperature_celsius: Stat | None = None
    """GPU core temperature, in degrees Celsius."""
    slowdown_temperature_celsius: float | None = None
    """Temperature at which the GPU slows down."""
    shutdown_temperature_celsius: float | None = None
    """Temperature at which the GPU shuts down."""
    power_watts: Stat | None = None
    """Power draw, in watts."""
    power_limit_watts: float | None = None
    """Enforced power limit, in watts."""
    power_default_limit_watts: float | None = None
    """Default power limit, in watts."""
    power_limit_max_watts: float | None = None
    """Highest power limit the GPU accepts, in watts."""
    sm_clock_mhz: Stat | None = None
    """SM clock, in MHz."""
    sm_clock_busy_mhz: Stat | None = None
    """SM clock over busy samples only (SM utilisation above the busy floor), in MHz."""
    sm_clock_max_mhz: float | None = None
    """Highest SM clock, in MHz."""
    memory_clock_mhz: Stat | None = None
    """Memory clock, in MHz."""
    memory_clock_max_mhz: float | None = None
    """Highest memory clock, in MHz."""
    clock_event_reasons: dict[str, float] = Field(default_factory=dict)
    """Clock event (throttle) reason -> share of samples it was active (0-1)."""
    violation_seconds: dict[str, float] = Field(default_factory=dict)
    """Violation policy -> seconds the GPU was held below its clocks in the window."""
    ecc: EccSummary = Field(default_factory=EccSummary)
    """ECC errors, retired pages and remapped rows."""
    pcie: PcieSummary = Field(default_factory=PcieSummary)
    """PCIe link state and throughput."""
    fan_speed_percent: Stat | None = None
    """Fan speed, in percent of its maximum."""
    performance_state: int | None = None
    """Performance state of the last sample (0 = P0, fastest, to 15)."""
    processes: list[GpuProcess] = Field(default_factory=list)
    """Compute processes on the GPU in the last sample."""
    allocated_to: list[GpuAllocation] = Field(default_factory=list)
    """The pod(s) and container(s) holding the GPU in the last sample (kubelet pod-resources, else process cgroups)."""
    xid_counts: dict[str, int] = Field(default_factory=dict)
    """XID code -> events in the window."""
    recovery_action: str | None = None
    """The last recovery action other than none that NVML recommended."""
    unsupported: list[str] = Field(default_factory=list)
    """NVML queries this GPU does not support (their fields are left out)."""
    faults: list[GpuFault] = Field(default_factory=list)
    """Standing hardware faults; they persist across windows until the GPU is reset or the node reboots."""


class LostGpuSummary(ApiModel):
    index: int | None = None
    """NVML index of the GPU, when known."""
    uuid: str | None = None
    """GPU UUID, when known."""
    pci_bus_id: str | None = None
    """PCI bus id of the GPU, when known."""
    error: str
    """Why the GPU counts as lost."""
    since: float
    """Unix time (seconds) it was first seen lost on this boot."""


class GpuSharedFields(ApiModel):
    """Fields every GPU of a node has the same value of, named once in a stored ResourceReport.

    The agent's report leaves them out of each `devices` entry; reading the report copies them back
    into every device (and clears `shared`), so readers see whole devices."""

    name: str | None = None
    """Product name as NVML reports it."""
    mig_mode: bool | None = None
    """True when MIG mode is enabled."""
    memory_total_bytes: int | None = None
    """Device memory in total, in bytes."""
    slowdown_temperature_celsius: float | None = None
    """Temperature at which the GPUs slow down."""
    shutdown_temperature_celsius: float | None = None
    """Temperature at which the GPUs shut down."""
    power_limit_watts: float | None = None
    """Enforced power limit, in watts."""
    power_default_limit_watts: float | None = None
    """Default power limit, in watts."""
    sm_clock_max_mhz: float | None = None
    """Highest SM clock, in MHz."""
    ecc: EccSummary | None = None
    """ECC errors, retired pages and remapped rows."""
    pcie: PcieSummary | None = None
    """PCIe link state."""
    recovery_action: str | None = None
    """The last recovery action NVML recommended."""


class GpuSection(ApiModel):
    available: bool
    """True when NVML answered."""
    reason: str | None = None
    """Why the GPU collector is unavailable (e.g. no NVML), when it is."""
    devices: list[GpuSummary] = Field(default_factory=list)
    """One summary per GPU."""
    lost: list[LostGpuSummary] = Field(default_factory=list)
    """GPUs NVML lost or does not list; kept until the GPU is back or the node reboots."""
    expected_count: int | None = None
    """NVIDIA GPUs the PCI bus lists; more than NVML sees means a GPU is missing."""
    unattributed_xid_counts: dict[str, int] | None = None
    """XID code -> events in the window from a GPU NVML could not name (its UUID query failed on a handle not seen before)."""
    shared: GpuSharedFields | None = None
    """In a stored report: the fields every device has the same value of (left out of each device); read back into every device."""

    @model_validator(mode="before")
    @classmethod
    def _spread_shared(cls, data: Any) -> Any:
        """A stored report's `shared` fields, copied into every device (a device's own value wins)."""
        if not isinstance(data, dict) or not data.get("shared"):
            return data
        shared = data["shared"]
        shared = shared.model_dump(exclude_none=True) if isinstance(shared, BaseModel) else shared
        devices = [{**shared, **device} if isinstance(device, dict) else device for device in data.get("devices") or []]
        return {**data, "devices": devices, "shared": None}


# --- LMCache -----------------------------------------------------------------------


class LMCacheInstanceSummary(ApiModel):
    instance: str
    """Identity of the LMCache instance: <namespace>/<pod>, or its URL."""
    pod: str | None = None
    """Pod that runs the instance, when discovered from Kubernetes."""
    namespace: str | None = None
    """Namespace of that pod."""
    urls: list[str] = Field(default_factory=list)
    """URLs of the instance's internal API servers (one per worker)."""
    reachable: bool = True
    """True when the instance answered in the window."""
    error: str | None = None
    """The last error talking to the instance."""
    healthy: bool | None = None
    """The instance's own health answer, when it gives one."""
    model_name: str | None = None
    """The model the serving engine runs."""
    requested_tokens: float = 0.0
    """Tokens requested from the cache over the window (counter resets handled)."""
    hit_tokens: float = 0.0
    """Tokens served from the cache over the window."""
    lookup_tokens: float = 0.0
    """Tokens looked up over the window."""
    lookup_hits: float = 0.0
    """Tokens the lookups found over the window."""
    evictions: float = 0.0
    """Cache evictions over the window."""
    remote_errors: float = 0.0
    """Errors talking to the remote backend over the window."""
    # parts of remote_errors (increases over the window); None when LMCache does not expose the series
    # blocking gets that failed (timed out, raised or came back empty) since blocking_timeout_secs took its
    # latest value in the window: a change of the timeout is judged on what happened after it
    remote_get_failures: float | None = None
    """Blocking remote gets that failed, timed out or came back empty since blocking_timeout_secs took its latest value; absent when LMCache does not expose the series."""
    remote_put_failures: float | None = None
    """Puts to the remote backend that failed over the window."""
    remote_ping_errors: float | None = None
    """Failed pings of the remote backend over the window."""
    remote_ping_successes: float | None = None
    """Successful pings of the remote backend over the window."""
    # blocking remote gets and their total time (increases of lmcache:remote_time_to_get_sync's count and
    # sum), counted like remote_get_failures since blocking_timeout_secs took its latest value
    remote_gets: float | None = None
    """Blocking remote gets since blocking_timeout_secs took its latest value."""
    remote_get_time_seconds: float | None = None
    """Total time of those blocking remote gets, in seconds."""
    # load success: retrieved/requested tokens. vLLM's v1 adapter retrieves only tokens the lookup found,
    # so this is ~1 by construction and no hit rate; below 1 means found KV failed to load
    token_hit_rate: float | None = None
    """Load success: retrieved / requested tokens (about 1 by construction with vLLM's v1 adapter; below 1 means found KV failed to load); absent when nothing was requested."""
    lookup_hit_rate: float | None = None
    """The hit rate: lookup hits / lookup tokens (0-1)."""
    local_cpu_usage_bytes: Stat | None = None
    """Local CPU (host memory) cache in use, in bytes."""
    local_cpu_usage_percent: Stat | None = None
    """Local CPU cache in use, in percent of max_local_cpu_size."""
    local_disk_usage_bytes: Stat | None = None
    """Local disk cache in use, in bytes."""
    remote_usage_bytes: Stat | None = None
    """Remote cache in use, in bytes."""
    retrieve_latency_seconds: Stat | None = None
    """Mean retrieve latency per sample interval, in seconds."""
    store_latency_seconds: Stat | None = None
    """Mean store latency per sample interval, in seconds."""
    retrieve_throughput_tokens_per_second: Stat | None = None
    """Retrieve throughput, in tokens per second."""
    remote_ping_seconds: Stat | None = None
    """Round trip to the remote backend, in seconds."""
    remote_get_seconds: Stat | None = None
    """Per-sample-interval mean time of a blocking remote get, in seconds."""
    max_local_cpu_size_bytes: float | None = None
    """Configured local CPU cache size, in bytes."""
    max_local_disk_size_bytes: float | None = None
    """Configured local disk cache size, in bytes."""
    local_cpu_enabled: bool | None = None
    """True when the local CPU cache tier is enabled."""
    remote_backend: str | None = None
    """The remote backend's URL scheme (e.g. redis, lm), when one is configured."""
    kv_bytes_per_token: float | None = None
    """KV cache bytes per token of the model."""
    saved_prefill_tokens: float = 0.0
    """Tokens served from the cache over the window (prefill saved)."""
    saved_kv_bytes: float | None = None
    """Saved tokens x KV bytes per token, when known."""
    blocking_timeout_seconds: float | None = None
    """The latest blocking_timeout_secs from /conf, in seconds."""
    worker_ranks: int | None = None
    """Worker processes of the instance; max_local_cpu_size is per process."""


class LMCacheSection(ApiModel):
    instances: list[LMCacheInstanceSummary] = Field(default_factory=list)
    """One summary per LMCache instance on the node."""


# --- serving engines (vLLM, SGLang) -------------------------------------------------------


class LatencySummary(ApiModel):
    """A latency histogram over the window: quantiles of the bucket *increases* in the window.

    p50/p95 are what PromQL's `histogram_quantile(q, increase(h_bucket[window]))` gives on the
    same scrapes (linear interpolation inside a bucket; a rank in the +Inf bucket gives the
    highest finite bound). None when nothing was observed in the window."""

    count: float
    """Observations in the window (increase of the +Inf bucket)."""
    mean: float | None = None
    """Increase of the sum over increase of the count."""
    p50: float | None = None
    """Median over the window, from the bucket increases."""
    p95: float | None = None
    """95th percentile over the window, from the bucket increases."""


class ServingInstanceSummary(ApiModel):
    """One serving engine's work over the window, for one model (and engine index)."""

    instance: str
    """Endpoint id: "<namespace>/<pod>" or the URL given on the command line."""
    engine: str
    """The serving engine: vllm or sglang."""
    model_name: str | None = None
    """The served model (the engine's model_name label)."""
    engine_index: str | None = None
    """vLLM's engine label (one engine core per data-parallel rank)."""
    pod: str | None = None
    """The engine's pod, when discovered from pod annotations."""
    namespace: str | None = None
    """The pod's namespace."""
    pod_uid: str | None = None
    """The pod's UID (links the engine to its GPUs)."""
    url: str | None = None
    """The /metrics URL scraped."""
    reachable: bool = True
    """Whether the engine's /metrics answered in the last sample."""
    error: str | None = None
    """Why the engine could not be scraped."""
    samples: int = 0
    """Samples in the window with this engine's figures."""
    window_seconds: float = 0.0
    """First to last of those samples, in seconds."""
    requests_running: Stat | None = None
    """Requests in the running batch."""
    requests_waiting: Stat | None = None
    """Requests queued."""
    kv_cache_usage_percent: Stat | None = None
    """KV-cache use, percent."""
    preemptions: float | None = None
    """Requests preempted (vLLM) or retracted (SGLang): increase over the window."""
    prefix_cache_queries: float | None = None
    """Prefix-cache tokens looked up (increase)."""
    prefix_cache_hits: float | None = None
    """Prefix-cache tokens found (increase)."""
    prefix_cache_hit_rate: float | None = None
    """0-1: hits / queries, else the engine's own gauge (mean)."""
    prompt_tokens_per_second: float | None = None
    """Prompt tokens processed per second over the window."""
    generation_tokens_per_second: float | None = None
    """Tokens generated per second over the window."""
    requests_per_second: float | None = None
    """Finished requests per second over the window."""
    requests_finished: float | None = None
    """Requests finished in the window."""
    requests_finished_by_reason: dict[str, float] = Field(default_factory=dict)
    """Requests finished in the window, by finish reason."""
    ttft_seconds: LatencySummary | None = None
    """Time to first token."""
    inter_token_latency_seconds: LatencySummary | None = None
    """Time between output tokens."""
    queue_time_seconds: LatencySummary | None = None
    """Time requests waited in the queue."""
    e2e_latency_seconds: LatencySummary | None = None
    """End-to-end request latency."""
    gpu_memory_utilization: float | None = None
    """vLLM's gpu_memory_utilization (cache_config_info)."""
    num_gpu_blocks: float | None = None
    """KV-cache blocks on the GPU (vLLM cache_config_info)."""
    block_size: float | None = None
    """Tokens per KV-cache block (vLLM cache_config_info)."""
    max_total_num_tokens: float | None = None
    """SGLang's KV-cache capacity in tokens."""
    lmcache_instance: str | None = None
    """The LMCache instance in the same pod (or on the same host URL)."""
    gpu_indices: list[int] = Field(default_factory=list)
    """GPUs whose processes belong to the engine's pod."""

    def key(self) -> str:
        """Stable id of this engine and model: the instance, plus the model and engine index when known."""
        parts = [self.instance]
        if self.model_name:
            parts.append(self.model_name)
        if self.engine_index:
            parts.append(f"engine{self.engine_index}")
        return "|".join(parts)


class ServingSection(ApiModel):
    instances: list[ServingInstanceSummary] = Field(default_factory=list)
    """One summary per serving engine, model and engine index."""


# --- the node ------------------------------------------------------------------------


class NodeSummary(ApiModel):
    """A node's window summary: the ResourceReport status and the analysis input."""

    node_name: str
    """Name of the Kubernetes node."""
    agent_version: str
    """Version of the agent that wrote the report."""
    window: Window
    """The sampling window this report summarises."""
    inventory: NodeInventory
    """What the node has: CPU, memory, GPUs, driver."""
    cpu: CpuSummary
    """CPU utilisation and load."""
    memory: MemorySummary
    """Memory and swap."""
    pressure: PressureSummary
    """Pressure stall information (PSI)."""
    disks: list[DiskSummary] = Field(default_factory=list)
    """One summary per disk."""
    networks: list[NetworkSummary] = Field(default_factory=list)
    """One summary per network interface."""
    gpu: GpuSection
    """GPUs: per-device summaries, lost GPUs, standing faults."""
    lmcache: LMCacheSection = Field(default_factory=LMCacheSection)
    """LMCache instances on the node."""
    serving: ServingSection = Field(default_factory=ServingSection)
    """Serving engines (vLLM, SGLang) on the node."""
    collectors: list[CollectorStatus] = Field(default_factory=list)
    """Which collectors ran, which were unavailable or failed, and why."""
    uptime_seconds: float | None = None
    """Seconds since the host booted."""
