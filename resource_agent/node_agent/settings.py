"""The agent's settings: defaults < YAML file (`--config`) < `RESOURCE_AGENT_*` environment < command line.

Every command-line flag of `resource-agent agent` is a field here, so a
DaemonSet or a GitOps repository can set any of them from the environment
(`RESOURCE_AGENT_INTERVAL=1m30s`) or the config file (`interval: 1m30s`).
"""

from __future__ import annotations

import socket
from enum import StrEnum
from pathlib import Path

from pydantic import AliasChoices, Field, model_validator

from resource_agent.config.durations import Duration
from resource_agent.config.layered import LayeredSettings
from resource_agent.config.listen import ListenAddress
from resource_agent.node_agent.collectors.base import CollectorContext
from resource_agent.node_agent.httpauth import EndpointAuth, EndpointOptions, check_tls_files
from resource_agent.node_agent.sampler import SIMULATION_COLLECTOR

# Outside the Prometheus exporter range 9100-9999 (fully allocated on the project's port
# allocation page): clear of dcgm-exporter (9400), node_exporter (9100) and other node-level
# GPU exporters, of kubelet and kube-proxy (10249-10259), of NodePorts (30000-32767) and of
# the Linux ephemeral range (32768-60999), so it runs beside them with host networking.
DEFAULT_PORT = 19400


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class AgentConfig(LayeredSettings):
    """Everything `collect`, `scan` and `agent` read; YAML keys may be camelCase."""

    host_proc: Path = Path("/proc")
    host_sys: Path = Path("/sys")
    host_root: Path = Path("/")
    node_name: str | None = Field(default=None, validation_alias=AliasChoices("node_name", "RESOURCE_AGENT_NODE_NAME", "NODE_NAME"))
    lmcache_urls: list[str] = Field(default_factory=list)
    serving_urls: list[str] = Field(default_factory=list)  # ENGINE=URL, e.g. vllm=http://10.0.0.5:8000
    collectors: dict[str, bool] = Field(default_factory=dict)  # collector name -> enabled
    options: dict[str, str] = Field(default_factory=dict)  # per-collector options, e.g. lmcache.discover-pods
    scenario: str | None = None
    scenario_seed: int = 0
    interval: Duration = 5.0
    window: Duration = 300.0
    report_interval: Duration = 60.0
    # an unchanged report is written again after this long (a material change is written at once); the
    # operator's stale-report threshold follows it. Default: the window, so written windows tile the time.
    report_heartbeat: Duration = 300.0
    listen: ListenAddress = ("0.0.0.0", DEFAULT_PORT)
    log_level: LogLevel = LogLevel.INFO
    report: bool = False
    kubeconfig: Path | None = None
    state_file: Path | None = None  # standing GPU faults kept across agent restarts on the same boot
    # securing /metrics and /report (/healthz and /readyz stay open for the kubelet's probes)
    tls_cert_file: Path | None = None  # serve HTTPS with this certificate (PEM, chain first) ...
    tls_key_file: Path | None = None  # ... and its key
    endpoint_auth: EndpointAuth = EndpointAuth.NONE  # kubernetes: TokenReview + SubjectAccessReview (kube-rbac-proxy)
    endpoint_auth_cache_ttl: Duration = 60.0  # how long a review's answer is reused

    @model_validator(mode="after")
    def _tls_pair(self) -> AgentConfig:
        check_tls_files(self.tls_cert_file, self.tls_key_file)
        return self

    @model_validator(mode="after")
    def _heartbeat_not_below_interval(self) -> AgentConfig:
        if self.report_heartbeat < self.report_interval:
            raise ValueError(f"report_heartbeat ({self.report_heartbeat:g} s) must not be shorter than report_interval "
                             f"({self.report_interval:g} s): summaries come once per report interval")
        return self

    def endpoint_options(self) -> EndpointOptions:
        return EndpointOptions(self.endpoint_auth, self.tls_cert_file, self.tls_key_file, self.endpoint_auth_cache_ttl)

    def collector_context(self) -> CollectorContext:
        return CollectorContext(
            host_proc=self.host_proc,
            host_sys=self.host_sys,
            host_root=self.host_root,
            node_name=self.node_name,
            lmcache_urls=tuple(self.lmcache_urls),
            serving_urls=tuple(self.serving_urls),
            scenario=self.scenario,
            scenario_seed=self.scenario_seed,
            options=dict(self.options),
        )

    def enabled_collectors(self, switches: dict[str, bool | None] | None = None) -> dict[str, bool]:
        """The explicit enabled map: the settings' `collectors`, then the command-line switches."""
        enabled = dict(self.collectors)
        enabled.update({name: value for name, value in (switches or {}).items() if value is not None})
        if self.scenario is not None:
            enabled.setdefault(SIMULATION_COLLECTOR, True)
        return enabled

    def effective_node_name(self) -> str:
        """The node this agent reports for: the setting (or $NODE_NAME), else this host's name."""
        return self.node_name or socket.gethostname()
