"""Redaction: replace identifying values by stable placeholders before anything leaves, restore them after.

Like k8sgpt's anonymize step, the values to hide come from the findings
themselves (each `Finding.sensitive` entry, its node, target and pod/namespace
fields, and the summary's pod, namespace and GPU names) plus patterns for
IPv4/IPv6 addresses and UUIDs (GPU-…/MIG-… included). Placeholders are
`<kind>-<n>` (`node-1`, `pod-2`, `uuid-3`), numbered in order of first
appearance, so the same input always masks the same way. The kind of a
`Sensitive` entry is the prefix of its own masked value (`pod-8b11cfe3` ->
`pod`), else what the value looks like (uuid, ip) or `name`. Values of 8
characters or more are masked wherever they occur, shorter ones as whole words. `restore` puts the
real values back into the model's answer.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial

from resource_agent.api.findings import Finding, Sensitive, TargetKind
from resource_agent.api.summary import NodeSummary

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("uuid", re.compile(rf"(?:\b(?:GPU|MIG)-)?\b{_UUID}\b")),
    ("ip", re.compile(r"(?<![\w.:])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")),
    ("ip", re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])")),
)
# Shorter values ("0", "ml") would mask digits and words everywhere and identify nothing.
MIN_SENSITIVE_LENGTH = 3
WHOLE_WORD_BELOW = 8
_MASKED_KIND = re.compile(r"([a-z][a-z-]*?)-[0-9a-z]{4,}")


@dataclass
class Redactor:
    """Masks known and pattern-matched values; one per request, so numbering is per request."""

    enabled: bool = True
    _masked_by_value: dict[str, str] = field(default_factory=dict, init=False)
    _value_by_masked: dict[str, str] = field(default_factory=dict, init=False)
    _counts: dict[str, int] = field(default_factory=dict, init=False)
    _known: re.Pattern[str] | None = field(default=None, init=False)
    _placeholder: re.Pattern[str] | None = field(default=None, init=False)

    @classmethod
    def for_findings(
        cls, node_name: str, findings: Iterable[Finding], summary: NodeSummary | None, enabled: bool = True
    ) -> Redactor:
        redactor = cls(enabled=enabled)
        if enabled:
            for kind, value in _sensitive_values(node_name, findings, summary):
                redactor.add(kind, value)
        return redactor

    def add(self, kind: str, value: str) -> str:
        """Register a value to hide; returns its placeholder (the same one for the same value)."""
        if len(value) < MIN_SENSITIVE_LENGTH or not self.enabled:
            return value
        masked = self._masked_by_value.get(value)
        if masked is None:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            masked = f"{kind}-{self._counts[kind]}"
            self._masked_by_value[value] = masked
            self._value_by_masked[masked] = value
            self._known = self._placeholder = None
        return masked

    def mask(self, text: str) -> str:
        """Replace every registered value (longest first) and every IP/UUID in `text`."""
        if not self.enabled or not text:
            return text
        if self._masked_by_value:
            text = self._known_pattern().sub(lambda m: self._masked_by_value[m.group(0)], text)
        for kind, pattern in _PATTERNS:
            text = pattern.sub(partial(self._mask_found, kind), text)
        return text

    def restore(self, text: str) -> str:
        """Put real values back for placeholders this redactor made; other text is untouched."""
        if not self.enabled or not text or not self._value_by_masked:
            return text
        if self._placeholder is None:
            masks = "|".join(re.escape(mask) for mask in sorted(self._value_by_masked, key=len, reverse=True))
            self._placeholder = re.compile(rf"(?<![\w-])(?:{masks})(?!\w|-\w)")
        return self._placeholder.sub(lambda m: self._value_by_masked[m.group(0)], text)

    @property
    def placeholders(self) -> dict[str, str]:
        """placeholder -> real value, for tests and debugging (never logged)."""
        return dict(self._value_by_masked)

    def _mask_found(self, kind: str, match: re.Match[str]) -> str:
        return self._mask_match(kind, match.group(0))

    def _mask_match(self, kind: str, value: str) -> str:
        if value in self._value_by_masked:  # already a placeholder
            return value
        if kind == "ip" and not _is_ip(value):
            return value
        return self.add(kind, value)

    def _known_pattern(self) -> re.Pattern[str]:
        if self._known is None:
            values = sorted(self._masked_by_value, key=len, reverse=True)
            self._known = re.compile("|".join(_known_value_pattern(value) for value in values))
        return self._known


def _known_value_pattern(value: str) -> str:
    """Long values match anywhere; short ones only as whole words, so `llm` leaves `vllm` alone."""
    if len(value) >= WHOLE_WORD_BELOW:
        return re.escape(value)
    return rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])"


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _sensitive_values(
    node_name: str, findings: Iterable[Finding], summary: NodeSummary | None
) -> list[tuple[str, str]]:
    """(kind, value) pairs to hide, in a stable order."""
    values: list[tuple[str, str]] = [("node", node_name)]
    for finding in findings:
        values.extend((_kind_of(item), item.unmasked) for item in finding.sensitive)
        target = finding.target
        values.append(("node", finding.node_name))
        values.append(("namespace", target.namespace or ""))
        values.append(("uuid", target.pod_uid or ""))
        values.append(("uuid", target.gpu_uuid or ""))
        values.append(("instance", target.lmcache_instance or ""))
        values.append(("instance", target.serving_instance or ""))
        if target.kind is TargetKind.NODE:
            values.append(("node", target.name))
        elif target.kind is TargetKind.PROCESS:
            values.append(("pod", target.name))
        elif target.kind in (TargetKind.LMCACHE_INSTANCE, TargetKind.SERVING_INSTANCE):
            values.append(("instance", target.name))
    if summary is not None:
        values.append(("node", summary.node_name))
        values.append(("node", summary.inventory.hostname))
        values.extend(("gpu", gpu.uuid) for gpu in summary.gpu.devices)
        for cache in summary.lmcache.instances:
            values.extend([("pod", cache.pod or ""), ("namespace", cache.namespace or "")])
            values.append(("instance", cache.instance))
            values.extend(("url", url) for url in cache.urls)
        for engine in summary.serving.instances:
            values.extend([("pod", engine.pod or ""), ("namespace", engine.namespace or ""), ("uuid", engine.pod_uid or "")])
            values.append(("instance", engine.instance))
            values.append(("url", engine.url or ""))
    return [(kind, value) for kind, value in values if len(value) >= MIN_SENSITIVE_LENGTH]


def _kind_of(item: Sensitive) -> str:
    hinted = _MASKED_KIND.fullmatch(item.masked)
    if hinted:
        return hinted.group(1)
    for kind, pattern in _PATTERNS:
        if pattern.fullmatch(item.unmasked) and (kind != "ip" or _is_ip(item.unmasked)):
            return kind
    return "name"
