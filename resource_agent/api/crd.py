"""Generate the CRDs from the pydantic models (the single source of the schemas).

Pydantic emits JSON Schema (draft 2020-12); Kubernetes wants a *structural*
OpenAPI v3 schema: every node typed, no $ref, no nullable unions, properties
and additionalProperties not mixed. `structural` makes the one into the other.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from resource_agent.api.names import CATEGORY, GROUP, RECOMMENDATION_PLURAL, REPORT_PLURAL, VERSION
from resource_agent.api.resources import RecommendationSpec, RecommendationStatus, ResourceReportSpec, ResourceReportStatus
from resource_agent.api.stored import SHARED_KEYS as SHARED_GPU_KEYS
from resource_agent.api.usage import CHECKPOINT_KIND, CHECKPOINT_PLURAL, WorkloadUsageCheckpointSpec, WorkloadUsageCheckpointStatus

_DROPPED_KEYS = {"title", "default", "examples"}
# The Kubernetes API conventions' own wording, as every built-in type has it.
_API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values."
)
_KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this "
    "from the endpoint the client submits requests to. Cannot be updated. In CamelCase."
)


def structural(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model, refs inlined."""
    schema = model.model_json_schema(by_alias=True, mode="serialization")
    definitions = schema.pop("$defs", {})
    return _convert(schema, definitions)


def _convert(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        resolved = dict(definitions[node["$ref"].split("/")[-1]])
        if "description" in node:
            resolved["description"] = node["description"]
        return _convert(resolved, definitions)
    if "anyOf" in node:
        return _convert_union(node, definitions)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, definitions) for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, definitions)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = _convert(value, definitions)
        elif key == "const":
            out["enum"] = [value]
        elif key == "description":
            out[key] = " ".join(value.split())  # docstrings wrap; kubectl explain wraps again
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = _json_type(out["enum"][0])
    return out


def _convert_union(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    options = [option for option in node["anyOf"] if option.get("type") != "null"]
    # a union of scalars (action parameters) is typed at the API layer and kept as is here
    converted = _convert(options[0], definitions) if len(options) == 1 else {"x-kubernetes-preserve-unknown-fields": True}
    if "description" in node:
        converted["description"] = " ".join(node["description"].split())
    if "maxLength" in node:
        converted.setdefault("maxLength", node["maxLength"])
    return converted


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _root(spec: dict[str, Any], status: dict[str, Any], validations: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": _API_VERSION_DOC},
            "kind": {"type": "string", "description": _KIND_DOC},
            "metadata": {"type": "object"},  # the API server refuses anything else here (even a description)
            "spec": spec,
            "status": status,
        },
        "x-kubernetes-validations": validations,
    }


def _crd(
    kind: str,
    plural: str,
    short_names: list[str],
    schema: dict[str, Any],
    columns: list[dict[str, Any]],
    *,
    scope: str = "Cluster",
    status_subresource: bool = True,
) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": columns,
        "schema": {"openAPIV3Schema": schema},
    }
    if not status_subresource:
        del version["subresources"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": [CATEGORY],
            },
            "versions": [version],
        },
    }


def report_crd() -> dict[str, Any]:
    spec = structural(ResourceReportSpec)
    spec["x-kubernetes-validations"] = [
        {"rule": "self.nodeName == oldSelf.nodeName", "message": "spec.nodeName is immutable"}
    ]
    status = structural(ResourceReportStatus)
    # one writer (the agent) sets the whole status on every write: one managedFields entry for it instead of
    # one per field (the stored object is smaller; fields the agent stops sending go, as they would anyway)
    status["x-kubernetes-map-type"] = "atomic"
    # a device may leave out what gpu.shared gives for every device (validation copies it back)
    devices = status["properties"]["gpu"]["properties"]["devices"]["items"]
    devices["required"] = [name for name in devices.get("required", []) if name not in SHARED_GPU_KEYS]
    schema = _root(
        spec,
        status,
        [{"rule": "self.metadata.name == self.spec.nodeName", "message": "metadata.name must equal spec.nodeName"}],
    )
    columns: list[dict[str, Any]] = [
        {"name": "Samples", "type": "integer", "jsonPath": ".status.window.samples", "priority": 1},
        {"name": "Agent", "type": "string", "jsonPath": ".status.agentVersion"},
        {"name": "Reported", "type": "date", "jsonPath": ".status.reportedAt"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd("ResourceReport", REPORT_PLURAL, ["rreport", "rrep"], schema, columns)


def recommendation_crd() -> dict[str, Any]:
    spec = structural(RecommendationSpec)
    spec["properties"]["decision"]["default"] = "Pending"
    spec["x-kubernetes-validations"] = [
        {"rule": "self.nodeName == oldSelf.nodeName", "message": "spec.nodeName is immutable"},
        {"rule": "self.rule == oldSelf.rule", "message": "spec.rule is immutable"},
    ]
    schema = _root(spec, structural(RecommendationStatus), [])
    columns: list[dict[str, Any]] = [
        {"name": "Node", "type": "string", "jsonPath": ".spec.nodeName"},
        {"name": "Severity", "type": "string", "jsonPath": ".spec.severity"},
        {"name": "Category", "type": "string", "jsonPath": ".spec.category"},
        {"name": "Rule", "type": "string", "jsonPath": ".spec.rule"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Decision", "type": "string", "jsonPath": ".spec.decision"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Target", "type": "string", "jsonPath": ".spec.target.name", "priority": 1},
        {"name": "Target-Kind", "type": "string", "jsonPath": ".spec.target.kind", "priority": 1},
        {"name": "Namespace", "type": "string", "jsonPath": ".spec.target.namespace", "priority": 1},
        {"name": "GPU-h/day", "type": "number", "jsonPath": ".spec.gpuHoursPerDaySaved", "priority": 1},
        {"name": "Action", "type": "string", "jsonPath": ".spec.action.type", "priority": 1},
        {"name": "Last-Seen", "type": "date", "jsonPath": ".status.lastSeen", "priority": 1},
        {"name": "Summary", "type": "string", "jsonPath": ".spec.summary", "priority": 1},
    ]
    return _crd("ResourceRecommendation", RECOMMENDATION_PLURAL, ["rrec", "rrecs"], schema, columns)


def checkpoint_crd() -> dict[str, Any]:
    spec = structural(WorkloadUsageCheckpointSpec)
    spec["x-kubernetes-validations"] = [{"rule": "self.target == oldSelf.target", "message": "spec.target is immutable"}]
    schema = _root(spec, structural(WorkloadUsageCheckpointStatus), [])
    columns = [
        {"name": "Kind", "type": "string", "jsonPath": ".spec.target.kind"},
        {"name": "Workload", "type": "string", "jsonPath": ".spec.target.name"},
        {"name": "Samples", "type": "integer", "jsonPath": ".status.usage.samples"},
        {"name": "Checkpointed", "type": "date", "jsonPath": ".status.checkpointedAt"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd(CHECKPOINT_KIND, CHECKPOINT_PLURAL, ["wuc"], schema, columns, scope="Namespaced", status_subresource=False)


def all_crds() -> dict[str, dict[str, Any]]:
    """File name -> CRD document."""
    return {
        f"{GROUP}_{REPORT_PLURAL}.yaml": report_crd(),
        f"{GROUP}_{RECOMMENDATION_PLURAL}.yaml": recommendation_crd(),
        f"{GROUP}_{CHECKPOINT_PLURAL}.yaml": checkpoint_crd(),
    }


def render(crd: dict[str, Any]) -> str:
    header = "# Generated by `resource-agent crds` from resource_agent/api; do not edit.\n"
    body: str = yaml.safe_dump(crd, sort_keys=False, width=120)
    return header + body
