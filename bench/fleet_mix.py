"""What the benchmarks share: the fleet's mix of report summaries, the machine line and the doc sections.

Most nodes healthy, ~10% with findings, ~5% flapping between healthy and thermal-throttled every
report; each report is a scenario summary (one minute at 5 s, 8 GPUs) with the node's name.
"""

from __future__ import annotations

import random
from typing import TypeVar

from resource_agent.api.summary import NodeSummary
from resource_agent.node_agent.window import summarize
from resource_agent.scenarios import generate

HEALTHY = "healthy-busy"
WITH_FINDINGS = ("idle-gpu-holding-memory", "thermal-throttle", "power-capped", "cache-thrash", "cache-unused",
                 "memory-pressure", "cpu-starved-gpus", "pcie-degraded", "ecc-xid-failing")
FLAP = (HEALTHY, "thermal-throttle")
SHARE_FINDINGS = 0.10
SHARE_FLAPPING = 0.05
T = TypeVar("T")
MIX = (f"{100 * (1 - SHARE_FINDINGS - SHARE_FLAPPING):.0f}% healthy, {100 * SHARE_FINDINGS:.0f}% with findings, "
       f"{100 * SHARE_FLAPPING:.0f}% flapping (8-GPU scenario summaries)")


def node_name(i: int, prefix: str = "gpu-node") -> str:
    return f"{prefix}-{i:05d}"


def summaries() -> dict[str, list[NodeSummary]]:
    """Summaries per scenario, a few seeds of the healthy one."""
    out: dict[str, list[NodeSummary]] = {}
    for scenario in (HEALTHY, *WITH_FINDINGS):
        seeds = range(4 if scenario == HEALTHY else 1)
        out[scenario] = [summarize(list(generate(scenario, seed=seed, samples=12, gpus=8)), "template") for seed in seeds]
    return out


def kind_of(i: int, rng: random.Random) -> str:
    """Node i's kind: "flap", one of WITH_FINDINGS, or HEALTHY."""
    draw = rng.random()
    if draw < SHARE_FLAPPING:
        return "flap"
    if draw < SHARE_FLAPPING + SHARE_FINDINGS:
        return WITH_FINDINGS[i % len(WITH_FINDINGS)]
    return HEALTHY


def scenario_of(kind: str, count: int) -> str:
    """The scenario of a node's count-th report (flapping nodes alternate)."""
    return FLAP[count % 2] if kind == "flap" else kind


def pick(templates: dict[str, list[T]], i: int, kind: str, count: int) -> T:
    """Node i's count-th report template (varying over the seeds of its scenario)."""
    choices = templates[scenario_of(kind, count)]
    return choices[(i + count) % len(choices)]


def has_findings(kind: str, count: int) -> bool:
    return scenario_of(kind, count) != HEALTHY
