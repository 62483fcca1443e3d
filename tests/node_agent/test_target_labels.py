"""No exported series carries a label that Prometheus sets on the target.

A clash makes Prometheus rename the exporter's label to `exported_<name>` (or, with
honor_labels, drop the target's), so per-instance series blend on dashboards.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from resource_agent.api.samples import LMCacheSample
from resource_agent.llm.metrics import LLMMetrics
from resource_agent.node_agent.exporter import RESERVED_TARGET_LABELS, SampleExporter, build_registry
from resource_agent.operator.metrics import OperatorMetrics
from tests.node_agent.agent_samples import lmcache_instance, sample

# The operator is one Deployment: its ServiceMonitor sets no `node` target label, and its
# per-node series name the node they are about, as kube-state-metrics does.
OPERATOR_RESERVED = RESERVED_TARGET_LABELS - {"node"}


def _agent_label_names() -> dict[str, set[str]]:
    exporter = SampleExporter()
    registry = build_registry(exporter)
    full = sample(2, gpus=2, xids={0: [48]})
    full.lmcache = LMCacheSample(instances=[lmcache_instance(2), lmcache_instance(2)])
    exporter.observe(full)
    names: dict[str, set[str]] = {}
    for family in registry.collect():
        for series in family.samples:
            names.setdefault(series.name, set()).update(series.labels)
    return names


def test_reserved_labels_cover_prometheus_and_operator_target_labels() -> None:
    assert {"job", "instance", "namespace", "pod", "container", "service", "endpoint", "node"} <= RESERVED_TARGET_LABELS


def test_no_agent_series_uses_a_target_label() -> None:
    names = _agent_label_names()
    assert any(name.startswith("resource_agent_lmcache_") for name in names), "the sample should export LMCache series"
    clashes = {name: sorted(labels & RESERVED_TARGET_LABELS) for name, labels in names.items() if labels & RESERVED_TARGET_LABELS}
    assert not clashes, f"series with reserved target labels: {clashes}"


def test_lmcache_series_keep_instances_apart() -> None:
    names = _agent_label_names()
    assert names["resource_agent_lmcache_up"] == {"lmcache_instance"}


def _declared(holder: object) -> dict[str, set[str]]:
    return {
        metric._name: set(metric._labelnames)  # prometheus_client keeps declared labels here
        for metric in vars(holder).values()
        if isinstance(metric, MetricWrapperBase)
    }


def test_no_operator_or_llm_series_uses_a_target_label() -> None:
    registry = CollectorRegistry()
    declared = _declared(OperatorMetrics(registry)) | _declared(LLMMetrics(registry))
    assert len(declared) > 10
    clashes = {name: sorted(labels & OPERATOR_RESERVED) for name, labels in declared.items() if labels & OPERATOR_RESERVED}
    assert not clashes, f"operator series with reserved target labels: {clashes}"
