"""Fingerprints of a node's findings: what the cache and the debounce compare.

The fingerprint covers what a finding *is* — node, rule, target, severity and
action (type and non-numeric parameters) — and leaves out measurements
(evidence values, numeric action parameters such as byte counts), so the same
problem seen again in the next report cycle has the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from resource_agent.api.findings import Finding


def finding_key(finding: Finding) -> tuple[str, str, str, str, str]:
    """(node, rule, target, severity, action) of one finding, measurements left out."""
    stable_parameters = {
        name: value
        for name, value in sorted(finding.action.parameters.items())
        if isinstance(value, (str, bool))
    }
    action = f"{finding.action.type.value}{json.dumps(stable_parameters, sort_keys=True)}"
    node, rule, target = finding.identity()
    return (node, rule, target, finding.severity.value, action)


def fingerprint(node_name: str, findings: Iterable[Finding]) -> str:
    """A hex digest that is the same for the same set of findings, in any order."""
    keys = sorted({finding_key(finding) for finding in findings})
    payload = json.dumps([node_name, keys], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def severities(findings: Iterable[Finding]) -> dict[tuple[str, str, str], int]:
    """identity -> severity rank, the shape the debounce compares."""
    ranks: dict[tuple[str, str, str], int] = {}
    for finding in findings:
        identity = finding.identity()
        ranks[identity] = max(ranks.get(identity, -1), finding.severity.rank)
    return ranks


def is_material_change(before: Mapping[tuple[str, str, str], int], after: Mapping[tuple[str, str, str], int]) -> bool:
    """True when a finding appeared or an existing one got more severe (resolved or milder ones are not)."""
    return any(rank > before.get(identity, -1) for identity, rank in after.items())
