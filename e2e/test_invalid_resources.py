"""Invalid custom resources are refused by the real API server, each with a message that says why.

The generated CRDs (crds/) are applied to the local control plane; every row of the table is an
object (or an update of a valid one) that must be refused, and the message the server returns
must name the field: wrong enum values, missing required fields, a bad decision, a report whose
name is not its node (CEL), and the fields that are immutable (CEL transition rules).
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from e2e.providers import ClusterHandle
from e2e.test_admission import _crd_files, wait_established

GROUP_VERSION = "resource.optiinfra.io/v1alpha1"
CRDS = ("resourcereports", "resourcerecommendations", "workloadusagecheckpoints")


def _report(name: str) -> dict[str, Any]:
    return {"apiVersion": GROUP_VERSION, "kind": "ResourceReport", "metadata": {"name": name}, "spec": {"nodeName": name}}


def _recommendation(name: str) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "ResourceRecommendation",
        "metadata": {"name": name},
        "spec": {
            "nodeName": "gpu-node-a",
            "target": {"kind": "GPU", "name": "gpu-0", "gpuIndex": 0},
            "rule": "gpu-underutilized",
            "category": "gpu",
            "severity": "warning",
            "summary": "GPU 0 idles.",
            "action": {"type": "consolidate-gpu-workloads", "parameters": {"gpuIndex": 0}},
            "expectedImpact": "One GPU freed.",
            "decision": "Pending",
        },
    }


def _checkpoint(name: str) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "WorkloadUsageCheckpoint",
        "metadata": {"name": name},
        "spec": {"target": {"kind": "Deployment", "namespace": "llm", "name": "vllm"}, "horizonSeconds": 86400, "halfLifeSeconds": 3600},
    }


def _with(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `body` with the dotted `path` set to `value` (None removes it)."""
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[part]
    if value is None:
        node.pop(last)
    else:
        node[last] = value
    return body


# (case id, object, expected words in the server's message)
CREATE_CASES = [
    ("recommendation-severity-enum", _with(_recommendation("x"), "spec.severity", "catastrophic"), ["spec.severity", "Unsupported value", '"catastrophic"']),
    ("recommendation-category-enum", _with(_recommendation("x"), "spec.category", "vibes"), ["spec.category", "Unsupported value"]),
    ("recommendation-action-enum", _with(_recommendation("x"), "spec.action.type", "rm-rf"), ["spec.action.type", "Unsupported value"]),
    ("recommendation-target-kind-enum", _with(_recommendation("x"), "spec.target.kind", "Secret"), ["spec.target.kind", "Unsupported value"]),
    ("recommendation-bad-decision", _with(_recommendation("x"), "spec.decision", "Approve"), ["spec.decision", "Unsupported value", '"Approved"']),
    ("recommendation-decision-lowercase", _with(_recommendation("x"), "spec.decision", "approved"), ["spec.decision", "Unsupported value"]),
    ("recommendation-missing-rule", _with(_recommendation("x"), "spec.rule", None), ["spec.rule", "Required value"]),
    ("recommendation-missing-action", _with(_recommendation("x"), "spec.action", None), ["spec.action", "Required value"]),
    ("recommendation-missing-target-name", _with(_recommendation("x"), "spec.target.name", None), ["spec.target.name", "Required value"]),
    ("recommendation-summary-too-long", _with(_recommendation("x"), "spec.summary", "s" * 1025), ["spec.summary", "Too long"]),
    ("recommendation-snooze-not-a-time", _with(_recommendation("x"), "spec.snoozeUntil", "tomorrow"), ["spec.snoozeUntil", "date-time"]),
    ("recommendation-missing-spec", _with(_recommendation("x"), "spec", None), ["spec", "Required value"]),
    ("report-missing-node-name", _with(_report("gpu-node-x"), "spec.nodeName", None), ["spec.nodeName", "Required value"]),
    ("report-name-is-not-its-node", _with(_report("gpu-node-x"), "spec.nodeName", "gpu-node-y"), ["metadata.name must equal spec.nodeName"]),
    ("checkpoint-missing-horizon", _with(_checkpoint("x"), "spec.horizonSeconds", None), ["spec.horizonSeconds", "Required value"]),
    ("checkpoint-zero-half-life", _with(_checkpoint("x"), "spec.halfLifeSeconds", 0), ["spec.halfLifeSeconds", "should be greater than 0"]),
    ("checkpoint-target-kind-enum", _with(_checkpoint("x"), "spec.target.kind", "CronJob"), ["spec.target.kind", "Unsupported value"]),
]

# (case id, valid object, dotted field, new value, expected words)
UPDATE_CASES = [
    ("recommendation-node-name-immutable", _recommendation, "spec.nodeName", "gpu-node-b", ["spec.nodeName is immutable"]),
    ("recommendation-rule-immutable", _recommendation, "spec.rule", "gpu-idle", ["spec.rule is immutable"]),
    ("report-node-name-immutable", _report, "spec.nodeName", "other-node", ["spec.nodeName is immutable"]),
    ("checkpoint-target-immutable", _checkpoint, "spec.target.name", "other", ["spec.target is immutable"]),
]


@pytest.fixture(scope="module")
def crds(cluster: ClusterHandle) -> None:
    for path in _crd_files():
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    for plural in CRDS:
        wait_established(cluster, f"{plural}.resource.optiinfra.io")


def _refused(cluster: ClusterHandle, verb: str, body: dict[str, Any]) -> str:
    result = cluster.kubectl(verb, "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0, f"accepted: {result.stdout}"
    return result.stderr


@pytest.mark.parametrize(("case", "body", "words"), CREATE_CASES, ids=[case[0] for case in CREATE_CASES])
def test_invalid_resource_is_refused_with_a_clear_message(cluster: ClusterHandle, crds: None, case: str, body: dict[str, Any], words: list[str]) -> None:
    body = copy.deepcopy(body)
    if body["kind"] != "ResourceReport":
        body["metadata"]["name"] = f"{case[:40]}-{uuid.uuid4().hex[:6]}"
    message = _refused(cluster, "create", body)
    assert "is invalid" in message, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


@pytest.mark.parametrize(("case", "make", "field", "value", "words"), UPDATE_CASES, ids=[case[0] for case in UPDATE_CASES])
def test_immutable_field_change_is_refused(cluster: ClusterHandle, crds: None, case: str, make: Any, field: str, value: Any, words: list[str]) -> None:
    name = f"imm-{uuid.uuid4().hex[:8]}"
    body = make(name)
    cluster.kubectl("create", "-f", "-", input=json.dumps(body))
    try:
        message = _refused(cluster, "replace", _with(body, field, value))
        for word in words:
            assert word in message, f"{word!r} not in {message!r}"
    finally:
        cluster.kubectl("delete", body["kind"].lower(), name, "--ignore-not-found", "--wait=false", check=False)


def test_the_valid_bodies_are_accepted(cluster: ClusterHandle, crds: None) -> None:
    """The table's base objects are valid, so each refusal above is the one change it makes."""
    name = f"valid-{uuid.uuid4().hex[:6]}"
    for body in (_recommendation(name), _report(name), _checkpoint(name)):
        result = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(body), check=False)
        assert result.returncode == 0, result.stderr
