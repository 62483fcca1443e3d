"""Helpers the rules share: targets, evidence and sensitive values of a finding."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from resource_agent.analysis.rule import RuleContext
from resource_agent.api.findings import (
    Action,
    ActionType,
    Evidence,
    Finding,
    ParamValue,
    Sensitive,
    Severity,
    Target,
    TargetKind,
)
from resource_agent.api.samples import GpuProcess
from resource_agent.api.summary import GpuSummary, LMCacheInstanceSummary, NodeSummary, ServingInstanceSummary

GIB = 1024**3
GB = 1000**3


def mask(kind: str, value: str) -> str:
    """A stable stand-in for a sensitive value: the same value always masks the same way."""
    return f"{kind}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"


def window_seconds(summary: NodeSummary) -> float:
    return max(summary.window.end - summary.window.start, 0.0)


def node_target(summary: NodeSummary) -> Target:
    return Target(kind=TargetKind.NODE, name=summary.node_name)


def gpu_target(gpu: GpuSummary) -> Target:
    return Target(kind=TargetKind.GPU, name=f"gpu{gpu.index}", gpu_index=gpu.index, gpu_uuid=gpu.uuid)


def lmcache_target(instance: LMCacheInstanceSummary) -> Target:
    return Target(
        kind=TargetKind.LMCACHE_INSTANCE,
        name=instance.pod or instance.instance,
        namespace=instance.namespace,
        lmcache_instance=instance.instance,
    )


def serving_target(engine: ServingInstanceSummary) -> Target:
    return Target(
        kind=TargetKind.SERVING_INSTANCE,
        name=engine.pod or engine.instance,
        namespace=engine.namespace,
        pod_uid=engine.pod_uid,
        serving_instance=engine.key(),
    )


def serving_sensitive(engine: ServingInstanceSummary) -> list[tuple[str, str]]:
    values = [("instance", engine.instance)]
    if engine.pod:
        values.append(("pod", engine.pod))
    if engine.namespace:
        values.append(("namespace", engine.namespace))
    if engine.url:
        values.append(("url", engine.url))
    if engine.model_name:
        values.append(("model", engine.model_name))
    return values


def gpu_sensitive(gpu: GpuSummary) -> list[tuple[str, str]]:
    """The GPU's uuid and what identifies the processes on it."""
    values = [("gpu", gpu.uuid)]
    for process in gpu.processes:
        values += process_sensitive(process)
    return values


def process_sensitive(process: GpuProcess) -> list[tuple[str, str]]:
    values = []
    if process.name:
        values.append(("process", process.name))
    if process.pod_uid:
        values.append(("pod-uid", process.pod_uid))
    if process.container_id:
        values.append(("container", process.container_id))
    return values


def lmcache_sensitive(instance: LMCacheInstanceSummary) -> list[tuple[str, str]]:
    values = [("lmcache", instance.instance)]
    if instance.pod:
        values.append(("pod", instance.pod))
    if instance.namespace:
        values.append(("namespace", instance.namespace))
    values += [("url", url) for url in instance.urls]
    return values


def evidence(
    summary: NodeSummary,
    metric: str,
    statistic: str,
    observed: float,
    threshold: float,
    comparison: str = ">=",
    unit: str | None = None,
) -> Evidence:
    return Evidence(
        metric=metric,
        statistic=statistic,
        observed=round(float(observed), 4),
        threshold=float(threshold),
        comparison=comparison,
        window_seconds=window_seconds(summary),
        unit=unit,
    )


def action(kind: ActionType, **parameters: ParamValue | None) -> Action:
    """An action with the parameters that have values."""
    return Action(type=kind, parameters={k: v for k, v in parameters.items() if v is not None})


def make_finding(
    summary: NodeSummary,
    ctx: RuleContext,
    *,
    severity: Severity,
    target: Target,
    text: str,
    evidence: list[Evidence],
    action: Action,
    impact: str,
    sensitive: Iterable[tuple[str, str]] = (),
) -> Finding:
    """A finding of the context's rule; the node name and target names are always listed as sensitive."""
    values = [("node", summary.node_name), *sensitive]
    if target.kind in (TargetKind.PROCESS, TargetKind.LMCACHE_INSTANCE, TargetKind.SERVING_INSTANCE):
        values.append(("name", target.name))
    if target.serving_instance:
        values.append(("instance", target.serving_instance))
    if target.pod_uid:
        values.append(("pod-uid", target.pod_uid))
    if target.gpu_uuid:
        values.append(("gpu", target.gpu_uuid))
    seen: dict[str, Sensitive] = {}
    for kind, value in values:
        if value and value not in seen:
            seen[value] = Sensitive(unmasked=value, masked=mask(kind, value))
    return Finding(
        rule=ctx.rule.id,
        category=ctx.rule.category,
        severity=severity,
        node_name=summary.node_name,
        target=target,
        summary=text,
        evidence=evidence,
        action=action,
        expected_impact=impact,
        sensitive=list(seen.values()),
    )


def gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"
