"""Operator settings (explicit, like kopf's own settings objects)."""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from resource_agent.analysis.policy import Policy
from resource_agent.operator.planning import PlanSettings


@dataclass(frozen=True)
class OperatorSettings:
    policy: Policy = field(default_factory=Policy)
    plan: PlanSettings = field(default_factory=PlanSettings)
    peering: str | None = None  # a ClusterKopfPeering name; None runs standalone
    priority: int = field(default_factory=lambda: default_priority())
    metrics_listen: tuple[str, int] | None = ("0.0.0.0", 8080)
    health_listen: tuple[str, int] | None = ("0.0.0.0", 8081)
    fleet_interval_seconds: float = 60.0
    llm_config: Path | None = None


def default_priority() -> int:
    """A distinct kopf peering priority per replica (same-priority peers would all pause)."""
    identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    return 1 + int(hashlib.sha256(identity.encode()).hexdigest(), 16) % 1_000_000


def parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return (host or "0.0.0.0", int(port))
