"""Memory per workload of the operator's long-horizon GPU usage (resource_agent.workloads.usage).

Feeds N workloads an hour and a day of reports (one per minute per GPU, 2 pods x 1 GPU each) and prints the
bytes per workload held in memory (tracemalloc, the tracker only) and in its checkpoint (JSON), and
that they do not grow with the number of observations; once for GPU workloads alone and once with a
serving engine (vLLM) in every pod, whose queue and KV-cache histograms a workload gets only then.

    .venv/bin/python bench/workload_usage_memory.py [workloads]
"""

from __future__ import annotations

import gc
import json
import sys
import tracemalloc

from resource_agent.api.samples import AllocationSource, GpuAllocation
from resource_agent.api.summary import ServingInstanceSummary, ServingSection, Window
from resource_agent.workloads.owners import OwnerRef, PodInfo, resolve_workload
from resource_agent.workloads.usage import UsageSettings, UsageTracker
from tests.analysis.analysis_builders import gpu, node, st


def run(workloads: int, minutes: int, serving: bool = False) -> tuple[float, float, int]:
    infos = {
        f"w{w}-{p}": PodInfo(namespace="ns", name=f"w{w}-{p}", uid=f"u{w}-{p}", node_name="n", phase="Running",
                             owners=(OwnerRef("StatefulSet", f"w{w}", True),), gpus=1)
        for w in range(workloads) for p in range(2)
    }
    names = sorted(infos)
    devices = [gpu(i % 8, uuid=f"GPU-{i:08d}", sm_utilization_percent=st(float(i % 90), max=float(i % 90)),
                   allocated_to=[GpuAllocation(namespace="ns", pod=name, container="c", source=AllocationSource.KUBELET)])
               for i, name in enumerate(names)]
    engines = [ServingInstanceSummary(instance=f"ns/{name}", engine="vllm", pod=name, namespace="ns", samples=60,
                                      requests_running=st(float(i % 7)), requests_waiting=st(float(i % 3)),
                                      kv_cache_usage_percent=st(float(i % 95)))
               for i, name in enumerate(names)] if serving else []
    gc.collect()
    tracemalloc.start()
    tracker = UsageTracker(UsageSettings())
    baseline = tracemalloc.get_traced_memory()[0]
    for minute in range(minutes):
        end = 1_000_000.0 + minute * 60.0
        summary = node(gpus=devices, window=Window(start=end - 300, end=end, samples=60, interval_seconds=5.0),
                       serving=ServingSection(instances=engines))
        tracker.observe(summary, lambda a: infos.get(a.pod or ""), resolve_workload)
        del summary
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    gpu_entries = len(tracker._gpu_seen_until)  # per GPU, not per workload
    checkpoint = sum(len(json.dumps(state.usage(tracker.settings).to_wire())) for state in tracker.workloads.values())
    return held / workloads, checkpoint / workloads, gpu_entries


def main() -> None:
    workloads = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    print(f"{'engines':>8} {'workloads':>9} {'minutes':>8} {'observations':>12} {'bytes/workload in memory':>25} {'checkpoint bytes/workload':>26}")
    for serving in (False, True):
        for minutes in (60, 1440):
            memory, checkpoint, _ = run(workloads, minutes, serving)
            observations = minutes * workloads * 2 * (2 if serving else 1)
            print(f"{'vllm' if serving else 'none':>8} {workloads:>9} {minutes:>8} {observations:>12} {memory:>25.0f} {checkpoint:>26.0f}")


if __name__ == "__main__":
    main()
