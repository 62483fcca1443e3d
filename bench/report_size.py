"""Size of the ResourceReport an agent stores: an 8-GPU node with 2 LMCache instances and a vLLM engine.

Builds one report window (60 samples at 5 s) from the `cache-thrash` scenario (8 GPUs, LMCache on vllm-0 and
vllm-1) plus the serving simulator's vLLM metrics, and prints the status as `to_wire()` gives it (before) and as
the reporter stores it (`kube.reporter.report_status`: empty lists and maps left out, window
statistics to 3 significant digits),
each with an estimate of the stored object (the apply body, metadata and the field manager's managedFields
entry, whose fieldsV1 names every field set; lists in the CRD are atomic). The ratio is against the full body
in the same run. The analysis of both must be the same (checked here; `python -m tests.evaluation.scorer
--as-stored` checks the evaluation set).

    .venv/bin/python -m bench.report_size [--write docs/PERFORMANCE.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.docsection import write_section
from devtools.serving_simulator import PROFILES, SimulatedEngine
from resource_agent.analysis.engine import analyze
from resource_agent.api.crd import report_crd
from resource_agent.api.names import API_VERSION
from resource_agent.api.resources import ResourceReportStatus
from resource_agent.api.samples import ServingSample
from resource_agent.api.summary import NodeSummary
from resource_agent.kube.reporter import report_object, report_status
from resource_agent.node_agent.window import summarize
from resource_agent.scenarios import generate
from resource_agent.serving.discovery import Endpoint
from resource_agent.serving.metrics import parse_exposition
from resource_agent.serving.sample import instance_samples

TARGET_BYTES = 8 * 1024
METADATA_BYTES = 600  # name, uid, resourceVersion, generation, creationTimestamp, labels, ownerReferences


def node_summary() -> NodeSummary:
    clock = [0.0]
    engine = SimulatedEngine("vllm", PROFILES["healthy"], seed=7, clock=lambda: clock[0])
    endpoint = Endpoint(id="llm/vllm-0", engine="vllm", url="http://10.0.3.17:8000/metrics", pod="vllm-0",
                        namespace="llm", pod_uid="uid-vllm-0")
    samples = []
    for step, sample in enumerate(generate("cache-thrash", seed=0, samples=60, gpus=8)):
        clock[0] = step * 5.0
        sample.serving = ServingSample(instances=instance_samples(endpoint, parse_exposition(engine.exposition(), "vllm")))
        samples.append(sample)
    return summarize(samples, "gpu-node-00001")


def fields_v1(value: Any, schema: dict[str, Any]) -> Any:
    """The managedFields fieldsV1 set of an applied object (maps by key, unless the CRD marks them atomic;
    lists atomic)."""
    if isinstance(value, dict) and schema.get("x-kubernetes-map-type") != "atomic":
        properties = schema.get("properties", {})
        return {f"f:{key}": fields_v1(item, properties.get(key, {})) for key, item in value.items()}
    return {}


def sizes(status: dict[str, Any], schema: dict[str, Any]) -> dict[str, int]:
    body = json.dumps(status, separators=(",", ":"))
    managed = json.dumps({"manager": "resource-agent", "operation": "Apply", "subresource": "status",
                          "apiVersion": API_VERSION, "time": "2026-01-01T00:00:00Z",
                          "fieldsType": "FieldsV1", "fieldsV1": fields_v1({"status": status}, schema)},
                         separators=(",", ":"))
    return {"status": len(body), "managed_fields": len(managed), "stored": len(body) + len(managed) + METADATA_BYTES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    summary = node_summary()
    now = datetime.now(UTC)
    full = {**summary.to_wire(), "reportedAt": "2026-01-01T00:00:00Z"}
    stored = report_status(summary, now)["status"]
    # before: the summary as to_wire() gives it, owned field by field; after: the reporter's body under the CRD
    before = sizes(full, {})
    after = sizes(stored, report_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    assert report_object(summary, "uid")["metadata"]["name"] == summary.node_name
    found = sorted((f.rule, f.target.name) for f in analyze(summary).findings)
    again = sorted((f.rule, f.target.name) for f in analyze(ResourceReportStatus.model_validate(stored)).findings)
    print(f"node: {len(summary.gpu.devices)} GPUs, {len(summary.lmcache.instances)} LMCache instances, "
          f"{len(summary.serving.instances)} serving engine(s); findings {found}")
    print(f"{'':28} {'status B':>9} {'managedFields B':>16} {'stored B (est.)':>16} {'x full':>7}")
    for label, figures in (("to_wire() (before)", before), ("reporter body (after)", after)):
        print(f"{label:28} {figures['status']:>9} {figures['managed_fields']:>16} {figures['stored']:>16} "
              f"{figures['stored'] / before['stored']:>7.2f}")
    ok = after["stored"] <= TARGET_BYTES
    same = found == again
    print(("OK:   " if ok else "MISS: ") + f"stored report {after['stored']} B (target <= {TARGET_BYTES} B, "
          f"margin {TARGET_BYTES / after['stored']:.2f}x)")
    print(("OK:   " if same else "MISS: ") + "the analysis of the stored report finds the same as of the summary")
    if args.write:
        write_doc(args.write, before, after, found, same)
    return 0 if same else 1


def write_doc(path: Path, before: dict[str, int], after: dict[str, int], found: list[tuple[str, str]], same: bool) -> None:
    marker = "<!-- report-size -->"
    section = [
        "## The stored report (`bench/report_size.py`)",
        "",
        f"Generated by `python -m bench.report_size --write {path}` on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}: "
        "an 8-GPU node (`cache-thrash`: LMCache on vllm-0 and vllm-1) with a vLLM engine, one 5-minute window. "
        "Stored size = the status JSON + the managedFields entry of the agent's apply (fieldsV1 computed from the "
        f"body) + ~{METADATA_BYTES} B metadata (an estimate; not read back from an API server here).",
        "",
        "| body | status B | managedFields B | stored B (est.) | × before |",
        "|---|---:|---:|---:|---:|",
        f"| `to_wire()` (before) | {before['status']} | {before['managed_fields']} | {before['stored']} | 1.00 |",
        f"| reporter body (after) | {after['status']} | {after['managed_fields']} | {after['stored']} | "
        f"{after['stored'] / before['stored']:.2f} |",
        "",
        f"- {'met' if after['stored'] <= TARGET_BYTES else 'MISSED'}: stored report {after['stored']} B "
        f"(target <= {TARGET_BYTES} B, margin {TARGET_BYTES / after['stored']:.2f}x)",
        f"- {'same' if same else 'DIFFERENT'} findings from the stored report: {found}",
    ]
    write_section(path, marker, section)


if __name__ == "__main__":
    sys.exit(main())
