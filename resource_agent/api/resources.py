"""The custom resources: ResourceReport and ResourceRecommendation.

These pydantic models are the single source of the CRD schemas
(`resource_agent.api.crd` generates crds/*.yaml from them).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from resource_agent.api.base import ApiModel
from resource_agent.api.findings import Action, Category, CorrelatedFinding, Evidence, Finding, Severity, Target
from resource_agent.api.insight import Insight
from resource_agent.api.summary import NodeSummary
from resource_agent.api.timestamps import Timestamp

# --- ResourceReport ----------------------------------------------------------------


class ResourceReportSpec(ApiModel):
    """Which node the report describes; the agent on that node writes the status."""

    node_name: str = Field(min_length=1, max_length=253)
    """Name of the node the report describes (equal to metadata.name; immutable)."""


class ResourceReportStatus(NodeSummary):
    """The agent's window summary, plus when it was written."""

    reported_at: Timestamp
    """When the agent wrote this report (RFC 3339)."""


# --- ResourceRecommendation ----------------------------------------------------------


class Decision(StrEnum):
    PENDING = "Pending"
    APPROVED = "Approved"
    DISMISSED = "Dismissed"


class Phase(StrEnum):
    OPEN = "Open"
    APPLYING = "Applying"
    APPLIED = "Applied"
    FAILED = "Failed"
    RESOLVED = "Resolved"
    DISMISSED = "Dismissed"


class RecommendationSpec(ApiModel):
    """What the operator found (operator-owned) and what people decided (people-owned)."""

    node_name: str = Field(min_length=1, max_length=253)
    """Node the recommendation is about (immutable)."""
    target: Target
    """What on the node the recommendation is about."""
    rule: str = Field(min_length=1, max_length=128)
    """The analysis rule that found it (immutable); docs/rules.md lists them."""
    category: Category
    """gpu, cpu, memory, disk, network, cache or hardware."""
    severity: Severity
    """info, warning or critical."""
    summary: str = Field(max_length=1024)
    """One line: what was found."""
    evidence: list[Evidence] = Field(default_factory=list, max_length=16)
    """The measurements that made the rule fire."""
    action: Action
    """The proposed action (type and parameters)."""
    expected_impact: str = Field(max_length=1024)
    """What improves once the action is done."""
    correlated: list[CorrelatedFinding] = Field(default_factory=list, max_length=16)
    """Findings folded into this one: same target, same root cause."""
    gpu_hours_per_day_saved: float | None = Field(default=None, ge=0)
    """Workload right-sizing: estimated GPU-hours per day freed."""
    # Owned by people / GitOps; the operator never writes these.
    decision: Decision | None = None
    """Set by people or GitOps, never by the operator: Approved asks the operator to carry out
    the action (for actions it can apply), Dismissed closes the recommendation, Pending (the
    default) leaves it open."""
    snooze_until: Timestamp | None = None
    """Set by people: hide the recommendation until this time (RFC 3339)."""

    @classmethod
    def from_finding(cls, finding: Finding) -> RecommendationSpec:
        return cls(
            node_name=finding.node_name,
            target=finding.target,
            rule=finding.rule,
            category=finding.category,
            severity=finding.severity,
            summary=finding.summary,
            evidence=finding.evidence,
            action=finding.action,
            expected_impact=finding.expected_impact,
            correlated=finding.correlated,
            gpu_hours_per_day_saved=finding.gpu_hours_per_day_saved,
        )


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    type: str = Field(max_length=64)
    """Condition type, e.g. Applied."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str = Field(max_length=128)
    """A CamelCase reason for the last transition."""
    message: str = Field(default="", max_length=2048)
    """A human-readable message about the last transition."""
    last_transition_time: Timestamp
    """When the condition last changed status (RFC 3339)."""


class ApplyResult(ApiModel):
    """What carrying out an approved action did."""

    attempted_at: Timestamp
    """When the operator last tried to carry out the action (RFC 3339)."""
    succeeded: bool
    """True when the action took effect."""
    attempts: int = Field(ge=0)
    """How many times the operator tried."""
    before: dict[str, str] = Field(default_factory=dict)
    """Settings before the change."""
    after: dict[str, str] = Field(default_factory=dict)
    """Settings after the change."""
    error: str | None = Field(default=None, max_length=2048)
    """Why the last attempt failed."""
    restart_required: bool = False
    """True when the change takes effect only after a restart."""
    patch: str | None = Field(default=None, max_length=8192)
    """A patch for GitOps, when a restart is needed to make the change stick."""
    message: str | None = Field(default=None, max_length=2048)
    """What the operator did."""


class RecommendationStatus(ApiModel):
    """What the operator did with the recommendation (operator-owned)."""

    phase: Phase
    """Open, Applying, Applied, Failed, Resolved or Dismissed."""
    message: str | None = Field(default=None, max_length=2048)
    """What the operator says about the current phase."""
    decision: Decision = Decision.PENDING
    """The decision the operator last acted on."""
    conditions: list[Condition] = Field(default_factory=list)
    """Standard Kubernetes conditions."""
    first_seen: Timestamp
    """When the finding was first seen (RFC 3339)."""
    last_seen: Timestamp
    """When the finding was last seen in a report (RFC 3339)."""
    resolved_at: Timestamp | None = None
    """When the finding stopped appearing (RFC 3339)."""
    observed_generation: int | None = None
    """The spec generation the operator last acted on."""
    insight: Insight | None = None
    """LLM explanation of the node's findings, when LLM insight is on."""
    apply_result: ApplyResult | None = None
    """What carrying out an approved action did."""
