"""The window summary: what a node agent reports and what the analysis reads.

`NodeSummary` is the body of a ResourceReport's status and the input of the
analysis engine. It is made by the window from a run of `Sample`s (see
`resource_agent.node_agent.window`) and holds, per metric, a `Stat` over the
window instead of the raw series (Prometheus keeps the series).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from resource_agent.api.base import ApiModel
from resource_agent.api.samples import CollectorStatus, GpuAllocation, GpuProcess


class Stat(ApiModel):
    """Window statistics of one metric."""

    mean: float
    p95: float
    max: float
    min: float
    last: float


class Window(ApiModel):
    start: float  # unix seconds of the first sample
    end: float  # unix seconds of the last sample
    samples: int
    interval_seconds: float


# --- inventory -------------------------------------------------------------------


class GpuInventory(ApiModel):
    index: int
    uuid: str
    name: str
    pci_bus_id: str | None = None
    mig_mode: bool | None = None
    memory_total_bytes: int | None = None


class NodeInventory(ApiModel):
    hostname: str
    boot_id: str | None = None
    cpu_model: str | None = None
    cpu_cores: int
    memory_total_bytes: int
    swap_total_bytes: int = 0
    gpus: list[GpuInventory] = Field(default_factory=list)
    driver_version: str | None = None
    cuda_driver_version: str | None = None


# --- host ----------------------------------------------------------------------


class CpuSummary(ApiModel):
    utilization_percent: Stat | None = None
    busiest_core_utilization_percent: Stat | None = None  # per sample, the highest known core share
    iowait_percent: Stat | None = None
    steal_percent: Stat | None = None
    frequency_mhz: Stat | None = None
    load1: Stat
    context_switches_per_second: Stat | None = None


class MemorySummary(ApiModel):
    total_bytes: int
    available_bytes: Stat
    used_bytes: Stat
    cached_bytes: Stat
    buffers_bytes: Stat
    available_percent: Stat
    swap_total_bytes: int = 0
    swap_used_bytes: Stat | None = None
    swap_in_bytes_per_second: Stat | None = None
    swap_out_bytes_per_second: Stat | None = None


class DiskSummary(ApiModel):
    device: str
    mountpoint: str | None = None
    total_bytes: int | None = None
    used_percent: Stat | None = None
    read_bytes_per_second: Stat | None = None
    write_bytes_per_second: Stat | None = None
    read_iops: Stat | None = None
    write_iops: Stat | None = None
    busy_percent: Stat | None = None
    queue_depth: Stat | None = None  # mean requests in flight per sample interval
    await_seconds: Stat | None = None  # mean time per completed read/write, over the samples that completed any


class NetworkSummary(ApiModel):
    interface: str
    rx_bytes_per_second: Stat | None = None
    tx_bytes_per_second: Stat | None = None
    rx_errors_per_second: Stat | None = None
    tx_errors_per_second: Stat | None = None
    rx_drops_per_second: Stat | None = None
    tx_drops_per_second: Stat | None = None


class PressureLineSummary(ApiModel):
    avg10: Stat
    avg60: Stat
    stalled_seconds: float  # increase of the `total` counter over the window


class PressureResourceSummary(ApiModel):
    some: PressureLineSummary
    full: PressureLineSummary | None = None


class IrqPressureSummary(ApiModel):
    """IRQ pressure has only a "full" line (see `IrqPressure`)."""

    full: PressureLineSummary


class PressureSummary(ApiModel):
    available: bool
    reason: str | None = None
    cpu: PressureResourceSummary | None = None
    memory: PressureResourceSummary | None = None
    io: PressureResourceSummary | None = None
    irq: IrqPressureSummary | None = None


# --- gpu -------------------------------------------------------------------------


class EccSummary(ApiModel):
    corrected_volatile: int | None = None
    uncorrected_volatile: int | None = None
    corrected_aggregate: int | None = None
    uncorrected_aggregate: int | None = None
    uncorrected_increase: int = 0  # new uncorrectable errors within the window
    retired_pages_single_bit: int | None = None
    retired_pages_double_bit: int | None = None
    retired_pages_pending: bool | None = None
    remapped_rows_correctable: int | None = None
    remapped_rows_uncorrectable: int | None = None
    remapped_rows_pending: bool | None = None
    remapped_rows_failure: bool | None = None


class PcieSummary(ApiModel):
    link_generation: int | None = None
    link_generation_max: int | None = None
    link_width: int | None = None
    link_width_max: int | None = None
    rx_bytes_per_second: Stat | None = None
    tx_bytes_per_second: Stat | None = None


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
    since: float  # unix seconds it was first seen on this boot
    detail: str  # e.g. "uncorrected volatile ECC 2", "XID 79", "recovery action: reset"
    xid: int | None = None


class GpuSummary(ApiModel):
    index: int
    uuid: str
    name: str
    pci_bus_id: str | None = None
    mig_mode: bool | None = None
    sm_utilization_percent: Stat | None = None
    memory_utilization_percent: Stat | None = None
    memory_used_bytes: Stat | None = None
    memory_used_percent: Stat | None = None
    memory_total_bytes: int | None = None
    memory_reserved_bytes: int | None = None
    temperature_celsius: Stat | None = None
    slowdown_temperature_celsius: float | None = None
    shutdown_temperature_celsius: float | None = None
    power_watts: Stat | None = None
    power_limit_watts: float | None = None  # enforced
    power_default_limit_watts: float | None = None
    power_limit_max_watts: float | None = None
    sm_clock_mhz: Stat | None = None
    sm_clock_busy_mhz: Stat | None = None  # SM clock over busy samples only (SM utilisation above the busy floor)
    sm_clock_max_mhz: float | None = None
    memory_clock_mhz: Stat | None = None
    memory_clock_max_mhz: float | None = None
    clock_event_reasons: dict[str, float] = Field(default_factory=dict)  # reason -> share of samples (0-1)
    violation_seconds: dict[str, float] = Field(default_factory=dict)  # policy -> increase over the window
    ecc: EccSummary = Field(default_factory=EccSummary)
    pcie: PcieSummary = Field(default_factory=PcieSummary)
    fan_speed_percent: Stat | None = None
    performance_state: int | None = None  # last
    processes: list[GpuProcess] = Field(default_factory=list)  # last sample's
    allocated_to: list[GpuAllocation] = Field(default_factory=list)  # last sample's: the pod(s) and container(s) holding it
    xid_counts: dict[str, int] = Field(default_factory=dict)  # XID code -> events in the window
    recovery_action: str | None = None  # last non-"none" action NVML recommended
    unsupported: list[str] = Field(default_factory=list)
    faults: list[GpuFault] = Field(default_factory=list)  # standing hardware faults (persist across windows)


class LostGpuSummary(ApiModel):
    index: int | None = None
    uuid: str | None = None
    pci_bus_id: str | None = None
    error: str
    since: float  # unix seconds first seen lost on this boot


class GpuSection(ApiModel):
    available: bool
    reason: str | None = None
    devices: list[GpuSummary] = Field(default_factory=list)
    lost: list[LostGpuSummary] = Field(default_factory=list)  # persists until the GPU is back or the node reboots
    expected_count: int | None = None  # NVIDIA GPUs the PCI bus lists; more than NVML sees means a GPU is missing


# --- LMCache -----------------------------------------------------------------------


class LMCacheInstanceSummary(ApiModel):
    instance: str
    pod: str | None = None
    namespace: str | None = None
    urls: list[str] = Field(default_factory=list)
    reachable: bool = True
    error: str | None = None
    healthy: bool | None = None
    model_name: str | None = None
    requested_tokens: float = 0.0  # increase over the window (counter resets handled)
    hit_tokens: float = 0.0
    lookup_tokens: float = 0.0
    lookup_hits: float = 0.0
    evictions: float = 0.0
    remote_errors: float = 0.0
    # parts of remote_errors (increases over the window); None when LMCache does not expose the series
    # blocking gets that failed (timed out, raised or came back empty) since blocking_timeout_secs took its
    # latest value in the window: a change of the timeout is judged on what happened after it
    remote_get_failures: float | None = None
    remote_put_failures: float | None = None
    remote_ping_errors: float | None = None
    remote_ping_successes: float | None = None
    # blocking remote gets and their total time (increases of lmcache:remote_time_to_get_sync's count and
    # sum), counted like remote_get_failures since blocking_timeout_secs took its latest value
    remote_gets: float | None = None
    remote_get_time_seconds: float | None = None
    # load success: retrieved/requested tokens. vLLM's v1 adapter retrieves only tokens the lookup found,
    # so this is ~1 by construction and no hit rate; below 1 means found KV failed to load
    token_hit_rate: float | None = None  # None when nothing requested
    lookup_hit_rate: float | None = None  # the hit rate: lookup hits / lookup tokens
    local_cpu_usage_bytes: Stat | None = None
    local_cpu_usage_percent: Stat | None = None  # of max_local_cpu_size
    local_disk_usage_bytes: Stat | None = None
    remote_usage_bytes: Stat | None = None
    retrieve_latency_seconds: Stat | None = None
    store_latency_seconds: Stat | None = None
    retrieve_throughput_tokens_per_second: Stat | None = None
    remote_ping_seconds: Stat | None = None
    remote_get_seconds: Stat | None = None  # per-sample interval means of blocking remote get time
    max_local_cpu_size_bytes: float | None = None
    max_local_disk_size_bytes: float | None = None
    local_cpu_enabled: bool | None = None
    remote_backend: str | None = None
    kv_bytes_per_token: float | None = None
    saved_prefill_tokens: float = 0.0  # tokens served from cache over the window
    saved_kv_bytes: float | None = None  # saved tokens x KV bytes per token, when known
    blocking_timeout_seconds: float | None = None  # /conf blocking_timeout_secs, latest
    worker_ranks: int | None = None  # worker processes; max_local_cpu_size is per process


class LMCacheSection(ApiModel):
    instances: list[LMCacheInstanceSummary] = Field(default_factory=list)


# --- the node ------------------------------------------------------------------------


class NodeSummary(ApiModel):
    """A node's window summary: the ResourceReport status and the analysis input."""

    node_name: str
    agent_version: str
    window: Window
    inventory: NodeInventory
    cpu: CpuSummary
    memory: MemorySummary
    pressure: PressureSummary
    disks: list[DiskSummary] = Field(default_factory=list)
    networks: list[NetworkSummary] = Field(default_factory=list)
    gpu: GpuSection
    lmcache: LMCacheSection = Field(default_factory=LMCacheSection)
    collectors: list[CollectorStatus] = Field(default_factory=list)
    uptime_seconds: float | None = None
