"""Nodes with only nvidia.com/gpu capacity get the label the chart's agent affinity selects (pure logic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from resource_agent.operator.gpu_labels import (
    DEFAULT_GPU_NODE_SELECTOR_TERMS,
    GPU_CAPACITY_LABEL,
    LabelChange,
    SelectorError,
    allocatable_gpus,
    has_gpu_label,
    label_patch,
    matches_term,
    plan_labels,
    validate_terms,
)
from resource_agent.operator.settings import OperatorConfig, load_gpu_node_selector

TERMS = DEFAULT_GPU_NODE_SELECTOR_TERMS
CHART_VALUES = Path(__file__).resolve().parents[2] / "charts" / "resource-agent" / "values.yaml"


def node(name: str, gpus: int | str | None = 8, labels: dict[str, str] | None = None, capacity: int | None = None) -> dict[str, Any]:
    allocatable = {"cpu": "96"} | ({"nvidia.com/gpu": str(gpus)} if gpus is not None else {})
    status = {"allocatable": allocatable, "capacity": {"nvidia.com/gpu": str(capacity if capacity is not None else gpus)}}
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}}, "status": status}


def test_the_operators_default_terms_are_the_charts() -> None:
    values = yaml.safe_load(CHART_VALUES.read_text())
    assert list(TERMS) == values["agent"]["gpuNodeAffinity"]["nodeSelectorTerms"]


def test_a_node_with_only_gpu_capacity_is_labelled() -> None:
    [change] = plan_labels([node("plugin-only")], TERMS)
    assert change == LabelChange("plugin-only", add=True, gpus=8)
    assert "8 allocatable nvidia.com/gpu" in change.message()


@pytest.mark.parametrize("labels", [
    {"nvidia.com/gpu.present": "true"},
    {"feature.node.kubernetes.io/pci-10de.present": "true"},
    {"cloud.google.com/gke-accelerator": "nvidia-l4"},
    {"k8s.amazonaws.com/accelerator": "nvidia-tesla-a100"},
    {"kubernetes.azure.com/accelerator": "nvidia"},
])
def test_a_node_the_affinity_already_selects_is_left_alone(labels: dict[str, str]) -> None:
    assert plan_labels([node("labelled", labels=labels)], TERMS) == []


def test_cpu_nodes_and_nodes_without_allocatable_gpus_are_not_labelled() -> None:
    nodes = [node("cpu", gpus=None), node("zero", gpus=0), node("garbage", gpus="many"),
             node("plugin-down", gpus=0, capacity=8)]  # capacity but nothing allocatable: the plugin is unhealthy
    assert plan_labels(nodes, TERMS) == []
    assert allocatable_gpus(node("garbage", gpus="many")) == 0 and allocatable_gpus({}) == 0


def test_an_already_labelled_node_costs_nothing_a_wrong_value_is_fixed() -> None:
    assert plan_labels([node("done", labels={GPU_CAPACITY_LABEL: "true"})], TERMS) == []
    [change] = plan_labels([node("wrong", labels={GPU_CAPACITY_LABEL: "false"})], TERMS)
    assert change.add


def test_the_label_goes_when_gpus_go_or_a_gpu_label_arrives() -> None:
    gone = node("drained", gpus=0, labels={GPU_CAPACITY_LABEL: "true"})
    gfd = node("gfd-arrived", labels={GPU_CAPACITY_LABEL: "true", "nvidia.com/gpu.present": "true"})
    changes = plan_labels([gfd, gone], TERMS)
    assert changes == [LabelChange("drained", add=False, gpus=0), LabelChange("gfd-arrived", add=False, gpus=8)]
    assert "no allocatable" in changes[0].message() and "GPU node labels itself" in changes[1].message()


def test_the_operators_own_label_never_counts_as_a_gpu_label() -> None:
    own_term = [{"matchExpressions": [{"key": GPU_CAPACITY_LABEL, "operator": "In", "values": ["true"]}]}]
    labelled = node("plugin-only", labels={GPU_CAPACITY_LABEL: "true"})
    assert not has_gpu_label(labelled, [*TERMS, *own_term])
    assert plan_labels([labelled], [*TERMS, *own_term]) == []  # stays labelled


def test_plan_is_sorted_and_has_one_change_per_node() -> None:
    nodes = [node(f"n{i}") for i in (3, 1, 2)] + [node("n0", labels={"nvidia.com/gpu.present": "true"})]
    assert [c.node for c in plan_labels(nodes, TERMS)] == ["n1", "n2", "n3"]


def test_patch_body_sets_or_removes_only_the_label() -> None:
    assert label_patch(True) == {"metadata": {"labels": {GPU_CAPACITY_LABEL: "true"}}}
    assert label_patch(False) == {"metadata": {"labels": {GPU_CAPACITY_LABEL: None}}}  # merge patch: null deletes
    assert LabelChange("n", add=False, gpus=0).patch() == label_patch(False)


@pytest.mark.parametrize(("expression", "labels", "expected"), [
    ({"key": "a", "operator": "In", "values": ["x", "y"]}, {"a": "y"}, True),
    ({"key": "a", "operator": "In", "values": ["x"]}, {}, False),
    ({"key": "a", "operator": "NotIn", "values": ["x"]}, {}, True),
    ({"key": "a", "operator": "NotIn", "values": ["x"]}, {"a": "x"}, False),
    ({"key": "a", "operator": "Exists"}, {"a": ""}, True),
    ({"key": "a", "operator": "DoesNotExist"}, {"a": ""}, False),
    ({"key": "a", "operator": "Gt", "values": ["4"]}, {"a": "8"}, True),
    ({"key": "a", "operator": "Lt", "values": ["4"]}, {"a": "8"}, False),
    ({"key": "a", "operator": "Gt", "values": ["4"]}, {"a": "eight"}, False),
])
def test_expressions_match_as_the_scheduler_does(expression: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert matches_term(labels, "n", {"matchExpressions": [expression]}) is expected


def test_terms_and_within_or_across() -> None:
    both = {"matchExpressions": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]}
    assert not matches_term({"a": "1"}, "n", both) and matches_term({"a": "1", "b": "1"}, "n", both)
    assert not matches_term({"a": "1"}, "n", {})  # an empty term selects nothing
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}
    assert matches_term({}, "n", by_name) and not matches_term({}, "m", by_name)
    custom = [{"matchExpressions": [{"key": "example.com/gpu", "operator": "Exists"}]}]
    assert plan_labels([node("x", labels={"nvidia.com/gpu.present": "true"})], custom)[0].add  # only the given terms count


def test_selector_terms_are_validated(tmp_path: Path) -> None:
    with pytest.raises(SelectorError):
        validate_terms({"key": "a"})
    with pytest.raises(SelectorError):
        validate_terms([{"matchExpressions": [{"key": "a", "operator": "Equals"}]}])
    with pytest.raises(SelectorError):
        validate_terms([{"nodeSelector": {}}])
    path = tmp_path / "terms.yaml"
    path.write_text(yaml.safe_dump({"nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}]}))
    assert load_gpu_node_selector(path) == ({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]},)
    assert load_gpu_node_selector(None) == TERMS
    path.write_text("- matchExpressions: [{key: gpu, operator: Maybe}]\n")
    with pytest.raises(ValueError, match="gpu-node-selector"):
        load_gpu_node_selector(path)


def test_operator_config_turns_it_on(tmp_path: Path) -> None:
    assert not OperatorConfig.load(None).runtime().label_gpu_capacity_nodes
    path = tmp_path / "terms.yaml"
    path.write_text("- matchExpressions: [{key: gpu, operator: Exists}]\n")
    settings = OperatorConfig.load(None, label_gpu_capacity_nodes=True, gpu_node_selector=path).runtime()
    assert settings.label_gpu_capacity_nodes and settings.gpu_node_selector_terms[0]["matchExpressions"][0]["key"] == "gpu"


# --- the fleet pass's wiring (a fake store: no cluster) --------------------------------------------


class FakeStore:
    def __init__(self, nodes: list[dict[str, Any]], refuse: set[str] | None = None) -> None:
        self.nodes = {n["metadata"]["name"]: n for n in nodes}
        self.refuse = refuse or set()
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.events: list[tuple[str, str]] = []

    async def patch_node(self, name: str, patch: dict[str, Any]) -> None:
        if name in self.refuse:
            raise RuntimeError("403 Forbidden")
        self.patches.append((name, patch))
        labels = self.nodes[name]["metadata"]["labels"]
        for key, value in patch["metadata"]["labels"].items():
            if value is None:
                labels.pop(key, None)
            else:
                labels[key] = value

    async def event(self, obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], reason))


def _operator(store: FakeStore, on: bool = True) -> Any:
    import logging

    from prometheus_client import CollectorRegistry

    from resource_agent.operator.actions import ActionExecutor
    from resource_agent.operator.handlers import Operator
    from resource_agent.operator.metrics import OperatorMetrics
    from resource_agent.operator.settings import OperatorSettings

    settings = OperatorSettings(metrics_listen=None, health_listen=None, label_gpu_capacity_nodes=on)
    operator = Operator(settings, store, OperatorMetrics(CollectorRegistry()), ActionExecutor(lambda node: None))  # type: ignore[arg-type]  # duck-typed store
    return operator, logging.getLogger("test")


def _coverage_pass(operator: Any, store: FakeStore, logger: Any) -> None:
    """One coverage pass over the nodes as kopf's node_capacity index holds them (refreshed from the store,
    as the watch would after the operator's own patches)."""
    import asyncio

    from resource_agent.operator.coverage import gpu_capacity
    from resource_agent.operator.gpu_labels import allocatable_gpus
    from resource_agent.operator.handlers import NodeSeen

    operator._node_capacity = {
        name: [NodeSeen(n["metadata"].get("uid", name), gpu_capacity(n), allocatable_gpus(n), tuple(sorted(n["metadata"]["labels"].items())))]
        for name, n in store.nodes.items()
    }
    operator._report_times = {}
    asyncio.run(operator._coverage_pass(logger))


def test_fleet_pass_patches_each_changed_node_once_then_nothing() -> None:

    store = FakeStore([node("plugin-a"), node("plugin-b"), node("gfd", labels={"nvidia.com/gpu.present": "true"}),
                       node("cpu", gpus=None), node("refused")], refuse={"refused"})
    operator, logger = _operator(store)
    _coverage_pass(operator, store, logger)
    assert [name for name, _ in store.patches] == ["plugin-a", "plugin-b"]
    assert store.events.count(("plugin-a", "GpuCapacityLabelled")) == 1
    assert operator.metrics.errors.labels("node-label")._value.get() == 1  # the refusal is counted, the pass goes on
    _coverage_pass(operator, store, logger)
    assert len(store.patches) == 2, "an unchanged node costs no patch"
    store.nodes["plugin-a"]["status"]["allocatable"]["nvidia.com/gpu"] = "0"
    _coverage_pass(operator, store, logger)
    assert store.patches[-1] == ("plugin-a", label_patch(False)) and len(store.patches) == 3
    assert ("plugin-a", "GpuCapacityUnlabelled") in store.events


def test_fleet_pass_leaves_nodes_alone_when_off() -> None:

    store = FakeStore([node("plugin-a")])
    operator, logger = _operator(store, on=False)
    _coverage_pass(operator, store, logger)
    assert store.patches == []
