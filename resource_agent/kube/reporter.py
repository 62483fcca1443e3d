"""The agent's ResourceReport writer.

Server-side apply under the agent's field manager. The agent hands over a
summary every report interval, or early when something significant happened
(a new XID, a threshold crossed: see `node_agent.agent.significant`). The
writer writes it when it is material against the last summary written (what
the analysis would conclude could change: `analysis.materiality`) and
otherwise once per heartbeat, so an unchanged healthy node writes a few times
an hour and the operator still tells a quiet node from a gone agent. While the
API server is away it retries with backoff and keeps only the latest summary
(one slot, so memory stays bounded however long the outage).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import UTC, datetime
from typing import Any

from resource_agent.analysis.materiality import ReportDigest, WriteCadence
from resource_agent.api.names import (
    AGENT_FIELD_MANAGER,
    API_VERSION,
    GROUP,
    NODE_LABEL,
    REPORT_PLURAL,
    VERSION,
)
from resource_agent.api.stored import stored_form
from resource_agent.api.summary import NodeSummary
from resource_agent.api.timestamps import rfc3339
from resource_agent.kubeclient.config import load_connection
from resource_agent.kubeclient.rest import ApiError, KubeClient
from resource_agent.node_agent.agent import Agent

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_SECONDS = 300.0
REPORTS_PATH = f"/apis/{GROUP}/{VERSION}/{REPORT_PLURAL}"


def report_object(summary: NodeSummary, node_uid: str | None) -> dict[str, Any]:
    """The ResourceReport (metadata and spec) for a node; the owner is its Node."""
    metadata: dict[str, Any] = {"name": summary.node_name, "labels": {NODE_LABEL: summary.node_name}}
    if node_uid:
        metadata["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Node", "name": summary.node_name, "uid": node_uid}
        ]
    return {
        "apiVersion": API_VERSION,
        "kind": "ResourceReport",
        "metadata": metadata,
        "spec": {"nodeName": summary.node_name},
    }


def compact_status(summary: NodeSummary) -> dict[str, Any]:
    """The summary as stored in the report: the statistics and fields the analysis and people read, rounded
    statistics, no defaults (`resource_agent.api.stored`); the rest is in /metrics, `scan` and recordings."""
    return stored_form(summary)


def report_status(summary: NodeSummary, now: datetime) -> dict[str, Any]:
    status = compact_status(summary)
    status["reportedAt"] = rfc3339(now)
    return {"apiVersion": API_VERSION, "kind": "ResourceReport", "metadata": {"name": summary.node_name}, "status": status}


class ReportWriter:
    """Writes the latest summary to the node's ResourceReport from a background thread."""

    def __init__(self, api: KubeClient, *, max_backoff_seconds: float = 60.0,
                 heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS) -> None:
        self._api = api
        self._max_backoff = max_backoff_seconds
        self._lock = threading.Condition()
        self._latest: NodeSummary | None = None
        self.cadence = WriteCadence(heartbeat_seconds)
        self._offered_at = 0.0
        self._object_applied = False
        self._node_uid: str | None = None
        self._stopping = False
        self.writes = 0
        self.skipped = 0  # summaries not written: nothing material since the last write, heartbeat not due
        self.failures = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="report-writer", daemon=True)

    def start(self) -> ReportWriter:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self._thread.join(timeout)

    def offer(self, summary: NodeSummary) -> None:
        """Hand over a new summary; never blocks on the API server."""
        with self._lock:
            self._latest = summary
            self._offered_at = time.monotonic()
            self._lock.notify_all()

    def _run(self) -> None:
        backoff = 1.0
        while True:
            due = self._next_due()
            if due is None:
                return
            summary, digest, offered_at = due
            try:
                self._write(summary)
            except Exception as exc:  # the API server went away, or refused: keep the latest and retry
                self.failures += 1
                self.last_error = _describe(exc)
                log.warning("writing ResourceReport failed (%s); retrying in %.0fs", self.last_error, backoff)
                with self._lock:
                    if self._latest is None:
                        self._latest = summary
                    self._lock.wait(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self._max_backoff)
            else:
                backoff = 1.0
                self.cadence.written(digest, offered_at)

    def _next_due(self) -> tuple[NodeSummary, ReportDigest, float] | None:
        """Wait for a summary to write (skipping those not due); None when stopping."""
        with self._lock:
            while not self._stopping:
                if self._latest is not None:
                    summary, self._latest, offered_at = self._latest, None, self._offered_at
                    digest = self.cadence.due(summary, offered_at)
                    if digest is not None:
                        return summary, digest, offered_at
                    self.skipped += 1
                    continue
                self._lock.wait()
            return None

    def _write(self, summary: NodeSummary) -> None:
        if not self._object_applied:
            self._apply_object(summary)
        try:
            self._apply_status(summary)
        except ApiError as exc:
            if exc.status != 404:
                raise
            self._apply_object(summary)  # deleted meanwhile (e.g. garbage-collected): recreate
            self._apply_status(summary)
        self.writes += 1
        self.last_error = None

    def _apply_object(self, summary: NodeSummary) -> None:
        if self._node_uid is None:
            self._node_uid = self._api.get(f"/api/v1/nodes/{summary.node_name}")["metadata"]["uid"]
        self._api.apply(f"{REPORTS_PATH}/{summary.node_name}", report_object(summary, self._node_uid), AGENT_FIELD_MANAGER)
        self._object_applied = True

    def _apply_status(self, summary: NodeSummary) -> None:
        self._api.apply(f"{REPORTS_PATH}/{summary.node_name}/status", report_status(summary, datetime.now(UTC)), AGENT_FIELD_MANAGER)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def attach_report_writer(agent: Agent, kubeconfig: str | None = None, heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS) -> ReportWriter:
    """Start a writer for the agent's node and hand it every summary the agent reports."""
    writer = ReportWriter(KubeClient(load_connection(kubeconfig)), heartbeat_seconds=heartbeat_seconds).start()
    agent.add_listener(writer.offer)
    return writer
