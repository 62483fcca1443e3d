"""Recommendation lifecycle: which phase a recommendation is in, and why (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from resource_agent.api.findings import ACTION_CATALOG, ActionType
from resource_agent.api.resources import ApplyResult, Decision, Phase


@dataclass(frozen=True)
class PhaseDecision:
    phase: Phase
    message: str
    should_apply: bool = False  # the operator must carry out the action now
    snoozed: bool = False


def effective_decision(decision: str | None) -> Decision:
    try:
        return Decision(decision) if decision else Decision.PENDING
    except ValueError:
        return Decision.PENDING


def decide_phase(
    *,
    active: bool,
    decision: Decision,
    snooze_until: datetime | None,
    action_type: ActionType,
    apply_result: ApplyResult | None,
    now: datetime,
) -> PhaseDecision:
    """The phase for a recommendation given its finding, the human decision and what was applied."""
    if not active:
        return PhaseDecision(Phase.RESOLVED, "The condition cleared in the latest report.")
    if decision is Decision.DISMISSED:
        return PhaseDecision(Phase.DISMISSED, "Dismissed by decision; the operator will not act on it.")
    if snooze_until is not None and snooze_until > now:
        return PhaseDecision(
            Phase.DISMISSED, f"Snoozed until {snooze_until.isoformat()}.", snoozed=True
        )
    spec = ACTION_CATALOG[action_type]
    if decision is Decision.APPROVED:
        if not spec.operator_applies:
            return PhaseDecision(
                Phase.OPEN,
                f"Approved, but '{action_type.value}' is advisory: the operator does not carry it out. "
                f"{spec.description}",
            )
        if apply_result is None:
            return PhaseDecision(Phase.APPLYING, "Approved; applying.", should_apply=True)
        if apply_result.succeeded:
            return PhaseDecision(Phase.APPLIED, apply_result.message or "Applied.")
        return PhaseDecision(Phase.FAILED, apply_result.error or "Applying failed.")
    return PhaseDecision(Phase.OPEN, "Waiting for a decision (spec.decision: Approved or Dismissed).")
