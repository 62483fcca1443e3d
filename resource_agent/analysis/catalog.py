"""Every rule the engine runs, listed explicitly (k8sgpt's analyzer map), and the policy checked against them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from resource_agent.analysis.policy import Policy
from resource_agent.analysis.rule import Rule
from resource_agent.analysis.rules import cache, gpu, gpu_health, host, serving

FAMILIES: Mapping[str, str] = {
    "gpu": "GPU utilisation, memory, clocks, power and temperature",
    "gpu_health": "GPU hardware health (ECC, row remapping, XID, NVML recovery, lost GPUs, PCIe)",
    "host": "Host CPU, memory, disk and network",
    "cache": "KV cache (LMCache)",
    "serving": "Serving engines (vLLM, SGLang): queue, KV cache, latency, prefix cache",
}

_ALL: tuple[Rule, ...] = (
    *gpu.RULES,
    *gpu_health.RULES,
    *host.RULES,
    *cache.RULES,
    *serving.RULES,
)

RULES: Mapping[str, Rule] = MappingProxyType({r.id: r for r in sorted(_ALL, key=lambda r: r.id)})
if len(RULES) != len(_ALL):
    raise ValueError("two rules share an id")

KNOWN_RULES: Mapping[str, Mapping[str, float]] = MappingProxyType({r.id: r.defaults for r in RULES.values()})


def load_policy(path: str | Path) -> Policy:
    """Read a policy YAML file; unknown keys, rules and thresholds are errors that name the key."""
    return Policy.from_yaml(path, known_rules=KNOWN_RULES)
