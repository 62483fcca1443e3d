"""The analysis engine: summary (+ policy) -> ranked findings and scores. Pure and deterministic."""

from __future__ import annotations

from resource_agent.analysis.catalog import RULES
from resource_agent.analysis.correlate import correlate
from resource_agent.analysis.policy import Policy
from resource_agent.analysis.rule import Rule
from resource_agent.analysis.scores import score
from resource_agent.analysis.support import window_seconds
from resource_agent.api.findings import Analysis, Finding
from resource_agent.api.summary import NodeSummary

DEFAULT_POLICY = Policy()


def window_is_sustained(summary: NodeSummary, policy: Policy) -> bool:
    """Whether the window is long enough for sustained (utilisation, pressure) rules."""
    sustain = policy.sustain
    return summary.window.samples >= sustain.min_samples and window_seconds(summary) >= sustain.min_window_seconds


def run_rule(rule: Rule, summary: NodeSummary, policy: Policy) -> list[Finding]:
    """One rule's findings, with the policy's severity override applied."""
    findings = rule(summary, policy)
    override = policy.severity_override(rule.id)
    if override is None:
        return findings
    return [finding.model_copy(update={"severity": override}) for finding in findings]


def rank(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then the rule's weight, then target and rule for a stable order."""
    return sorted(
        findings,
        key=lambda f: (-f.severity.rank, -RULES[f.rule].weight, f.target.key(), f.rule),
    )


def analyze(summary: NodeSummary, policy: Policy | None = None) -> Analysis:
    """Run every enabled rule over `summary`; return the ranked findings, those sharing a root
    cause correlated into one, and the node's scores."""
    policy = policy or DEFAULT_POLICY
    sustained = window_is_sustained(summary, policy)
    findings: list[Finding] = []
    for rule_id, rule in RULES.items():
        if not policy.is_enabled(rule_id) or (rule.sustained and not sustained):
            continue
        findings.extend(run_rule(rule, summary, policy))
    # scores judge every symptom; people get one finding per root cause (analysis.correlate)
    scores = score(summary, findings)
    return Analysis(node_name=summary.node_name, findings=rank(correlate(findings, rule_weight)), scores=scores)


def rule_weight(rule_id: str) -> int:
    rule = RULES.get(rule_id)
    return rule.weight if rule else 0
