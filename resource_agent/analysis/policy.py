"""The analysis policy: thresholds, sustain requirements and which rules run.

Every rule carries its default thresholds (see `analysis.rule`); a policy only
overrides what it names. The policy knows no rule: the names it mentions are
checked against the table it is given (`analysis.catalog.load_policy` hands in
the engine's). Loaded from YAML (the Helm chart mounts one from a
ConfigMap); unknown keys, rules and thresholds are errors that name the key.
Defaults are documented in docs/policy.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from resource_agent.api.findings import Severity
from resource_agent.config.yaml_lines import key_lines, line_of, yaml_error_line

KnownRules = Mapping[str, Mapping[str, float]]  # rule id -> its default thresholds


class PolicyError(ValueError):
    """The policy file or mapping is invalid; the message names the bad key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleSettings(_Strict):
    """Per-rule overrides."""

    enabled: bool = True
    severity: Severity | None = None  # replaces the severity the rule chose
    thresholds: dict[str, float] = Field(default_factory=dict)


class SustainPolicy(_Strict):
    """How much window a sustained rule (utilisation, pressure, ...) needs before it may fire.

    Event rules (ECC, XID, row remapping, unreachable cache) fire on a single sample.
    """

    min_samples: int = Field(default=5, ge=1)
    min_window_seconds: float = Field(default=0.0, ge=0.0)


class Policy(_Strict):
    sustain: SustainPolicy = Field(default_factory=SustainPolicy)
    enabled_rules: list[str] | None = None  # when set, only these rules run
    disabled_rules: list[str] = Field(default_factory=list)
    rules: dict[str, RuleSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_are_known(self, info: ValidationInfo) -> Policy:
        known: KnownRules | None = (info.context or {}).get("known_rules")
        if known is None:
            return self
        named = [("enabled_rules", r) for r in self.enabled_rules or []]
        named += [("disabled_rules", r) for r in self.disabled_rules]
        named += [("rules", r) for r in self.rules]
        for key, rule_id in named:
            if rule_id not in known:
                raise ValueError(f"{key}: unknown rule {rule_id!r}")
        for rule_id, settings in self.rules.items():
            defaults = known[rule_id]
            for name in settings.thresholds:
                if name not in defaults:
                    raise ValueError(
                        f"rules.{rule_id}.thresholds.{name}: unknown threshold (known: {', '.join(sorted(defaults))})"
                    )
        return self

    def is_enabled(self, rule_id: str) -> bool:
        if self.enabled_rules is not None and rule_id not in self.enabled_rules:
            return False
        if rule_id in self.disabled_rules:
            return False
        settings = self.rules.get(rule_id)
        return settings is None or settings.enabled

    def threshold_overrides(self, rule_id: str) -> Mapping[str, float]:
        """The thresholds this policy sets for `rule_id` (the rule merges them with its defaults)."""
        settings = self.rules.get(rule_id)
        return settings.thresholds if settings else {}

    def severity_override(self, rule_id: str) -> Severity | None:
        settings = self.rules.get(rule_id)
        return settings.severity if settings else None

    @classmethod
    def from_mapping(
        cls, data: Any, source: str = "policy", known_rules: KnownRules | None = None, lines: Mapping[tuple[str, ...], int] | None = None
    ) -> Policy:
        """Validate `data`; with `known_rules` (rule id -> default thresholds) also the names it uses.

        `lines` (key path -> line, from `config.yaml_lines.key_lines`) puts the line before each error."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise PolicyError(f"{source}: the policy must be a mapping, got {type(data).__name__}")
        try:
            return cls.model_validate(data, context={"known_rules": known_rules})
        except ValidationError as exc:
            raise PolicyError(f"{source}: {_describe(exc, lines or {})}") from None

    @classmethod
    def from_yaml(cls, path: str | Path, known_rules: KnownRules | None = None) -> Policy:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read the policy: {exc.strerror or exc}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            line = yaml_error_line(exc)
            raise PolicyError(f"{path}:{f' line {line}:' if line else ''} not valid YAML: {exc}") from None
        return cls.from_mapping(data, source=str(path), known_rules=known_rules, lines=key_lines(text))


def _describe(exc: ValidationError, lines: Mapping[tuple[str, ...], int]) -> str:
    messages = []
    for error in exc.errors():
        parts = [str(part) for part in error["loc"]]
        location = ".".join(parts)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        if not parts:  # the name checks: "<dotted key>: unknown rule 'x'" or "<dotted key>: unknown threshold"
            head, _, rest = message.partition(": ")
            parts = head.split(".") + ([rest.split("'")[1]] if rest.startswith("unknown rule '") else [])
        line = line_of(lines, parts)
        text = f"{location}: {message}" if location else message
        messages.append(f"line {line}: {text}" if line else text)
    return "; ".join(messages)
