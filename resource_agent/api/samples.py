"""One sample: what the collectors saw at one instant.

Collectors produce these every sampling interval; the window keeps a bounded
number of them and reduces them to a `NodeSummary`. The same model is the
record format of `resource-agent collect --record` (one JSON object per line,
see docs/recording-format.md), and scenarios generate streams of it.

Units are in the field names: bytes, seconds, percent (0-100), celsius,
watts, MHz. Counters are raw cumulative values as the kernel or the driver
reports them; rates are derived by the collector from the previous sample
and are `None` on the first one.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from resource_agent.api.base import ApiModel


class CollectorState(StrEnum):
    OK = "ok"
    UNAVAILABLE = "unavailable"  # nothing to collect here (no NVML, no PSI): not a failure
    FAILED = "failed"  # the collector raised; the others still ran


class CollectorStatus(ApiModel):
    name: str
    """Collector name (system, pressure, gpu, lmcache, ...)."""
    state: CollectorState
    """ok, unavailable (nothing to collect here) or failed (a crash)."""
    reason: str | None = None
    """Why the collector is unavailable or failed."""
    duration_seconds: float = 0.0
    """Time the collector took, in seconds."""


# --- system -----------------------------------------------------------------


class CpuSample(ApiModel):
    utilization_percent: float | None = None  # all cores, busy share since last sample
    # indexed by core id (the N of /proc/stat's cpuN); None where the share is unknown (an offline
    # core, one that just came online, a counter reset), so later cores keep their ids
    per_core_utilization_percent: list[float | None] = Field(default_factory=list)
    iowait_percent: float | None = None
    steal_percent: float | None = None
    frequency_mhz: float | None = None
    load1: float
    load5: float
    load15: float
    context_switches_per_second: float | None = None
    logical_cores: int
    model: str | None = None


class MemorySample(ApiModel):
    total_bytes: int
    available_bytes: int
    used_bytes: int
    cached_bytes: int = 0  # page cache: /proc/meminfo Cached (without SReclaimable, unlike psutil and free)
    buffers_bytes: int = 0
    swap_total_bytes: int = 0
    swap_used_bytes: int = 0
    swap_in_bytes_per_second: float | None = None  # /proc/vmstat pswpin x the kernel's page size
    swap_out_bytes_per_second: float | None = None  # pswpout x page size


class DiskSample(ApiModel):
    device: str
    mountpoint: str | None = None
    total_bytes: int | None = None
    used_bytes: int | None = None
    read_bytes_per_second: float | None = None
    write_bytes_per_second: float | None = None
    read_iops: float | None = None
    write_iops: float | None = None
    busy_percent: float | None = None  # io_time share; saturation only for single-queue devices
    # /proc/diskstats, as node_exporter's diskstats collector reads it (see docs/recording-format.md):
    queue_depth: float | None = None  # mean requests in flight: rate of weighted I/O ms (field 11) / 1000
    await_seconds: float | None = None  # mean time per completed read/write: delta(read+write ms) / delta(ios); None when none completed


class NetworkSample(ApiModel):
    interface: str
    rx_bytes_per_second: float | None = None
    tx_bytes_per_second: float | None = None
    rx_errors_per_second: float | None = None
    tx_errors_per_second: float | None = None
    rx_drops_per_second: float | None = None
    tx_drops_per_second: float | None = None


class SystemSample(ApiModel):
    hostname: str
    boot_id: str | None = None
    uptime_seconds: float
    cpu: CpuSample
    memory: MemorySample
    disks: list[DiskSample] = Field(default_factory=list)
    networks: list[NetworkSample] = Field(default_factory=list)


# --- pressure (PSI) -----------------------------------------------------------


class PressureLine(ApiModel):
    """One PSI line: share of wall time some/all tasks stalled."""

    avg10: float
    avg60: float
    avg300: float
    total_microseconds: int


class PressureResource(ApiModel):
    some: PressureLine
    full: PressureLine | None = None  # cpu "full" is absent on older kernels


class IrqPressure(ApiModel):
    """/proc/pressure/irq (Linux 6.1+, CONFIG_IRQ_TIME_ACCOUNTING): the kernel writes only a "full" line.

    kernel/sched/psi.c psi_show(): `only_full = res == PSI_IRQ`; time spent in hard/soft IRQs
    stalls everything on the CPU, so there is no "some"."""

    full: PressureLine


class PressureSample(ApiModel):
    cpu: PressureResource | None = None
    memory: PressureResource | None = None
    io: PressureResource | None = None
    irq: IrqPressure | None = None


# --- gpu ----------------------------------------------------------------------


class GpuProcess(ApiModel):
    pid: int
    """Process id on the host."""
    used_memory_bytes: int | None = None
    """GPU memory the process uses, in bytes."""
    name: str | None = None
    """Process name."""
    started_at: float | None = None
    """Unix time (seconds) the process started."""
    pod_uid: str | None = None
    """UID of the pod the process belongs to, when known."""
    container_id: str | None = None
    """Container id of the process, when known."""


class AllocationSource(StrEnum):
    KUBELET = "kubelet"  # the kubelet pod-resources API (v1.PodResourcesLister/List): what the device plugin assigned
    CGROUP = "cgroup"  # fallback: the pod of a process on the GPU, from /proc/<pid>/cgroup (pod UID only)


class GpuAllocation(ApiModel):
    """Who holds a GPU: the pod and container the kubelet assigned it to (or, as a fallback, the
    pod of a process running on it). Several entries when the GPU is shared (time-slicing replicas)."""

    namespace: str | None = None
    """The holding pod's namespace."""
    pod: str | None = None
    """The holding pod."""
    container: str | None = None
    """The container the device was assigned to."""
    pod_uid: str | None = None
    """The pod's UID, from the cgroups of the GPU's processes (the kubelet API does not give it)."""
    resource_name: str | None = None
    """The extended resource, e.g. nvidia.com/gpu."""
    source: AllocationSource
    """Where the attribution came from: the kubelet pod-resources API or process cgroups."""


class DeviceAssignment(ApiModel):
    """One device the kubelet assigned to a container (pod-resources API)."""

    resource_name: str  # e.g. nvidia.com/gpu
    device_id: str  # the device plugin's id: a GPU UUID, a MIG UUID, or "<uuid>::<n>" for a time-sliced replica
    namespace: str
    pod: str
    container: str


class PodResourcesSample(ApiModel):
    """What the kubelet's pod-resources API lists: the devices assigned to containers on this node."""

    devices: list[DeviceAssignment] = Field(default_factory=list)


class XidEvent(ApiModel):
    xid: int
    timestamp: float


class GpuDeviceSample(ApiModel):
    index: int
    uuid: str
    name: str
    pci_bus_id: str | None = None
    mig_mode: bool | None = None
    sm_utilization_percent: float | None = None
    memory_utilization_percent: float | None = None  # memory-controller busy share
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    memory_reserved_bytes: int | None = None
    temperature_celsius: float | None = None
    slowdown_temperature_celsius: float | None = None
    shutdown_temperature_celsius: float | None = None
    power_watts: float | None = None
    power_limit_watts: float | None = None  # enforced limit (nvmlDeviceGetEnforcedPowerLimit)
    power_default_limit_watts: float | None = None  # nvmlDeviceGetPowerManagementDefaultLimit
    power_limit_min_watts: float | None = None  # nvmlDeviceGetPowerManagementLimitConstraints
    power_limit_max_watts: float | None = None
    sm_clock_mhz: float | None = None
    sm_clock_max_mhz: float | None = None
    memory_clock_mhz: float | None = None
    memory_clock_max_mhz: float | None = None
    clock_event_reasons: list[str] = Field(default_factory=list)  # decoded names, e.g. "SwPowerCap"
    violation_seconds: dict[str, float] = Field(default_factory=dict)  # cumulative, per policy
    ecc_corrected_volatile: int | None = None
    ecc_uncorrected_volatile: int | None = None
    ecc_corrected_aggregate: int | None = None
    ecc_uncorrected_aggregate: int | None = None
    retired_pages_single_bit: int | None = None
    retired_pages_double_bit: int | None = None
    retired_pages_pending: bool | None = None
    remapped_rows_correctable: int | None = None
    remapped_rows_uncorrectable: int | None = None
    remapped_rows_pending: bool | None = None
    remapped_rows_failure: bool | None = None
    pcie_link_generation: int | None = None
    pcie_link_generation_max: int | None = None
    pcie_link_width: int | None = None
    pcie_link_width_max: int | None = None
    pcie_rx_bytes_per_second: float | None = None
    pcie_tx_bytes_per_second: float | None = None
    fan_speed_percent: float | None = None
    performance_state: int | None = None  # 0 (P0, max) .. 15
    processes: list[GpuProcess] = Field(default_factory=list)
    # filled after the collectors ran (workloads.attribution); left out of recordings when empty, so older ones read the same
    allocated_to: list[GpuAllocation] = Field(default_factory=list, exclude_if=lambda value: not value)
    xid_events: list[XidEvent] = Field(default_factory=list)  # events seen since the last sample
    recovery_action: str | None = None  # NVML_FI_DEV_GET_GPU_RECOVERY_ACTION, decoded
    unsupported: list[str] = Field(default_factory=list)  # NVML calls this device does not support
    missing_functions: list[str] = Field(default_factory=list)  # NVML functions the installed driver lacks


class LostGpu(ApiModel):
    """A GPU NVML enumerates (or the PCI bus lists) that cannot be queried: fallen off the bus, lost, hung."""

    index: int | None = None
    uuid: str | None = None
    pci_bus_id: str | None = None
    error: str  # the NVML error, e.g. "GPU is lost", or "listed on the PCI bus, not by NVML"
    xid_events: list[XidEvent] = Field(default_factory=list)  # events of this GPU since the last sample (XID 79 comes as it is lost)


class GpuSample(ApiModel):
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    devices: list[GpuDeviceSample] = Field(default_factory=list)
    lost: list[LostGpu] = Field(default_factory=list)  # devices that failed; the healthy ones are in `devices`
    pci_gpu_count: int | None = None  # NVIDIA display/3D PCI functions under <host-sys>/bus/pci/devices
    pci_bus_ids: list[str] = Field(default_factory=list)
    xid_events_unattributed: list[XidEvent] = Field(default_factory=list)  # events whose device lookup failed


# --- LMCache --------------------------------------------------------------------


class LMCacheInstanceSample(ApiModel):
    """Counters and gauges of one LMCache instance, all its ports combined."""

    instance: str  # stable id: "<namespace>/<pod>" or the URL given on the command line
    pod: str | None = None
    namespace: str | None = None
    urls: list[str] = Field(default_factory=list)
    reachable: bool = True
    error: str | None = None
    healthy: bool | None = None
    model_name: str | None = None
    # cumulative counters (sum over ports)
    requested_tokens_total: float | None = None
    hit_tokens_total: float | None = None
    lookup_tokens_total: float | None = None
    lookup_hits_total: float | None = None
    stored_tokens_total: float | None = None
    evictions_total: float | None = None
    remote_errors_total: float | None = None
    retrieve_requests_total: float | None = None
    store_requests_total: float | None = None
    # the parts of remote_errors_total, each summed over ranks; None when LMCache does not expose it
    remote_get_failures_total: float | None = None  # lmcache:get_blocking_failed_count
    remote_put_failures_total: float | None = None  # lmcache:put_failed_count
    remote_ping_errors_total: float | None = None
    remote_ping_successes_total: float | None = None
    # lmcache:remote_time_to_get_sync (a histogram in ms, summed over ranks): blocking remote gets and
    # their total time; LMCache observes failed gets too, a timed-out one at ~blocking_timeout_secs
    remote_gets_total: float | None = None
    remote_get_seconds_total: float | None = None
    # gauges
    local_cpu_usage_bytes: float | None = None
    local_disk_usage_bytes: float | None = None
    remote_usage_bytes: float | None = None
    retrieve_latency_seconds: float | None = None  # mean over the interval since the last sample
    store_latency_seconds: float | None = None
    retrieve_throughput_tokens_per_second: float | None = None
    remote_ping_seconds: float | None = None
    remote_get_seconds: float | None = None  # mean blocking remote get time over the interval since the last sample
    # configuration (credential-like values never copied)
    max_local_cpu_size_bytes: float | None = None
    max_local_disk_size_bytes: float | None = None
    local_cpu_enabled: bool | None = None
    remote_backend: str | None = None  # scheme only, e.g. "redis", never the URL with credentials
    kv_bytes_per_token: float | None = None
    blocking_timeout_seconds: float | None = None  # /conf blocking_timeout_secs (runtime-effective)
    worker_ranks: int | None = None  # worker processes (role, worker_id) seen in /metrics


class LMCacheSample(ApiModel):
    instances: list[LMCacheInstanceSample] = Field(default_factory=list)


# --- serving engines (vLLM, SGLang) -----------------------------------------------


class ServingHistogram(ApiModel):
    """A Prometheus histogram as scraped: cumulative counts per finite upper bound, then the +Inf bucket."""

    bounds: list[float] = Field(default_factory=list)  # finite upper bounds (`le`), ascending
    counts: list[float] = Field(default_factory=list)  # cumulative; len(bounds) + 1, the last is +Inf (= the count)
    sum: float = 0.0


class ServingInstanceSample(ApiModel):
    """One serving engine's figures for one model (and engine index, with vLLM data parallelism).

    Gauges as read, counters cumulative, histograms as cumulative buckets: the window takes
    increases (counter resets handled) and the quantiles of the bucket increases."""

    instance: str  # stable id of the endpoint: "<namespace>/<pod>" or the URL given on the command line
    engine: str  # "vllm" | "sglang"
    model_name: str | None = None
    engine_index: str | None = None  # vLLM's `engine` label (one engine core per data-parallel rank)
    pod: str | None = None
    namespace: str | None = None
    pod_uid: str | None = None
    url: str | None = None
    reachable: bool = True
    error: str | None = None
    # gauges
    requests_running: float | None = None
    requests_waiting: float | None = None
    kv_cache_usage_percent: float | None = None  # vllm:kv_cache_usage_perc x 100, sglang:token_usage x 100
    prefix_cache_hit_rate_percent: float | None = None  # a gauge where the engine has one (SGLang, vLLM V0)
    # cumulative counters
    preemptions_total: float | None = None
    prefix_cache_queries_total: float | None = None  # tokens looked up in the prefix cache
    prefix_cache_hits_total: float | None = None  # tokens found there
    prompt_tokens_total: float | None = None
    generation_tokens_total: float | None = None
    requests_finished_total: float | None = None
    requests_finished_by_reason: dict[str, float] = Field(default_factory=dict)  # vLLM finished_reason -> total
    # histograms (cumulative buckets)
    ttft_seconds: ServingHistogram | None = None
    inter_token_latency_seconds: ServingHistogram | None = None
    e2e_latency_seconds: ServingHistogram | None = None
    queue_time_seconds: ServingHistogram | None = None
    # configuration
    gpu_memory_utilization: float | None = None  # vllm:cache_config_info
    num_gpu_blocks: float | None = None
    block_size: float | None = None
    max_total_num_tokens: float | None = None  # sglang:max_total_num_tokens


class ServingSample(ApiModel):
    instances: list[ServingInstanceSample] = Field(default_factory=list)


# --- one sample ----------------------------------------------------------------


class Sample(ApiModel):
    timestamp: float  # unix seconds
    system: SystemSample | None = None
    pressure: PressureSample | None = None
    gpu: GpuSample | None = None
    lmcache: LMCacheSample | None = None
    serving: ServingSample | None = None
    pod_resources: PodResourcesSample | None = None
    collectors: list[CollectorStatus] = Field(default_factory=list)
