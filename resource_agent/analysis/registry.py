"""The rule registry: every rule is a plain function registered with its metadata.

After k8sgpt's analyzers: one function per rule, `(summary, policy) -> findings`,
with the rule's id, family, category, weight and default thresholds carried by
the `@rule` decorator and its rationale by the function's docstring.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from resource_agent.api.findings import ActionType, Category, Finding
from resource_agent.api.summary import NodeSummary

if TYPE_CHECKING:
    from resource_agent.analysis.policy import Policy

RuleFunction = Callable[[NodeSummary, "Policy"], list[Finding]]


@dataclass(frozen=True)
class RuleInfo:
    """A registered rule and what the policy, the docs and the ranking need to know about it."""

    id: str
    family: str
    category: Category
    actions: tuple[ActionType, ...]  # the action types its findings may carry
    weight: int  # ranks findings of equal severity: higher first
    sustained: bool  # needs the policy's minimum window before it may fire
    defaults: Mapping[str, float]
    rationale: str
    function: RuleFunction


RULES: dict[str, RuleInfo] = {}


def rule(
    rule_id: str,
    *,
    actions: tuple[ActionType, ...],
    family: str,
    category: Category,
    weight: int,
    defaults: Mapping[str, float],
    sustained: bool = True,
) -> Callable[[RuleFunction], RuleFunction]:
    """Register a rule function under `rule_id`; its docstring is the rationale.

    `actions` lists the action types the rule's findings may carry (the docs and the
    engine's check use it)."""

    def decorate(function: RuleFunction) -> RuleFunction:
        if rule_id in RULES:
            raise ValueError(f"rule {rule_id!r} is registered twice")
        rationale = inspect.getdoc(function)
        if not rationale:
            raise ValueError(f"rule {rule_id!r} needs a docstring with its rationale")
        RULES[rule_id] = RuleInfo(
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
        return function

    return decorate


def all_rules() -> dict[str, RuleInfo]:
    """Every registered rule, with the rule modules imported."""
    import resource_agent.analysis.rules  # noqa: F401  (registers the families)

    return RULES
