"""Which summary fields and `Stat` members the analysis and the operator read, measured.

Instruments attribute access on the summary models (`resource_agent.api.summary`) while it runs every
reader of a stored report over every evaluation case (tests/evaluation/cases) and every scenario
(resource_agent/scenarios, with a simulated vLLM engine): the analysis engine (rules and scores), the
operator's fleet record and standing faults, workload usage (right-sizing) and the LLM prompt with its
redaction. Prints, per model, the fields read and, per `Stat` field, the members read; the reviewed
table the reporter keeps (`resource_agent.api.stored`) must cover it (tests/api/test_stored.py checks).

    .venv/bin/python -m devtools.report_fields
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel

from resource_agent.analysis.engine import analyze
from resource_agent.analysis.policy import Policy
from resource_agent.analysis.scores import unexplained_health
from resource_agent.api import summary as summary_models
from resource_agent.api.findings import TargetKind
from resource_agent.api.samples import CollectorStatus, GpuAllocation, GpuProcess, ServingSample
from resource_agent.api.summary import NodeSummary, Stat
from resource_agent.api.usage import WorkloadRef
from resource_agent.llm.prompts import build_messages
from resource_agent.llm.redaction import Redactor
from resource_agent.operator.fleet import FleetThresholds, idle_gpus
from resource_agent.operator.planning import standing_faults
from resource_agent.workloads.owners import PodInfo
from resource_agent.workloads.usage import PodKey, UsageTracker, allocated_idle_gpus

Read = tuple[str, str]  # (model, field) or (model.field, Stat member)


def _models() -> list[type[BaseModel]]:
    """The summary's models: those of `resource_agent.api.summary` and the sample parts it holds."""
    return [*(value for value in vars(summary_models).values()
              if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == summary_models.__name__),
            CollectorStatus, GpuAllocation, GpuProcess]


@contextmanager
def traced(summary: NodeSummary) -> Iterator[set[Read]]:
    """Record every field read of the summary's models while the block runs; a Stat read is recorded as
    (owner model.field, member)."""
    owners: dict[int, str] = {}
    for owner, name, value in _walk(summary):
        if isinstance(value, Stat):
            owners[id(value)] = f"{type(owner).__name__}.{name}"
    reads: set[Read] = set()
    originals: dict[type[BaseModel], Any] = {}

    def make(model: type[BaseModel]) -> Callable[[Any, str], Any]:
        fields = model.model_fields

        def getattribute(self: Any, name: str) -> Any:
            if name in fields:
                if model is Stat:
                    reads.add((owners.get(id(self), "?"), name))
                else:
                    reads.add((model.__name__, name))
            return object.__getattribute__(self, name)
        return getattribute

    for model in _models():
        originals[model] = model.__dict__.get("__getattribute__")
        model.__getattribute__ = make(model)  # type: ignore[method-assign]
    try:
        yield reads
    finally:
        for model, original in originals.items():
            if original is None:
                del model.__getattribute__
            else:
                model.__getattribute__ = original  # type: ignore[method-assign]


def _walk(model: BaseModel) -> Iterator[tuple[BaseModel, str, Any]]:
    for name in type(model).model_fields:
        value = object.__getattribute__(model, name)
        yield model, name, value
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, BaseModel):
                yield from _walk(item)


def read_everything(summary: NodeSummary) -> None:
    """Every reader of a stored report, as the operator runs them."""
    policy = Policy()
    analysis = analyze(summary, policy)
    unexplained_health(summary, analysis.findings)
    idle_gpus(summary, FleetThresholds())
    allocated_idle_gpus([summary])
    standing_faults(summary, policy)
    UsageTracker().observe(summary, _any_pod, lambda pod: WorkloadRef(kind=TargetKind.POD, namespace=pod.namespace, name=pod.name))
    build_messages(summary.node_name, analysis.findings, summary,
                   Redactor.for_findings(summary.node_name, analysis.findings, summary))


def _any_pod(holder: PodKey) -> PodInfo:
    """Every GPU holder and serving engine is a known pod (so workload usage reads all it can)."""
    return PodInfo(namespace=holder.namespace or "ns", name=holder.pod or "pod", uid=holder.pod_uid or "uid",
                   node_name=None, phase="Running", owners=(), gpus=1)


def case_summaries(vllm_profiles: Sequence[str] | None = None) -> Iterator[tuple[str, NodeSummary]]:
    """Every evaluation case's summary, then every scenario's (60 samples, 8 GPUs) with a simulated vLLM engine
    of each load profile (`vllm_profiles`; default: all)."""
    from devtools.serving_simulator import PROFILES, SimulatedEngine
    from resource_agent.node_agent.window import summarize
    from resource_agent.scenarios import generate, list_scenarios
    from resource_agent.serving.discovery import Endpoint
    from resource_agent.serving.metrics import parse_exposition
    from resource_agent.serving.sample import instance_samples
    from tests.evaluation import scorer

    for name in scorer.case_names():
        yield f"case {name}", scorer.summary_of(name)
    endpoint = Endpoint(id="llm/vllm-0", engine="vllm", url="http://10.0.3.17:8000/metrics", pod="vllm-0",
                        namespace="llm", pod_uid="uid-vllm-0")
    for scenario in list_scenarios():
        for profile in PROFILES if vllm_profiles is None else vllm_profiles:
            clock = [0.0]
            engine = SimulatedEngine("vllm", PROFILES[profile], seed=7, clock=lambda clock=clock: clock[0])
            samples = []
            for step, sample in enumerate(generate(scenario, seed=0, samples=60, gpus=8)):
                clock[0] = step * 5.0
                if sample.serving is None:
                    sample.serving = ServingSample(instances=instance_samples(endpoint, parse_exposition(engine.exposition(), "vllm")))
                samples.append(sample)
            yield f"scenario {scenario} + vllm {profile}", summarize(samples, "gpu-node-00001")


def measure(vllm_profiles: Sequence[str] | None = None) -> set[Read]:
    """The reads of every reader over `case_summaries(vllm_profiles)`."""
    reads: set[Read] = set()
    for _, summary in case_summaries(vllm_profiles):
        with traced(summary) as seen:
            read_everything(summary)
        reads |= seen
    return reads


def main() -> int:
    reads = measure()
    stats: dict[str, set[str]] = {}
    fields: dict[str, set[str]] = {}
    for owner, name in reads:
        (stats if "." in owner else fields).setdefault(owner, set()).add(name)
    print("Stat fields read (member order mean, p95, max, min, last):")
    order = list(Stat.model_fields)
    for owner in sorted(stats):
        print(f"  {owner:55} {', '.join(sorted(stats[owner], key=order.index))}")
    print("other fields read / not read:")
    for model in sorted(_models(), key=lambda m: m.__name__):
        read = fields.get(model.__name__, set())
        unread = [name for name in model.model_fields if name not in read and f"{model.__name__}.{name}" not in stats]
        print(f"  {model.__name__:30} read: {', '.join(sorted(read)) or '-'}\n  {'':30} not read: {', '.join(unread) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
