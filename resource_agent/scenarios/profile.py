"""Scenario profiles: the YAML description of a simulated node, validated.

A profile sets the level (mean and noise) of every measured quantity of a node:
host CPU, memory, PSI, disks and NICs, eight (or more) GPUs with per-GPU
overrides, LMCache instances and serving engines (vLLM, SGLang). `extends` names a profile whose settings this
one starts from; `expect` lists the findings the analysis must produce.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ScenarioError(ValueError):
    """Unknown scenario, or a profile that does not validate."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(_Strict):
    """A quantity's mean and the half-width of its uniform noise. A bare number means no noise."""

    mean: float
    jitter: float = Field(default=0.0, ge=0.0)

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, data: Any) -> Any:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return {"mean": data}
        return data


class DiskProfile(_Strict):
    device: str
    mountpoint: str
    total_gib: float = Field(gt=0)
    used_percent: Level
    busy_percent: Level = Level(mean=5.0)
    read_mib_per_second: Level = Level(mean=20.0)
    write_mib_per_second: Level = Level(mean=10.0)


class NicProfile(_Strict):
    interface: str
    rx_gbit_per_second: Level = Level(mean=1.0)
    tx_gbit_per_second: Level = Level(mean=1.0)
    errors_per_second: Level = Level(mean=0.0)
    drops_per_second: Level = Level(mean=0.0)


class PressureProfile(_Strict):
    """PSI shares in percent (avg10 around the mean; avg60/avg300 at the mean)."""

    cpu_some: Level = Level(mean=0.5)
    memory_some: Level = Level(mean=0.0)
    memory_full: Level = Level(mean=0.0)
    io_some: Level = Level(mean=0.2)
    io_full: Level = Level(mean=0.1)


class HostProfile(_Strict):
    cpu_model: str
    cpu_cores: int = Field(gt=0)
    memory_total_gib: float = Field(gt=0)
    swap_total_gib: float = Field(default=0.0, ge=0)
    cpu_utilization_percent: Level
    busiest_core_percent: Level
    iowait_percent: Level = Level(mean=0.5)
    steal_percent: Level = Level(mean=0.0)
    memory_available_percent: Level
    swap_in_mib_per_second: Level = Level(mean=0.0)
    swap_out_mib_per_second: Level = Level(mean=0.0)
    pressure: PressureProfile = PressureProfile()
    disks: list[DiskProfile] = Field(default_factory=list)
    networks: list[NicProfile] = Field(default_factory=list)


class GpuProfile(_Strict):
    """One GPU's behaviour. Clock reasons and violations are shares of samples / time (0-1)."""

    sm_utilization_percent: Level
    memory_utilization_percent: Level
    memory_used_percent: Level
    temperature_celsius: Level
    power_watts: Level
    power_limit_watts: float = Field(gt=0)
    sm_clock_mhz: Level
    memory_clock_mhz: Level
    clock_event_reasons: dict[str, float] = Field(default_factory=dict)
    violation_share: dict[str, float] = Field(default_factory=dict)
    pcie_generation: int = Field(ge=1)
    pcie_width: int = Field(ge=1)
    pcie_rx_gib_per_second: Level = Level(mean=1.0)
    pcie_tx_gib_per_second: Level = Level(mean=0.5)
    processes: int = Field(default=1, ge=0)
    xid_every: dict[int, int] = Field(default_factory=dict)  # XID code -> one event every N samples
    ecc_uncorrected_every: int = Field(default=0, ge=0)  # one new uncorrectable error every N samples (0: never)
    remapped_rows_pending: bool = False
    remapped_rows_failure: bool = False
    recovery_action: str | None = None


class GpuModel(_Strict):
    """The GPU board every device of the node is (H100 80GB HBM3 by default)."""

    name: str
    memory_total_bytes: int = Field(gt=0)
    slowdown_temperature_celsius: float
    shutdown_temperature_celsius: float
    sm_clock_max_mhz: float
    memory_clock_max_mhz: float
    pcie_generation_max: int
    pcie_width_max: int
    power_default_limit_watts: float | None = None  # the board's default power limit (nvidia-smi "Default Power Limit")
    power_limit_max_watts: float | None = None


class GpusProfile(_Strict):
    model: GpuModel
    default: dict[str, Any]
    overrides: dict[int, dict[str, Any]] = Field(default_factory=dict)
    driver_version: str = "570.124.06"
    cuda_driver_version: str = "12.8"

    @model_validator(mode="after")
    def _devices_validate(self) -> GpusProfile:
        self.device(0)
        for index in self.overrides:
            self.device(index)
        return self

    def device(self, index: int) -> GpuProfile:
        merged = {**self.default, **self.overrides.get(index, {})}
        try:
            return GpuProfile.model_validate(merged)
        except ValidationError as exc:
            where = f"gpus.overrides.{index}" if index in self.overrides else "gpus.default"
            raise ValueError(f"{where}: {exc}") from None


class LMCacheProfile(_Strict):
    instance: str
    pod: str
    namespace: str
    url: str
    model_name: str = "meta-llama/Llama-3.1-8B-Instruct"
    reachable: bool = True
    healthy: bool = True
    requested_tokens_per_second: Level
    hit_rate: Level  # 0-1
    evictions_per_second: Level = Level(mean=0.0)
    remote_errors_per_second: Level = Level(mean=0.0)
    max_local_cpu_gib: float = Field(gt=0)
    usage_percent: Level
    retrieve_latency_seconds: Level = Level(mean=0.004)
    store_latency_seconds: Level = Level(mean=0.003)
    remote_backend: str | None = None
    remote_ping_seconds: Level | None = None
    kv_bytes_per_token: float = 131072.0  # Llama-3.1-8B, fp16: 32 layers x 8 KV heads x 128 x 2 x 2 bytes


class ServingProfile(_Strict):
    """A serving engine (vLLM or SGLang) in a pod on the node, and the load it carries.

    Gauges are drawn around their level every sample; counters grow by rate x interval;
    latencies are observed, one per request (four inter-token gaps per request), log-normally
    around their median into the engine's own histogram buckets."""

    instance: str  # "<namespace>/<pod>", as pod discovery names it
    pod: str
    namespace: str
    url: str  # the engine's /metrics
    engine: Literal["vllm", "sglang"] = "vllm"
    model_name: str = "meta-llama/Llama-3.1-8B-Instruct"
    gpus: list[int] = Field(default_factory=list)  # GPU indices whose processes belong to the engine's pod
    reachable: bool = True
    requests_per_second: Level
    running: Level
    waiting: Level = Level(mean=0.0)
    kv_cache_usage_percent: Level
    preemptions_per_second: Level = Level(mean=0.0)
    prompt_tokens_per_request: float = Field(default=1000.0, ge=0)
    output_tokens_per_request: float = Field(default=200.0, ge=0)
    prefix_hit_rate: Level = Level(mean=0.5)  # 0-1
    ttft_seconds: float = Field(default=0.2, gt=0)  # median
    inter_token_seconds: float = Field(default=0.03, gt=0)
    queue_seconds: float = Field(default=0.01, gt=0)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)  # vLLM; SGLang: mem_fraction_static
    num_gpu_blocks: int = Field(default=27975, gt=0)
    block_size: int = Field(default=16, gt=0)


class Expectation(_Strict):
    """A finding the analysis must produce: rule id and target (see `describe_target`)."""

    rule: str
    target: str


class Profile(_Strict):
    name: str
    description: str
    hostname: str | None = None
    host: HostProfile
    gpus: GpusProfile
    lmcache: list[LMCacheProfile] = Field(default_factory=list)
    serving: list[ServingProfile] = Field(default_factory=list)
    expect: list[Expectation] = Field(default_factory=list)


_PACKAGE = "resource_agent.scenarios.profiles"


def _profile_names() -> list[str]:
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in resources.files(_PACKAGE).iterdir()
        if entry.name.endswith(".yaml") and not entry.name.startswith("_")
    )


def _raw(name: str) -> dict[str, Any]:
    path = resources.files(_PACKAGE) / f"{name}.yaml"
    if not path.is_file():
        raise ScenarioError(f"unknown scenario {name!r} (known: {', '.join(_profile_names())})")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ScenarioError(f"scenario {name!r}: the profile must be a mapping")
    return data


def _merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge mappings; lists and scalars in `update` replace those in `base`."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _resolve(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    if name in seen:
        raise ScenarioError(f"scenario {name!r} extends itself via {' -> '.join(seen)}")
    data = _raw(name)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    base = _resolve(parent, (*seen, name))
    base.pop("expect", None)  # expectations are never inherited
    return _merge(base, data)


def load_profile(name: str) -> Profile:
    """The named scenario profile, with what it extends merged in."""
    data = _resolve(name)
    try:
        return Profile.model_validate({**data, "name": name})
    except ValidationError as exc:
        raise ScenarioError(f"scenario {name!r}: {exc}") from None


def list_scenarios() -> list[str]:
    """Names of the packaged scenario profiles."""
    return _profile_names()
