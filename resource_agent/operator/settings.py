"""Operator settings: the runtime object (explicit, like kopf's own settings) and how it is loaded.

`OperatorConfig` is layered like the agent's: defaults < YAML file (`--config`) <
`RESOURCE_AGENT_*` environment < command line; `OperatorConfig.runtime()` turns it
into the `OperatorSettings` the operator runs with.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, Field, model_validator

from resource_agent.analysis.catalog import load_policy
from resource_agent.analysis.policy import Policy
from resource_agent.config.durations import Duration
from resource_agent.config.layered import LayeredSettings
from resource_agent.config.listen import ListenAddress
from resource_agent.node_agent.httpauth import EndpointAuth, EndpointOptions, check_tls_files
from resource_agent.node_agent.settings import LogLevel
from resource_agent.operator.coverage import (
    DEFAULT_REPORT_HEARTBEAT_SECONDS,
    DEFAULT_REPORT_INTERVAL_SECONDS,
    STALE_HEARTBEATS,
    CoverageThresholds,
)
from resource_agent.operator.gpu_labels import DEFAULT_GPU_NODE_SELECTOR_TERMS, validate_terms
from resource_agent.operator.planning import PlanSettings
from resource_agent.workloads.usage import DEFAULT_HORIZON_SECONDS, DEFAULT_PACKING_AFTER_SECONDS, UsageSettings


@dataclass(frozen=True)
class OperatorSettings:
    policy: Policy = field(default_factory=Policy)
    plan: PlanSettings = field(default_factory=PlanSettings)
    peering: str | None = None  # a ClusterKopfPeering name; None runs standalone
    priority: int = field(default_factory=lambda: default_priority())
    metrics_listen: tuple[str, int] | None = ("0.0.0.0", 8080)
    health_listen: tuple[str, int] | None = ("0.0.0.0", 8081)
    metrics_security: EndpointOptions = field(default_factory=EndpointOptions)
    fleet_interval_seconds: float = 60.0
    coverage: CoverageThresholds = field(default_factory=CoverageThresholds)
    llm_config: Path | None = None
    workloads: bool = True  # GPU right-sizing per workload (watches pods, ReplicaSets, nodes; keeps checkpoints)
    usage: UsageSettings = field(default_factory=UsageSettings)
    checkpoint_interval_seconds: float = 300.0
    # label nodes with only nvidia.com/gpu capacity (operator/gpu_labels.py); the terms are the agent's GPU node affinity
    label_gpu_capacity_nodes: bool = False
    gpu_node_selector_terms: tuple[dict[str, Any], ...] = DEFAULT_GPU_NODE_SELECTOR_TERMS


def load_gpu_node_selector(path: Path | None) -> tuple[dict[str, Any], ...]:
    """The agent's GPU node selector terms from a YAML list of nodeSelectorTerms (None: the chart's defaults)."""
    if path is None:
        return DEFAULT_GPU_NODE_SELECTOR_TERMS
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"--gpu-node-selector {path}: {exc}") from None
    if isinstance(loaded, dict) and "nodeSelectorTerms" in loaded:
        loaded = loaded["nodeSelectorTerms"]
    try:
        return validate_terms(loaded)
    except ValueError as exc:
        raise ValueError(f"--gpu-node-selector {path}: {exc}") from None


def default_priority() -> int:
    """A distinct kopf peering priority per replica (same-priority peers would all pause)."""
    identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    return 1 + int(hashlib.sha256(identity.encode()).hexdigest(), 16) % 1_000_000


def _empty_is_off(value: object) -> object:
    return None if value == "" else value


OptionalListen = Annotated[ListenAddress | None, BeforeValidator(_empty_is_off)]


class OperatorConfig(LayeredSettings):
    """Everything `resource-agent operator` reads; YAML keys may be camelCase."""

    peering: str | None = None
    priority: int | None = None  # default: derived from POD_NAME
    policy: Path | None = None  # analysis policy YAML (docs/policy.md)
    llm_config: Path | None = None  # LLM settings YAML (docs/llm.md)
    metrics_listen: OptionalListen = ("0.0.0.0", 8080)  # "" turns it off
    health_listen: OptionalListen = ("0.0.0.0", 8081)
    resolved_ttl: Duration = 3600.0
    evidence_refresh: Duration = 300.0
    fleet_interval: Duration = 60.0
    report_interval: Duration = DEFAULT_REPORT_INTERVAL_SECONDS  # the agents' --report-interval
    report_heartbeat: Duration = DEFAULT_REPORT_HEARTBEAT_SECONDS  # the agents' --report-heartbeat
    # a report older than this many heartbeats plus one report interval is stale
    stale_heartbeats: float = Field(default=STALE_HEARTBEATS, gt=0)
    workloads: bool = True  # GPU right-sizing per workload; off: no pod/ReplicaSet/node watches, no checkpoints
    workload_horizon: Duration = DEFAULT_HORIZON_SECONDS  # history a workload recommendation needs (168h)
    workload_half_life: Duration | None = None  # decay of the usage histograms; default horizon / 7
    workload_checkpoint_interval: Duration = 300.0  # how often changed usage histories are written
    workload_packing_after: Duration = DEFAULT_PACKING_AFTER_SECONDS  # a spread that fragments whole nodes must stand this long
    log_level: LogLevel = LogLevel.INFO
    # securing /metrics (kopf's liveness endpoint stays plain and open for the kubelet's probe)
    tls_cert_file: Path | None = None  # serve /metrics over HTTPS with this certificate ...
    tls_key_file: Path | None = None  # ... and its key
    endpoint_auth: EndpointAuth = EndpointAuth.NONE  # kubernetes: TokenReview + SubjectAccessReview (kube-rbac-proxy)
    endpoint_auth_cache_ttl: Duration = 60.0  # how long a review's answer is reused
    # label Nodes with nvidia.com/gpu allocatable but none of the agent's GPU labels (needs patch on nodes)
    label_gpu_capacity_nodes: bool = False
    gpu_node_selector: Path | None = None  # YAML list of the agent's GPU nodeSelectorTerms; default: the chart's

    @model_validator(mode="after")
    def _tls_pair(self) -> OperatorConfig:
        check_tls_files(self.tls_cert_file, self.tls_key_file)
        return self

    def runtime(self) -> OperatorSettings:
        """The operator's runtime settings, with the policy file read (a PolicyError names the bad key)."""
        return OperatorSettings(
            policy=load_policy(self.policy) if self.policy else Policy(),
            plan=PlanSettings(evidence_refresh_seconds=self.evidence_refresh, resolved_ttl_seconds=self.resolved_ttl),
            peering=self.peering,
            priority=self.priority if self.priority is not None else default_priority(),
            metrics_listen=self.metrics_listen,
            health_listen=self.health_listen,
            metrics_security=EndpointOptions(self.endpoint_auth, self.tls_cert_file, self.tls_key_file, self.endpoint_auth_cache_ttl),
            fleet_interval_seconds=self.fleet_interval,
            coverage=CoverageThresholds(report_interval_seconds=self.report_interval, report_heartbeat_seconds=self.report_heartbeat,
                                        stale_heartbeats=self.stale_heartbeats),
            llm_config=self.llm_config,
            workloads=self.workloads,
            usage=UsageSettings(horizon_seconds=self.workload_horizon, half_life_seconds=self.workload_half_life,
                                packing_persist_seconds=self.workload_packing_after),
            checkpoint_interval_seconds=self.workload_checkpoint_interval,
            label_gpu_capacity_nodes=self.label_gpu_capacity_nodes,
            gpu_node_selector_terms=load_gpu_node_selector(self.gpu_node_selector),
        )
