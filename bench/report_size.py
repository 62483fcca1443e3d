"""Size of the ResourceReport an agent stores: an 8-GPU node with 2 LMCache instances and a vLLM engine.

Builds one report window (60 samples at 5 s) from the `cache-thrash` scenario (8 GPUs, LMCache on vllm-0 and
vllm-1) plus the serving simulator's vLLM metrics. A local control plane (kube-apiserver + etcd, the CRDs
installed, the node as a kwok Node) takes the report through the agent's own path (`kube.reporter.ReportWriter`:
server-side apply of the object, then of its status), and the object is read back: the stored size is its
compact JSON (metadata with managedFields, spec, status), split into status, managedFields and the rest of the
metadata. Beside it, estimates from the bodies alone (the status JSON + a managedFields entry computed from it
+ ~600 B metadata) for `to_wire()` (before) and the reporter's body; the ratio is against the `to_wire()`
estimate in the same run. The analysis of the read-back status must find what the analysis of the summary
finds (checked here; `python -m tests.evaluation.scorer --as-stored` checks the evaluation set).

    .venv/bin/python -m bench.report_size [--write docs/PERFORMANCE.md]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.docsection import write_section
from devtools.demo.stack import install_crds
from devtools.devcluster.local import LocalCluster
from devtools.devcluster.nodes import NodeSpec, add_nodes
from devtools.serving_simulator import PROFILES, SimulatedEngine
from resource_agent.analysis.engine import analyze
from resource_agent.api.crd import report_crd
from resource_agent.api.names import API_VERSION
from resource_agent.api.resources import ResourceReportStatus
from resource_agent.api.samples import ServingSample
from resource_agent.api.summary import NodeSummary
from resource_agent.kube.reporter import REPORTS_PATH, ReportWriter, report_status
from resource_agent.kubeclient.config import load_connection
from resource_agent.kubeclient.rest import KubeClient
from resource_agent.node_agent.window import summarize
from resource_agent.scenarios import generate
from resource_agent.serving.discovery import Endpoint
from resource_agent.serving.metrics import parse_exposition
from resource_agent.serving.sample import instance_samples

TARGET_BYTES = 8 * 1024
METADATA_BYTES = 600  # the estimate's metadata: name, uid, resourceVersion, generation, creationTimestamp, labels, owner


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


def compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def write_and_read_back(summary: NodeSummary) -> dict[str, Any]:
    """Write the report as the agent does (object, then status, by server-side apply) to a local kube-apiserver and
    GET the stored object back."""
    with LocalCluster(progress=lambda line: print(line, file=sys.stderr)) as cluster:
        kubectl = str(cluster.bin_dir / "kubectl")
        install_crds(lambda *a, **_: subprocess.run([kubectl, f"--kubeconfig={cluster.kubeconfig}", *a], check=True,
                                                    capture_output=True, text=True))
        with cluster.api_client() as admin:
            add_nodes(admin, [NodeSpec(name=summary.node_name)])
        with KubeClient(load_connection(str(cluster.kubeconfig))) as api:
            writer = ReportWriter(api).start()
            writer.offer(summary)
            deadline = time.monotonic() + 60
            while writer.writes < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            writer.stop()
            if writer.writes < 1:
                raise RuntimeError(f"the report was not written: {writer.last_error}")
            return api.get(f"{REPORTS_PATH}/{summary.node_name}")


def read_back_sizes(stored: dict[str, Any]) -> dict[str, int]:
    """The stored object's compact JSON, and its parts: status, metadata.managedFields, the rest (metadata, spec)."""
    managed = compact(stored["metadata"].get("managedFields", []))
    status = compact(stored["status"])
    total = compact(stored)
    return {"status": status, "managed_fields": managed, "metadata": total - status - managed, "stored": total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    summary = node_summary()
    full = {**summary.to_wire(), "reportedAt": "2026-01-01T00:00:00Z"}
    body = report_status(summary, datetime.now(UTC))["status"]
    # estimates: the summary as to_wire() gives it, owned field by field; the reporter's body under the CRD
    before = sizes(full, {})
    after = sizes(body, report_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    stored = write_and_read_back(summary)
    real = read_back_sizes(stored)
    found = sorted((f.rule, f.target.name) for f in analyze(summary).findings)
    again = sorted((f.rule, f.target.name) for f in analyze(ResourceReportStatus.model_validate(stored["status"])).findings)
    print(f"node: {len(summary.gpu.devices)} GPUs, {len(summary.lmcache.instances)} LMCache instances, "
          f"{len(summary.serving.instances)} serving engine(s); findings {found}")
    rows = table_rows(before, after, real)
    print(f"{'':36} {'status B':>9} {'managedFields B':>16} {'metadata+spec B':>16} {'stored B':>9} {'x before':>9}")
    for label, figures in rows:
        print(f"{label:36} {figures['status']:>9} {figures['managed_fields']:>16} {figures['metadata']:>16} "
              f"{figures['stored']:>9} {figures['stored'] / before['stored']:>9.2f}")
    ok = real["stored"] <= TARGET_BYTES
    same = found == again
    print(("OK:   " if ok else "MISS: ") + target_line(real))
    print(("OK:   " if same else "MISS: ") + "the analysis of the read-back status finds the same as of the summary")
    if args.write:
        write_doc(args.write, rows, before, real, found, same)
    return 0 if ok and same else 1


def table_rows(before: dict[str, int], after: dict[str, int], real: dict[str, int]) -> list[tuple[str, dict[str, int]]]:
    estimate = {"metadata": METADATA_BYTES}
    return [("to_wire() (before), estimate", {**before, **estimate}), ("reporter body, estimate", {**after, **estimate}),
            ("reporter body, read back (stored)", real)]


def target_line(real: dict[str, int]) -> str:
    return (f"stored report read back {real['stored']} B (target <= {TARGET_BYTES} B, "
            f"{TARGET_BYTES - real['stored']} B to spare, margin {TARGET_BYTES / real['stored']:.2f}x)")


def write_doc(path: Path, rows: list[tuple[str, dict[str, int]]], before: dict[str, int], real: dict[str, int],
              found: list[tuple[str, str]], same: bool) -> None:
    marker = "<!-- report-size -->"
    section = [
        "## The stored report (`bench/report_size.py`)",
        "",
        f"Generated by `python -m bench.report_size --write {path}` on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}: "
        "an 8-GPU node (`cache-thrash`: LMCache on vllm-0 and vllm-1) with a vLLM engine, one 5-minute window, "
        "written by the agent's `ReportWriter` (server-side apply of the object, then of its status) to a local "
        "kube-apiserver and read back. Stored = the compact JSON of the object read back; metadata+spec = the rest "
        "of it (name, uid, resourceVersion, labels, owner reference, spec). The estimates are from the bodies alone "
        f"(the status JSON + a managedFields entry computed from it + ~{METADATA_BYTES} B metadata).",
        "",
        "| body | status B | managedFields B | metadata+spec B | stored B | × before |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {label} | {figures['status']} | {figures['managed_fields']} | {figures['metadata']} | {figures['stored']} | "
          f"{figures['stored'] / before['stored']:.2f} |" for label, figures in rows],
        "",
        f"- {'met' if real['stored'] <= TARGET_BYTES else 'MISSED'}: {target_line(real)}",
        f"- {'same' if same else 'DIFFERENT'} findings from the read-back status: {found}",
    ]
    write_section(path, marker, section)


if __name__ == "__main__":
    sys.exit(main())
