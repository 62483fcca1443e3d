"""What a rule is: a pure function `(summary, context) -> findings` with its metadata.

After k8sgpt's analyzers: one function per rule, carried with its id, family,
category, weight and default thresholds by the `@rule` decorator, its rationale
by the function's docstring. Nothing registers itself: the engine's table
(`analysis.catalog`) lists every rule explicitly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from resource_agent.analysis.policy import Policy
from resource_agent.api.findings import ActionType, Category, Finding
from resource_agent.api.summary import NodeSummary


@dataclass(frozen=True)
class RuleContext:
    """What one rule sees of the policy: its merged thresholds, and those of rules it defers to."""

    rule: Rule
    policy: Policy

    @property
    def limits(self) -> Mapping[str, float]:
        """This rule's thresholds: its defaults with the policy's overrides applied."""
        return self.rule.thresholds(self.policy)

    def thresholds_of(self, other: Rule) -> Mapping[str, float] | None:
        """Another rule's merged thresholds, or None when the policy disables it."""
        return other.thresholds(self.policy) if self.policy.is_enabled(other.id) else None


RuleFunction = Callable[[NodeSummary, RuleContext], list[Finding]]


@dataclass(frozen=True)
class Rule:
    """A rule and what the policy, the docs and the ranking need to know about it.

    Calling it with a summary and a policy runs it as the engine does (without the
    engine's sustain gate and severity override)."""

    id: str
    family: str
    category: Category
    actions: tuple[ActionType, ...]  # the action types its findings may carry
    weight: int  # ranks findings of equal severity: higher first
    sustained: bool  # needs the policy's minimum window before it may fire
    defaults: Mapping[str, float]
    rationale: str
    function: RuleFunction = field(repr=False)

    def thresholds(self, policy: Policy) -> Mapping[str, float]:
        overrides = policy.threshold_overrides(self.id)
        return {**self.defaults, **overrides} if overrides else self.defaults

    def __call__(self, summary: NodeSummary, policy: Policy) -> list[Finding]:
        return self.function(summary, RuleContext(self, policy))


def rule(
    rule_id: str,
    *,
    actions: tuple[ActionType, ...],
    family: str,
    category: Category,
    weight: int,
    defaults: Mapping[str, float],
    sustained: bool = True,
) -> Callable[[RuleFunction], Rule]:
    """Make a `Rule` of a function; its docstring is the rationale.

    `actions` lists the action types the rule's findings may carry (the docs and the
    engine's check use it)."""

    def decorate(function: RuleFunction) -> Rule:
        rationale = inspect.getdoc(function)
        if not rationale:
            raise ValueError(f"rule {rule_id!r} needs a docstring with its rationale")
        return Rule(
            id=rule_id,
            family=family,
            category=category,
            actions=actions,
            weight=weight,
            sustained=sustained,
            defaults=MappingProxyType(dict(defaults)),
            rationale=rationale,
            function=function,
        )

    return decorate
