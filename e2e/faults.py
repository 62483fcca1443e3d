"""Checks shared by the fault tests (e2e/test_faults_*.py): what must hold after each fault."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools.demo.stack import ManagedProcess, wait_until
from e2e.loop import identities
from e2e.providers import ClusterHandle
from resource_agent.api.names import AGENT_FIELD_MANAGER, GROUP, REPORT_PLURAL, VERSION
from resource_agent.api.summary import NodeSummary
from resource_agent.kube.reporter import report_object, report_status
from resource_agent.kubeclient.rest import APPLY_PATCH

if TYPE_CHECKING:
    from kubernetes.client import CustomObjectsApi

MIB = 2**20
RSS_GROWTH_BOUND_BYTES = 64 * MIB  # what a process may grow by across one fault


def rss_bytes(process: ManagedProcess) -> int:
    """Resident set size of the process (Linux /proc)."""
    assert process.popen is not None
    for line in Path(f"/proc/{process.popen.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {process.name}")


def decisions(recommendations: Iterable[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """name -> (uid, spec.decision)."""
    return {r["metadata"]["name"]: (r["metadata"]["uid"], r["spec"].get("decision", "Pending")) for r in recommendations}


def assert_converged(before: dict[str, tuple[str, str]], after: list[dict[str, Any]]) -> None:
    """No duplicate recommendation, none recreated (same uid), no human decision lost."""
    seen = identities(after)
    assert len(seen) == len(set(seen)), f"duplicate recommendations: {sorted(seen)}"
    now = decisions(after)
    for name, (uid, decision) in before.items():
        assert name in now, f"{name} disappeared"
        assert now[name][0] == uid, f"{name} was recreated"
        assert now[name][1] == decision, f"{name}: decision {decision} became {now[name][1]}"


def reported_at(report: dict[str, Any] | None) -> datetime | None:
    stamp = ((report or {}).get("status") or {}).get("reportedAt")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None


def seconds_until(predicate: Callable[[], object], timeout: float, what: str, since: float | None = None,
                  interval: float = 0.2) -> float:
    """Seconds from ``since`` (a time.monotonic(); default: now) until ``predicate`` holds (polled every ``interval``)."""
    started = time.monotonic() if since is None else since
    wait_until(predicate, timeout, interval=interval, what=what)
    return time.monotonic() - started


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)  # reportedAt has whole seconds


def assert_alive(processes: Iterable[ManagedProcess], pids: dict[str, int]) -> None:
    """Every process still runs, and is the one that ran before the fault (no restart)."""
    for process in processes:
        assert process.alive, f"{process.name} died:\n{process.tail()}"
        assert process.popen is not None and process.popen.pid == pids[process.name], f"{process.name} was restarted"


def pids_of(processes: Iterable[ManagedProcess]) -> dict[str, int]:
    return {p.name: p.popen.pid for p in processes if p.popen is not None}


WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"})
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def apiserver_writes(cluster: ClusterHandle) -> Counter[str]:
    """Write requests the API server has served since it started (apiserver_request_total), by resource[/subresource]."""
    text = cluster.kubectl("get", "--raw", "/metrics").stdout
    writes: Counter[str] = Counter()
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(_LABEL.findall(line.split("}", 1)[0]))
        if labels.get("verb") in WRITE_VERBS:
            resource = labels.get("resource", "") + (f"/{labels['subresource']}" if labels.get("subresource") else "")
            writes[resource] += int(float(line.rsplit(" ", 1)[1]))
    return writes


def write_report(objects: CustomObjectsApi, summary: NodeSummary, node_uid: str) -> None:
    """The node's ResourceReport, written as the agent writes it (server-side apply, then its status)."""
    name = summary.node_name
    objects.patch_cluster_custom_object(GROUP, VERSION, REPORT_PLURAL, name, report_object(summary, node_uid),
                                        field_manager=AGENT_FIELD_MANAGER, force=True, _content_type=APPLY_PATCH)
    objects.patch_cluster_custom_object_status(GROUP, VERSION, REPORT_PLURAL, name, report_status(summary, datetime.now(UTC)),
                                               field_manager=AGENT_FIELD_MANAGER, force=True, _content_type=APPLY_PATCH)
