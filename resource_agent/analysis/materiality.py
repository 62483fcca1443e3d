"""When a new window summary is worth a ResourceReport write: what the analysis would conclude could change.

The agent summarises its window every report interval; it writes the report only when the summary is
*material* against the last one written, and otherwise once per heartbeat (`--report-heartbeat`, so
the operator can tell a quiet node from a gone agent). A summary is material when its digest differs:

- the findings of the analysis with the default policy, as (rule, target, severity): a threshold
  crossed either way, a new fault, XID or lost GPU finding, one that cleared;
- the node's state, whatever the rules make of it: standing GPU faults (GPU, kind, XID), lost GPUs,
  the XID codes seen in the window, NVML recovery actions, the GPUs (uuids), the boot id, which
  collectors failed or were unavailable, and the LMCache and serving instances with their reachable
  and healthy flags.

Window statistics moving within the same findings are not material: the heartbeat carries them (and
Prometheus has the series). An operator with its own policy sees a crossing of its thresholds at the
next material write or heartbeat at the latest.
"""

from __future__ import annotations

from dataclasses import dataclass

from resource_agent.analysis.engine import analyze
from resource_agent.api.summary import NodeSummary


@dataclass(frozen=True)
class ReportDigest:
    findings: frozenset[tuple[str, str, str]]  # (rule, target key, severity)
    state: tuple[object, ...]


def report_digest(summary: NodeSummary) -> ReportDigest:
    """What a write depends on: two summaries with the same digest need one write (the heartbeat's)."""
    findings = frozenset((f.rule, f.target.key(), f.severity.value) for f in analyze(summary).findings)
    gpus = tuple(
        (gpu.uuid, tuple(sorted(gpu.xid_counts)), gpu.recovery_action,
         tuple(sorted((fault.kind.value, fault.xid or 0) for fault in gpu.faults)))
        for gpu in summary.gpu.devices
    )
    state = (
        summary.inventory.boot_id,
        gpus,
        tuple(sorted((lost.uuid or "", lost.pci_bus_id or "") for lost in summary.gpu.lost)),
        tuple(sorted((status.name, status.state.value) for status in summary.collectors)),
        tuple(sorted((cache.instance, cache.reachable, cache.healthy) for cache in summary.lmcache.instances)),
        tuple(sorted((engine.key(), engine.reachable) for engine in summary.serving.instances)),
    )
    return ReportDigest(findings, state)


class WriteCadence:
    """Which summaries to write: the first, a material one, and one per heartbeat (`at`: monotonic seconds of
    the summary's hand-over; the heartbeat counts from the last summary written)."""

    def __init__(self, heartbeat_seconds: float) -> None:
        self.heartbeat_seconds = heartbeat_seconds
        self._written: tuple[ReportDigest, float] | None = None

    def due(self, summary: NodeSummary, at: float) -> ReportDigest | None:
        """The summary's digest when it is to be written, else None (nothing material, heartbeat not due)."""
        digest = report_digest(summary)
        if self._written is None or digest != self._written[0] or at - self._written[1] >= self.heartbeat_seconds:
            return digest
        return None

    def written(self, digest: ReportDigest, at: float) -> None:
        self._written = (digest, at)
