"""LLM insight: the model's answer and what a ResourceRecommendation stores.

`InsightAnswer` is what the LLM must answer with; its JSON schema is sent to
the provider and the reply is validated against it. `Insight` is the answer
plus provenance (model, provider, latency, tokens, fingerprint), stored in
`ResourceRecommendation.status.insight`. The LLM explains and prioritises the
rule-based findings; it never creates or changes their actions.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from resource_agent.api.base import ApiModel
from resource_agent.api.timestamps import Timestamp

SUMMARY_MAX = 1000
STEP_MAX = 500
STEPS_MAX = 10
RISK_MAX = 300
RISKS_MAX = 5
IMPACT_MAX = 500

Step = Annotated[str, Field(min_length=1, max_length=STEP_MAX)]
Risk = Annotated[str, Field(min_length=1, max_length=RISK_MAX)]


class InsightAnswer(ApiModel):
    """The structured answer the LLM must give (validated, then retried once if invalid).

    Unknown keys are ignored rather than rejected: they carry nothing we use.
    """

    model_config = ConfigDict(extra="ignore")

    summary: str = Field(
        min_length=1,
        max_length=SUMMARY_MAX,
        description="What is wrong on the node and why it matters, in two or three sentences.",
    )
    priority: int = Field(
        ge=1, le=5, description="Urgency of acting on these findings: 1 (act now) to 5 (whenever convenient)."
    )
    steps: list[Step] = Field(
        max_length=STEPS_MAX,
        description=f"Ordered steps an SRE should take, most important first (at most {STEPS_MAX}).",
    )
    expected_impact: str = Field(max_length=IMPACT_MAX, description="What improves once the steps are done.")
    risks: list[Risk] = Field(
        max_length=RISKS_MAX, description=f"Risks of the steps or of doing nothing (at most {RISKS_MAX})."
    )
    confidence: float = Field(ge=0.0, le=1.0, description="Confidence in this assessment, 0 to 1.")


class Insight(ApiModel):
    """An LLM explanation of one node's findings, with its provenance."""

    summary: str = Field(max_length=SUMMARY_MAX)
    """What is wrong on the node and why it matters."""
    priority: int = Field(ge=1, le=5)
    """Urgency: 1 (act now) to 5 (whenever convenient)."""
    steps: list[Step] = Field(default_factory=list, max_length=STEPS_MAX)
    """Ordered steps an SRE should take, most important first."""
    expected_impact: str = Field(default="", max_length=IMPACT_MAX)
    """What improves once the steps are done."""
    risks: list[Risk] = Field(default_factory=list, max_length=RISKS_MAX)
    """Risks of the steps or of doing nothing."""
    confidence: float = Field(ge=0.0, le=1.0)
    """The model's confidence in this assessment (0-1)."""
    model: str = Field(max_length=200)
    """LLM model that wrote the insight."""
    provider: str = Field(max_length=50)
    """LLM provider (groq or openai-compatible)."""
    latency_seconds: float = Field(ge=0.0)
    """How long the request took, in seconds."""
    prompt_tokens: int = Field(ge=0)
    """Tokens in the prompt."""
    completion_tokens: int = Field(ge=0)
    """Tokens in the answer."""
    fingerprint: str = Field(max_length=64)
    """Fingerprint of the findings explained; an unchanged fingerprint reuses the insight."""
    generated_at: Timestamp
    """When the insight was written (RFC 3339)."""
