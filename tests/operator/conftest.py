from __future__ import annotations

import pytest

from resource_agent.api.findings import Action, ActionType, Category, Evidence, Finding, Severity, Target, TargetKind


def make_finding(
    node: str = "gpu-node-a",
    rule: str = "gpu.idle-holding-memory",
    gpu: int = 0,
    severity: Severity = Severity.WARNING,
    observed: float = 3.14159,
    action: Action | None = None,
) -> Finding:
    return Finding(
        rule=rule,
        category=Category.GPU,
        severity=severity,
        node_name=node,
        target=Target(kind=TargetKind.GPU, name=f"gpu{gpu}", gpu_index=gpu, gpu_uuid=f"GPU-{gpu:08d}"),
        summary=f"GPU {gpu} idles at {observed:.0f}% while holding memory",
        evidence=[Evidence(metric="gpu.sm_utilization_percent", statistic="p95", observed=observed, threshold=10.0, comparison="<")],
        action=action or Action(type=ActionType.RECLAIM_GPU_MEMORY, parameters={"gpuIndex": gpu}),
        expected_impact="Frees one GPU",
    )


@pytest.fixture
def finding_factory():
    return make_finding
