"""GPU nodes that only a device plugin announces: the label the chart's agent affinity can select (pure).

Node affinity selects on labels, never on capacity, so a node whose `nvidia.com/gpu`
capacity comes from a device plugin alone (no GPU feature discovery, no NFD, no cloud
accelerator label) gets no agent from the chart's default GPU node affinity. The
operator's fleet pass gives each such node one label the chart owns,
`resource.optiinfra.io/gpu-capacity=true`, and the chart's affinity has a term for it;
the label goes again when the node's allocatable GPUs drop to 0 or it gains one of the
GPU labels itself.

"Has a GPU label" is decided with the agent's own node selector terms (the chart passes
`agent.gpuNodeAffinity.nodeSelectorTerms` to the operator), evaluated the way the
scheduler evaluates required node affinity: terms ORed, expressions within a term ANDed.
The operator's own label never counts as a GPU label here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
GPU_CAPACITY_LABEL = "resource.optiinfra.io/gpu-capacity"
GPU_CAPACITY_VALUE = "true"

# The chart's default agent.gpuNodeAffinity.nodeSelectorTerms (used when no file names them).
DEFAULT_GPU_NODE_SELECTOR_TERMS: tuple[dict[str, Any], ...] = (
    {"matchExpressions": [{"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]}]},
    {"matchExpressions": [{"key": "feature.node.kubernetes.io/pci-10de.present", "operator": "In", "values": ["true"]}]},
    {"matchExpressions": [{"key": "cloud.google.com/gke-accelerator", "operator": "Exists"}]},
    {"matchExpressions": [{"key": "k8s.amazonaws.com/accelerator", "operator": "Exists"}]},
    {"matchExpressions": [{"key": "kubernetes.azure.com/accelerator", "operator": "Exists"}]},
)

_OPERATORS = {"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"}


class SelectorError(ValueError):
    """The node selector terms are not a list of nodeSelectorTerms."""


def validate_terms(terms: object) -> tuple[dict[str, Any], ...]:
    """`terms` as a tuple of nodeSelectorTerms; SelectorError names what is wrong."""
    if not isinstance(terms, list | tuple):
        raise SelectorError("GPU node selector terms must be a list of nodeSelectorTerms")
    checked = []
    for i, term in enumerate(terms):
        if not isinstance(term, dict) or not set(term) <= {"matchExpressions", "matchFields"}:
            raise SelectorError(f"term {i}: a mapping with matchExpressions and/or matchFields")
        for kind in ("matchExpressions", "matchFields"):
            for expression in term.get(kind) or []:
                if not isinstance(expression, dict) or not isinstance(expression.get("key"), str):
                    raise SelectorError(f"term {i}: each of {kind} needs a key")
                if expression.get("operator") not in _OPERATORS:
                    raise SelectorError(f"term {i}: operator {expression.get('operator')!r} is not one of {sorted(_OPERATORS)}")
                if not isinstance(expression.get("values") or [], list):
                    raise SelectorError(f"term {i}: values must be a list")
        checked.append(term)
    return tuple(checked)


def _matches_expression(fields: Mapping[str, str], expression: Mapping[str, Any]) -> bool:
    key, operator = expression["key"], expression["operator"]
    values = [str(value) for value in expression.get("values") or []]
    present = key in fields
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator == "In":
        return present and fields[key] in values
    if operator == "NotIn":
        return not present or fields[key] not in values
    # Gt / Lt: one integer value, compared with the label's integer value
    try:
        observed, bound = int(fields[key]), int(values[0])
    except (KeyError, IndexError, ValueError):
        return False
    return observed > bound if operator == "Gt" else observed < bound


def matches_term(labels: Mapping[str, str], name: str, term: Mapping[str, Any]) -> bool:
    """One nodeSelectorTerm: its expressions ANDed; a term with no expressions matches nothing (as the scheduler)."""
    expressions = list(term.get("matchExpressions") or [])
    fields = list(term.get("matchFields") or [])
    if not expressions and not fields:
        return False
    return all(_matches_expression(labels, e) for e in expressions) and all(
        _matches_expression({"metadata.name": name}, f) for f in fields
    )


def node_labels(node: Mapping[str, Any]) -> dict[str, str]:
    return dict((node.get("metadata") or {}).get("labels") or {})


def allocatable_gpus(node: Mapping[str, Any]) -> int:
    """The node's allocatable nvidia.com/gpu (0 when it has none or it is not a number)."""
    raw = ((node.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE)
    try:
        return int(str(raw)) if raw is not None else 0
    except ValueError:
        return 0


def has_gpu_label(node: Mapping[str, Any], terms: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the agent's GPU node affinity selects the node without the operator's own label."""
    labels = node_labels(node)
    labels.pop(GPU_CAPACITY_LABEL, None)
    name = str((node.get("metadata") or {}).get("name", ""))
    return any(matches_term(labels, name, term) for term in terms)


def wants_label(node: Mapping[str, Any], terms: Sequence[Mapping[str, Any]]) -> bool:
    """GPUs the scheduler can hand out, and no label of its own that the agent's affinity selects."""
    return allocatable_gpus(node) > 0 and not has_gpu_label(node, terms)


@dataclass(frozen=True)
class LabelChange:
    node: str
    add: bool  # True: set the label; False: remove it
    gpus: int  # allocatable nvidia.com/gpu, for the message

    def patch(self) -> dict[str, Any]:
        return label_patch(self.add)

    def message(self) -> str:
        if self.add:
            return (f"labelled {GPU_CAPACITY_LABEL}={GPU_CAPACITY_VALUE}: {self.gpus} allocatable {GPU_RESOURCE} and "
                    f"none of the agent's GPU node labels, so the resource agent's DaemonSet selects it")
        return (f"removed {GPU_CAPACITY_LABEL}: " + (f"no allocatable {GPU_RESOURCE}" if self.gpus == 0
                else "the node carries one of the agent's GPU node labels itself"))


def label_patch(add: bool) -> dict[str, Any]:
    """The JSON merge patch that sets (add) or removes the label, and touches nothing else."""
    return {"metadata": {"labels": {GPU_CAPACITY_LABEL: GPU_CAPACITY_VALUE if add else None}}}


def plan_labels(nodes: Iterable[Mapping[str, Any]], terms: Sequence[Mapping[str, Any]]) -> list[LabelChange]:
    """The nodes whose label must change (sorted by name); nodes already right cost nothing."""
    changes = []
    for node in nodes:
        name = str((node.get("metadata") or {}).get("name", ""))
        current = node_labels(node).get(GPU_CAPACITY_LABEL)
        wanted = wants_label(node, terms)
        if wanted and current != GPU_CAPACITY_VALUE:
            changes.append(LabelChange(name, True, allocatable_gpus(node)))
        elif not wanted and current is not None:
            changes.append(LabelChange(name, False, allocatable_gpus(node)))
    return sorted(changes, key=lambda change: change.node)
