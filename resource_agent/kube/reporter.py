"""The agent's ResourceReport writer.

Server-side apply under the agent's field manager. The agent hands over a
summary every report interval, or early when something significant happened
(a new XID, a threshold crossed: see `node_agent.agent.significant`); the
writer never writes more often than that. While the API server is away it
retries with backoff and keeps only the latest summary (one slot, so memory
stays bounded however long the outage).
"""

from __future__ import annotations

import logging
import math
import random
import threading
from datetime import UTC, datetime
from typing import Any

from resource_agent.api.resources import (
    AGENT_FIELD_MANAGER,
    API_VERSION,
    GROUP,
    NODE_LABEL,
    REPORT_PLURAL,
    VERSION,
)
from resource_agent.api.summary import NodeSummary
from resource_agent.api.timestamps import rfc3339
from resource_agent.kubeclient.config import load_connection
from resource_agent.kubeclient.rest import ApiError, KubeClient
from resource_agent.node_agent.agent import Agent

log = logging.getLogger(__name__)

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


STAT_KEYS = frozenset({"mean", "p95", "max", "min", "last"})
STAT_DIGITS = 3  # significant digits of window statistics (mean, p95, max, min, last)


def compact_status(summary: NodeSummary) -> dict[str, Any]:
    """The summary as stored in the report, smaller: lists and maps that are empty and at their default are
    left out (validation restores them; zero counters and false flags stay, people read them) and window
    statistics are rounded to 3 significant digits (the rules compare them with thresholds; the
    high-resolution series are in Prometheus). Every other number (times, sizes, counters, limits) is exact."""
    full = summary.model_dump(mode="json", by_alias=True, exclude_none=True)
    lean = summary.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
    compact: dict[str, Any] = _round_stats(_drop_empty_defaults(full, lean))
    return compact


def _drop_empty_defaults(full: Any, lean: Any) -> Any:
    """`full` without the empty lists and maps that `lean` (the same dump without defaults) left out."""
    if isinstance(full, dict) and isinstance(lean, dict):
        return {key: _drop_empty_defaults(value, lean[key]) if key in lean else value
                for key, value in full.items() if key in lean or value not in ({}, [])}
    if isinstance(full, list) and isinstance(lean, list) and len(full) == len(lean):
        return [_drop_empty_defaults(a, b) for a, b in zip(full, lean, strict=True)]
    return full


def _round_stats(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == STAT_KEYS:
            return {key: _significant(item) for key, item in value.items()}
        return {key: _round_stats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_round_stats(item) for item in value]
    return value


def _significant(number: float | int) -> float | int:
    if not isinstance(number, float) or not number or not math.isfinite(number):
        return number
    rounded = round(number, STAT_DIGITS - 1 - math.floor(math.log10(abs(number))))
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded


def report_status(summary: NodeSummary, now: datetime) -> dict[str, Any]:
    status = compact_status(summary)
    status["reportedAt"] = rfc3339(now)
    return {"apiVersion": API_VERSION, "kind": "ResourceReport", "metadata": {"name": summary.node_name}, "status": status}


class ReportWriter:
    """Writes the latest summary to the node's ResourceReport from a background thread."""

    def __init__(self, api: KubeClient, *, max_backoff_seconds: float = 60.0) -> None:
        self._api = api
        self._max_backoff = max_backoff_seconds
        self._lock = threading.Condition()
        self._latest: NodeSummary | None = None
        self._object_applied = False
        self._node_uid: str | None = None
        self._stopping = False
        self.writes = 0
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
            self._lock.notify_all()

    def _run(self) -> None:
        backoff = 1.0
        while True:
            summary = self._next_due()
            if summary is None:
                return
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

    def _next_due(self) -> NodeSummary | None:
        """Wait for a summary to write; None when stopping."""
        with self._lock:
            while not self._stopping:
                if self._latest is not None:
                    summary, self._latest = self._latest, None
                    return summary
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


def attach_report_writer(agent: Agent, kubeconfig: str | None = None) -> ReportWriter:
    """Start a writer for the agent's node and hand it every summary the agent reports."""
    writer = ReportWriter(KubeClient(load_connection(kubeconfig))).start()
    agent.add_listener(writer.offer)
    return writer
