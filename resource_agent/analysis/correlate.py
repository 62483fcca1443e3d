"""One fault, one recommendation: fold findings that share a root cause into one (pure).

Rules judge one symptom each, so one failing GPU trips several of them (uncorrectable
ECC, a pending row remap, an XID, an NVML recovery action), each with its own action.
A person must see one line per problem with one thing to do. After the rules run, the
engine groups the findings about the same target that share a root cause and keeps one
finding per group: the one whose action is the strongest needed (the order is
`api.findings.ACTION_STRENGTH_ORDER`), at the group's worst severity, with every other
finding of the group, its rule id, severity, summary, own action and evidence, in
`correlated`.

Root causes:
- `gpu-hardware`: every hardware finding (category hardware) about the same GPU;
- `host-cpu`: host-cpu-saturated and host-cpu-starving-gpus on the node;
- `gpu-thermal`: gpu-thermal-throttling and gpu-temperature-near-slowdown on a GPU;
- `lmcache-remote`: lmcache-backend-degraded and lmcache-remote-gets-timing-out on an instance;
- `lmcache-capacity`: lmcache-low-hit-rate-evicting and lmcache-usage-near-full on an instance;
- `serving-queue`: serving-kv-cache-bound, serving-scheduler-bound and serving-latency-slo on a
  serving engine (a breached SLO is usually the queue's doing).

Findings of other rules, or alone in their group, pass unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from resource_agent.api.findings import Category, CorrelatedFinding, Finding, Sensitive, TargetKind, action_strength

GPU_HARDWARE = "gpu-hardware"
CAUSE_OF_RULE: Mapping[str, str] = MappingProxyType(
    {
        "host-cpu-saturated": "host-cpu",
        "host-cpu-starving-gpus": "host-cpu",
        "gpu-thermal-throttling": "gpu-thermal",
        "gpu-temperature-near-slowdown": "gpu-thermal",
        "lmcache-backend-degraded": "lmcache-remote",
        "lmcache-remote-gets-timing-out": "lmcache-remote",
        "lmcache-low-hit-rate-evicting": "lmcache-capacity",
        "lmcache-usage-near-full": "lmcache-capacity",
        "serving-kv-cache-bound": "serving-queue",
        "serving-scheduler-bound": "serving-queue",
        "serving-latency-slo": "serving-queue",
    }
)
MAX_CORRELATED = 16
MAX_SUMMARY = 1024


def root_cause(finding: Finding) -> str | None:
    """The root cause a finding shares with others on its target, or None when it stands alone."""
    if finding.category is Category.HARDWARE and finding.target.kind is TargetKind.GPU:
        return GPU_HARDWARE
    return CAUSE_OF_RULE.get(finding.rule)


def _strength(finding: Finding, weight: Callable[[str], int]) -> tuple[int, int, int, str]:
    # strongest action first, then severity, then the rule's weight; the rule id breaks ties
    return (action_strength(finding.action.type), finding.severity.rank, weight(finding.rule), finding.rule)


def merge(group: list[Finding], weight: Callable[[str], int] = lambda _: 0) -> Finding:
    """One finding for a group with one root cause: the strongest action, the worst severity."""
    if len(group) == 1:
        return group[0]
    ordered = sorted(group, key=lambda f: _strength(f, weight), reverse=True)
    primary, others = ordered[0], ordered[1:]
    worst = max((f.severity for f in group), key=lambda s: s.rank)
    sensitive: dict[str, Sensitive] = {}
    for finding in ordered:
        for value in finding.sensitive:
            sensitive.setdefault(value.unmasked, value)
    correlated = [
        *primary.correlated,
        *(
            CorrelatedFinding(
                rule=f.rule, severity=f.severity, summary=f.summary[:MAX_SUMMARY], action=f.action.type, evidence=f.evidence[:16]
            )
            for f in others
        ),
    ][:MAX_CORRELATED]
    related = ", ".join(f.rule for f in others)
    summary = f"{primary.summary} (also: {related})"
    if len(summary) > MAX_SUMMARY:
        summary = summary[: MAX_SUMMARY - 1] + "…"
    return primary.model_copy(
        update={"severity": worst, "summary": summary, "correlated": correlated, "sensitive": list(sensitive.values())}
    )


def correlate(findings: Iterable[Finding], weight: Callable[[str], int] = lambda _: 0) -> list[Finding]:
    """The findings with every group of one target and one root cause folded into one finding.

    Order: each group where its first finding stood; findings alone stay where they were."""
    groups: dict[tuple[str, str, str], list[Finding]] = {}
    order: list[Finding | tuple[str, str, str]] = []
    for finding in findings:
        cause = root_cause(finding)
        if cause is None:
            order.append(finding)
            continue
        key = (finding.node_name, finding.target.key(), cause)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(finding)
    return [merge(groups[item], weight) if isinstance(item, tuple) else item for item in order]
