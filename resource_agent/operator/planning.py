"""Reconcile planning: from a node's findings and its existing recommendations
to the smallest set of API writes (pure; the handlers carry the plan out).

- A new finding creates a recommendation (deterministic name).
- A finding whose material content (severity, action, target) changed updates
  the spec; unchanged findings cost no write, except that evidence and
  lastSeen are refreshed at most every `evidence_refresh_seconds`.
- A recommendation whose finding is gone is marked Resolved once, and deleted
  `resolved_ttl_seconds` later. A hardware fault is state, not an event: while the
  report shows it standing (`standing_faults`), its recommendation is kept (and
  created or reopened) even if the window's analysis did not raise it, and the
  hardware recommendations of a GPU the report lists as lost are held open.
- `spec.decision` and `spec.snoozeUntil` are never written here.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from resource_agent.analysis.policy import Policy
from resource_agent.analysis.rules.gpu_health import lost_gpus, standing_findings
from resource_agent.api.findings import Category, Evidence, Finding
from resource_agent.api.resources import Phase, RecommendationSpec
from resource_agent.api.summary import NodeSummary

SPEC_DIGEST_ANNOTATION = "resource.optiinfra.io/spec-digest"


@dataclass(frozen=True)
class ExistingRecommendation:
    """What the operator needs to know of a recommendation already in the cluster."""

    name: str
    node_name: str
    material_digest: str | None
    phase: Phase | None
    last_seen: datetime | None
    resolved_at: datetime | None
    rule: str | None = None
    category: str | None = None
    gpu_uuid: str | None = None


@dataclass(frozen=True)
class StandingFaults:
    """What a report shows standing, whatever its window raised: the findings its standing
    hardware faults alone raise, and the uuids of the GPUs it lists as lost."""

    findings: tuple[Finding, ...] = ()
    lost_gpu_uuids: frozenset[str] = frozenset()

    def holds(self, known: ExistingRecommendation) -> bool:
        """Whether a recommendation belongs to a GPU the report lists as lost (kept open)."""
        return known.category == Category.HARDWARE.value and known.gpu_uuid is not None and known.gpu_uuid in self.lost_gpu_uuids


NO_STANDING_FAULTS = StandingFaults()


def standing_faults(summary: NodeSummary, policy: Policy) -> StandingFaults:
    """The standing faults of a report (pure): findings with the policy's severity overrides applied."""
    findings = []
    for finding in standing_findings(summary, policy):
        override = policy.severity_override(finding.rule)
        findings.append(finding.model_copy(update={"severity": override}) if override is not None else finding)
    lost = frozenset(item.uuid for item in lost_gpus(summary) if item.uuid)
    return StandingFaults(tuple(findings), lost)


@dataclass(frozen=True)
class PlanSettings:
    evidence_refresh_seconds: float = 300.0
    resolved_ttl_seconds: float = 3600.0


@dataclass(frozen=True)
class Upsert:
    """Create the recommendation, or update its operator-owned spec."""

    name: str
    spec: RecommendationSpec
    material_digest: str
    created: bool
    reopened: bool = False


@dataclass(frozen=True)
class Resolve:
    name: str


@dataclass(frozen=True)
class Delete:
    name: str


@dataclass
class Plan:
    upserts: list[Upsert] = field(default_factory=list)
    resolves: list[Resolve] = field(default_factory=list)
    deletes: list[Delete] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # finding gone from the window, fault still standing: no write

    @property
    def writes(self) -> int:
        return len(self.upserts) + len(self.resolves) + len(self.deletes)


def material_digest(spec: RecommendationSpec) -> str:
    """Digest of what makes a finding *different*, not of its jittering numbers."""
    material: dict[str, Any] = {
        "rule": spec.rule,
        "severity": spec.severity.value,
        "category": spec.category.value,
        "target": spec.target.to_wire(),
        "action": spec.action.to_wire(),
    }
    if spec.correlated:  # absent when empty: digests of uncorrelated findings stay as they were
        material["correlated"] = sorted(item.rule for item in spec.correlated)
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def spec_for(finding: Finding) -> RecommendationSpec:
    """The recommendation spec of a finding, with evidence rounded to 3 significant digits."""
    spec = RecommendationSpec.from_finding(finding)
    spec.evidence = [_rounded(evidence) for evidence in spec.evidence]
    spec.correlated = [
        item.model_copy(update={"evidence": [_rounded(evidence) for evidence in item.evidence]}) for item in spec.correlated
    ]
    return spec


def plan_reconcile(
    findings: Sequence[Finding],
    existing: Iterable[ExistingRecommendation],
    *,
    now: datetime,
    settings: PlanSettings = PlanSettings(),
    standing: StandingFaults = NO_STANDING_FAULTS,
) -> Plan:
    """The writes that bring one node's recommendations in line with its findings.

    `standing` is what the report shows standing: its findings count as the node's findings
    (the window's own come first), and hardware recommendations of lost GPUs are held."""
    plan = Plan()
    current = {recommendation.name: recommendation for recommendation in existing}
    desired: dict[str, Finding] = {}
    for finding in (*findings, *standing.findings):
        desired.setdefault(finding.resource_name(), finding)

    for name, finding in sorted(desired.items()):
        spec = spec_for(finding)
        digest = material_digest(spec)
        known = current.get(name)
        if known is None:
            plan.upserts.append(Upsert(name, spec, digest, created=True))
        elif known.phase is Phase.RESOLVED:
            plan.upserts.append(Upsert(name, spec, digest, created=False, reopened=True))
        elif known.phase is None or known.material_digest != digest or _stale(known.last_seen, now, settings):
            plan.upserts.append(Upsert(name, spec, digest, created=False))
        else:
            plan.unchanged.append(name)

    for name, known in sorted(current.items()):
        if name in desired:
            continue
        if known.phase is not Phase.RESOLVED and standing.holds(known):
            plan.held.append(name)
        elif known.phase is not Phase.RESOLVED:
            plan.resolves.append(Resolve(name))
        elif expired(known, now, settings):
            plan.deletes.append(Delete(name))
    return plan


def expired(known: ExistingRecommendation, now: datetime, settings: PlanSettings) -> bool:
    """Resolved for longer than the TTL: time to delete it."""
    return (
        known.phase is Phase.RESOLVED
        and known.resolved_at is not None
        and now - known.resolved_at >= timedelta(seconds=settings.resolved_ttl_seconds)
    )


def _stale(last_seen: datetime | None, now: datetime, settings: PlanSettings) -> bool:
    return last_seen is None or (now - last_seen).total_seconds() >= settings.evidence_refresh_seconds


def _rounded(evidence: Evidence) -> Evidence:
    return evidence.model_copy(
        update={"observed": _significant(evidence.observed), "threshold": _significant(evidence.threshold)}
    )


def _significant(value: float, digits: int = 3) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))
