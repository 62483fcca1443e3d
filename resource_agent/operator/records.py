"""The operator's pure bookkeeping of recommendations: index entries, statuses and conditions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from resource_agent.api.resources import (
    ApplyResult,
    Condition,
    ConditionStatus,
    Decision,
    Phase,
    RecommendationStatus,
)
from resource_agent.api.timestamps import parse_rfc3339, utc_now
from resource_agent.operator.lifecycle import effective_decision
from resource_agent.operator.planning import SPEC_DIGEST_ANNOTATION, ExistingRecommendation


def now_utc() -> datetime:
    """Now, to the second (statuses carry whole seconds)."""
    return utc_now().replace(microsecond=0)


@dataclass(frozen=True)
class IndexedRecommendation:
    """A recommendation as the index keeps it."""

    existing: ExistingRecommendation
    status: Mapping[str, Any]
    decision: Decision
    snooze_until: datetime | None
    action_type: str | None
    severity: str | None


def index_entry(name: str, spec: Mapping[str, Any], status: Mapping[str, Any], annotations: Mapping[str, str]) -> IndexedRecommendation:
    phase = status.get("phase")
    return IndexedRecommendation(
        existing=ExistingRecommendation(
            name=name,
            node_name=spec.get("nodeName", ""),
            material_digest=annotations.get(SPEC_DIGEST_ANNOTATION),
            phase=Phase(phase) if isinstance(phase, str) and phase in Phase._value2member_map_ else None,
            last_seen=parse_rfc3339(status.get("lastSeen")),
            resolved_at=parse_rfc3339(status.get("resolvedAt")),
            rule=spec.get("rule"),
            category=spec.get("category"),
            gpu_uuid=(spec.get("target") or {}).get("gpuUuid"),
        ),
        status=dict(status),
        decision=effective_decision(spec.get("decision")),
        snooze_until=_safe_time(spec.get("snoozeUntil")),
        action_type=(spec.get("action") or {}).get("type"),
        severity=spec.get("severity"),
    )


def _safe_time(value: Any) -> datetime | None:
    try:
        return parse_rfc3339(value) if isinstance(value, str) else None
    except ValueError:
        return None


def build_status(
    previous: Mapping[str, Any], decision: Decision, phase: Phase, message: str,
    apply_result: ApplyResult | None, now: datetime, generation: int | None, *,
    last_seen: datetime | None = None, resolved_at: datetime | None = None,
) -> RecommendationStatus:
    """The whole operator-owned status, carrying over what `previous` knew (first seen, resolution time)."""
    kept = previous.get("resolvedAt") if phase is Phase.RESOLVED and resolved_at is None else resolved_at
    return RecommendationStatus(
        phase=phase,
        message=message,
        decision=decision,
        conditions=conditions(previous, phase, message, now),
        first_seen=previous.get("firstSeen") or now,
        last_seen=last_seen or previous.get("lastSeen") or now,
        resolved_at=kept,
        observed_generation=generation,
        apply_result=apply_result,
    )


def generation_of(body: Any) -> int | None:
    generation: int | None = body.get("metadata", {}).get("generation")
    return generation


def apply_result_of(status: Mapping[str, Any]) -> ApplyResult | None:
    raw = status.get("applyResult")
    if not raw:
        return None
    try:
        return ApplyResult.model_validate(raw)
    except ValidationError:
        return None


def conditions(previous: Mapping[str, Any], phase: Phase, message: str, now: datetime) -> list[Condition]:
    """One `Ready`-style condition per phase change, keeping the transition time when unchanged."""
    old = {c.get("type"): c for c in previous.get("conditions", []) if isinstance(c, Mapping)}
    conditions = []
    for kind, active in (
        ("Resolved", phase is Phase.RESOLVED),
        ("Dismissed", phase is Phase.DISMISSED),
        ("Applied", phase is Phase.APPLIED),
    ):
        state = ConditionStatus.TRUE if active else ConditionStatus.FALSE
        earlier = old.get(kind)
        transition = earlier.get("lastTransitionTime") if earlier and earlier.get("status") == state.value else now
        conditions.append(
            Condition(type=kind, status=state, reason=phase.value, message=message if active else "",
                      last_transition_time=transition)
        )
    return conditions
