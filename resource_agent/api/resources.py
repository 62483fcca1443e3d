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

GROUP = "resource.optiinfra.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "optiinfra"
REPORT_PLURAL = "resourcereports"
RECOMMENDATION_PLURAL = "resourcerecommendations"
NODE_LABEL = f"{GROUP}/node"
RULE_LABEL = f"{GROUP}/rule"
AGENT_FIELD_MANAGER = "resource-agent"
OPERATOR_FIELD_MANAGER = "resource-agent-operator"



# --- ResourceReport ----------------------------------------------------------------


class ResourceReportSpec(ApiModel):
    node_name: str = Field(min_length=1, max_length=253)


class ResourceReportStatus(NodeSummary):
    """The agent's window summary, plus when it was written."""

    reported_at: Timestamp


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
    target: Target
    rule: str = Field(min_length=1, max_length=128)
    category: Category
    severity: Severity
    summary: str = Field(max_length=1024)
    evidence: list[Evidence] = Field(default_factory=list, max_length=16)
    action: Action
    expected_impact: str = Field(max_length=1024)
    correlated: list[CorrelatedFinding] = Field(default_factory=list, max_length=16)  # folded in: same target, same root cause
    gpu_hours_per_day_saved: float | None = Field(default=None, ge=0)  # workload right-sizing: estimated GPU-hours per day freed
    # Owned by people / GitOps; the operator never writes these.
    decision: Decision | None = None
    snooze_until: Timestamp | None = None

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
    status: ConditionStatus
    reason: str = Field(max_length=128)
    message: str = Field(default="", max_length=2048)
    last_transition_time: Timestamp


class ApplyResult(ApiModel):
    """What carrying out an approved action did."""

    attempted_at: Timestamp
    succeeded: bool
    attempts: int = Field(ge=0)
    before: dict[str, str] = Field(default_factory=dict)
    after: dict[str, str] = Field(default_factory=dict)
    error: str | None = Field(default=None, max_length=2048)
    restart_required: bool = False
    patch: str | None = Field(default=None, max_length=8192)  # for GitOps, when a restart is needed
    message: str | None = Field(default=None, max_length=2048)


class RecommendationStatus(ApiModel):
    phase: Phase
    message: str | None = Field(default=None, max_length=2048)
    decision: Decision = Decision.PENDING  # the decision the operator last acted on
    conditions: list[Condition] = Field(default_factory=list)
    first_seen: Timestamp
    last_seen: Timestamp
    resolved_at: Timestamp | None = None
    observed_generation: int | None = None
    insight: Insight | None = None
    apply_result: ApplyResult | None = None
