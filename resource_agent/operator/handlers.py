"""kopf handlers: ResourceReport events -> analysis -> ResourceRecommendations.

Only *event* handlers and an index are used, so kopf never writes its progress
annotations to the reports (one extra write per report per interval
otherwise). The recommendations index keeps each node's recommendations in
memory, so a report costs no LIST; unchanged findings cost no write.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

import kopf
from pydantic import ValidationError

from resource_agent.analysis.engine import analyze
from resource_agent.api.findings import ActionType, Analysis, Finding
from resource_agent.api.names import API_VERSION, GROUP, RECOMMENDATION_PLURAL, REPORT_PLURAL, VERSION
from resource_agent.api.resources import ApplyResult, Decision, Phase, ResourceReportStatus
from resource_agent.api.usage import WorkloadRef
from resource_agent.operator.actions import ActionExecutor
from resource_agent.operator.checkpoints import CheckpointStore
from resource_agent.operator.coverage import Coverage, assess, coverage_findings, gpu_capacity, report_time
from resource_agent.operator.fleet import FLEET_NODE, FleetTracker, gpu_accounting
from resource_agent.operator.gpu_labels import GPU_RESOURCE, allocatable_gpus, plan_labels
from resource_agent.operator.insights import InsightWorker
from resource_agent.operator.lifecycle import decide_phase
from resource_agent.operator.metrics import OperatorMetrics
from resource_agent.operator.planning import (
    NO_STANDING_FAULTS,
    StandingFaults,
    Upsert,
    expired,
    plan_reconcile,
    standing_faults,
)
from resource_agent.operator.records import (
    IndexedRecommendation,
    apply_result_of,
    build_status,
    generation_of,
    index_entry,
    now_utc,
)
from resource_agent.operator.settings import OperatorSettings
from resource_agent.operator.store import RecommendationStore
from resource_agent.workloads.owners import OwnerRef, PodInfo, WorkloadCache, controller_of, pod_info, requested_gpus
from resource_agent.workloads.placement import NodeGpus, PackingTracker, find_packings
from resource_agent.workloads.usage import WORKLOADS_NODE, PodKey, UsageTracker

log = logging.getLogger(__name__)

RecommendationIndex = kopf.Index[str, IndexedRecommendation]  # node name -> its recommendations


class Operator:
    """The operator's state and handlers; `register` wires them into a kopf registry."""

    def __init__(
        self,
        settings: OperatorSettings,
        store: RecommendationStore,
        metrics: OperatorMetrics,
        executor: ActionExecutor,
        insights: InsightWorker | None = None,
        checkpoints: CheckpointStore | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.executor = executor
        self.insights = insights
        self.fleet = FleetTracker(settings.policy, busy_sm_percent=settings.usage.busy_sm_percent)
        self._node_locks: dict[str, asyncio.Lock] = {}
        self._last_fleet_pass = float("-inf")
        self._started = time.monotonic()
        self._reports_seen = False  # since this process started
        self.coverage_thresholds = settings.coverage
        self._coverage = Coverage(missing={}, stale={}, ages={})
        # GPU right-sizing per workload (resource_agent.workloads): usage histories, owner cache, checkpoints
        self.usage = UsageTracker(settings.usage)
        self.owners = WorkloadCache()
        self.packing = PackingTracker(settings.usage.packing_persist_seconds)
        self.checkpoints = checkpoints
        self._checkpoints_loaded = checkpoints is None
        self._checkpoints_lock = asyncio.Lock()
        self._last_checkpoint = time.monotonic()
        self._pods: kopf.Index[Any, Any] | None = None  # the latest indexes kopf handed over (for the fleet pass)
        self._replicasets: kopf.Index[Any, Any] | None = None
        self._nodes: kopf.Index[Any, Any] | None = None
        # what the coverage pass reads, kept by kopf from the watches (no LIST per fleet pass)
        self._report_times: kopf.Index[str, ReportSeen] | None = None
        self._node_capacity: kopf.Index[str, NodeSeen] | None = None
        # the recommendations gauge: counts per node and in all, and what the gauge was last set to
        self._recommendation_counts: dict[str, dict[tuple[str, str], int]] = {}
        self._recommendation_totals: dict[tuple[str, str], int] = {}
        self._recommendation_gauge: dict[tuple[str, str], int] = {}

    # --- registration ----------------------------------------------------------------

    def register(self, registry: kopf.OperatorRegistry) -> None:
        @kopf.index(GROUP, VERSION, RECOMMENDATION_PLURAL, id="recommendations_by_node", registry=registry)
        def recommendations_by_node(name: str, spec: Any, status: Any, annotations: Any, **_: Any) -> dict[str, IndexedRecommendation]:
            entry = index_entry(name, spec, status, annotations)
            return {entry.existing.node_name: entry}

        @kopf.index(GROUP, VERSION, REPORT_PLURAL, id="report_times", registry=registry)
        def report_times(name: str, uid: str, status: Any, **_: Any) -> dict[str, ReportSeen]:
            return {name: ReportSeen(uid, report_time({"status": status}))}

        @kopf.index("", "v1", "nodes", id="node_capacity", registry=registry)
        def node_capacity(name: str, uid: str, status: Any, labels: Any, **_: Any) -> dict[str, NodeSeen]:
            node = {"status": status}
            return {name: NodeSeen(uid, gpu_capacity(node), allocatable_gpus(node), tuple(sorted((labels or {}).items())))}

        if self.settings.workloads:
            self._register_workload_indexes(registry)

        @kopf.on.event(GROUP, VERSION, REPORT_PLURAL, registry=registry)  # type: ignore[arg-type]  # WatchingFn cannot list the index kwarg
        async def report_event(
            event: Mapping[str, Any], body: Any, name: str, uid: str, status: Any,
            recommendations_by_node: RecommendationIndex, logger: kopf.Logger, **kwargs: Any,
        ) -> None:
            if event.get("type") == "DELETED":
                self.fleet.forget(name)  # its recommendations go with it (owner references)
                return
            self._reports_seen = True
            self._remember_indexes(kwargs)
            await self.on_report(name, uid, dict(status or {}), recommendations_by_node, body, logger)

        # The fleet pass (cross-node findings, GPU nodes without a report, stale reports, the TTL
        # sweep) must also run when no report changes (every agent gone). Node objects change at
        # least every node-status report (5 min by default), so their events drive it too; a kopf
        # timer would put a finalizer on every report.
        @kopf.on.event("", "v1", "nodes", registry=registry)  # type: ignore[arg-type]  # WatchingFn cannot list the index kwarg
        async def node_event(recommendations_by_node: RecommendationIndex, logger: kopf.Logger, **kwargs: Any) -> None:
            self._remember_indexes(kwargs)
            if self._reports_seen or time.monotonic() - self._started >= self.warm_up_seconds:
                await self._fleet_pass(recommendations_by_node, logger)

        @kopf.on.event(GROUP, VERSION, RECOMMENDATION_PLURAL, registry=registry)
        async def recommendation_event(
            event: Mapping[str, Any], body: Any, name: str, spec: Any, status: Any, annotations: Any,
            logger: kopf.Logger, **_: Any,
        ) -> None:
            if event.get("type") == "DELETED" or not status:
                return
            await self.on_recommendation(name, dict(spec), dict(status), dict(annotations), body, logger)

    def _remember_indexes(self, kwargs: Mapping[str, Any]) -> None:
        """kopf hands its indexes to every handler; the fleet pass reads the latest."""
        self._pods, self._replicasets, self._nodes = kwargs.get("gpu_pods"), kwargs.get("replicaset_owners"), kwargs.get("node_gpus")
        self._report_times, self._node_capacity = kwargs.get("report_times"), kwargs.get("node_capacity")

    def _register_workload_indexes(self, registry: kopf.OperatorRegistry) -> None:
        """Watches, not LISTs per report: pods that request GPUs (by name and by UID), ReplicaSets' owners, nodes' GPUs."""

        @kopf.index("", "v1", "pods", id="gpu_pods", registry=registry,
                    when=lambda spec, **_: requested_gpus(spec or {}) > 0)
        def gpu_pods(body: Any, **_: Any) -> dict[Any, Any]:
            info = pod_info(body)
            return {("pod", info.namespace, info.name): info, ("uid", info.uid): info}

        @kopf.index("apps", "v1", "replicasets", id="replicaset_owners", registry=registry,
                    when=lambda meta, **_: bool(meta.get("ownerReferences")))
        def replicaset_owners(namespace: str | None, name: str, meta: Any, **_: Any) -> dict[Any, Any]:
            refs = [
                OwnerRef(kind=str(ref.get("kind", "")), name=str(ref.get("name", "")), controller=bool(ref.get("controller")))
                for ref in meta.get("ownerReferences") or []
            ]
            owner = controller_of(tuple(refs))
            return {(namespace, name): owner} if owner is not None else {}

        @kopf.index("", "v1", "nodes", id="node_gpus", registry=registry)
        def node_gpus(name: str, spec: Any, status: Any, labels: Any, **_: Any) -> dict[Any, Any]:
            allocatable = (status or {}).get("allocatable") or {}
            try:
                count = int(str(allocatable.get("nvidia.com/gpu", "0")))
            except ValueError:
                count = 0
            if count <= 0:
                return {}
            schedulable = not (spec or {}).get("unschedulable")
            return {name: NodeGpus(allocatable=count, schedulable=schedulable, product=(labels or {}).get("nvidia.com/gpu.product"))}

    # --- workloads -------------------------------------------------------------------------

    def _observe_workloads(self, report: ResourceReportStatus) -> None:
        pods = self._pods

        def lookup(holder: PodKey) -> PodInfo | None:
            """A GPU's holder or a serving engine's pod, by namespace/name or UID."""
            if pods is None:
                return None
            key: tuple[str, ...] | None = None
            if holder.namespace and holder.pod:
                key = ("pod", holder.namespace, holder.pod)
            elif holder.pod_uid:
                key = ("uid", holder.pod_uid)
            found = list(pods.get(key, [])) if key is not None else []
            return found[0] if found else None

        self.usage.observe(report, lookup, self._workload_of)
        self.metrics.workloads_tracked.set(len(self.usage))

    def _workload_of(self, pod: PodInfo) -> WorkloadRef:
        """A pod's workload (owner cache; a ReplicaSet's Deployment from the ReplicaSet index)."""
        replicasets = self._replicasets

        def replicaset_owner(namespace: str, name: str) -> OwnerRef | None:
            found = list(replicasets.get((namespace, name), [])) if replicasets is not None else []
            return found[0] if found else None

        return self.owners.resolve(pod, replicaset_owner)

    async def _load_checkpoints(self, logger: kopf.Logger) -> None:
        """Continue the histories kept in the cluster (once, before the first observation)."""
        if self._checkpoints_loaded or self.checkpoints is None:
            return
        # Handlers run concurrently (a report event and a Node event at start): every caller waits for the
        # one load, or a pass could judge the empty history while the load is in flight.
        async with self._checkpoints_lock:
            if self._checkpoints_loaded:
                return
            loaded = await self.checkpoints.load()
            for ref, status in loaded:
                self.usage.restore(ref, status.usage)
            self._checkpoints_loaded = True
        logger.info("loaded %d workload usage checkpoint(s)", len(loaded))

    async def _workload_pass(self, index: kopf.Index[Any, Any], logger: kopf.Logger) -> None:
        """Workload recommendations, fleet GPU accounting, checkpoints and forgetting (in the fleet pass)."""
        await self._load_checkpoints(logger)  # a pass before the first report must not judge an empty history
        now = time.time()
        pods = [info for entries in (self._pods or {}).values() for info in entries]
        nodes: dict[str, NodeGpus] = {name: next(iter(entries)) for name, entries in (self._nodes or {}).items() if entries}
        packings = find_packings(pods, nodes, self._workload_of) if self._pods is not None and self._nodes is not None else []
        findings = self.usage.findings(now) + self.packing.findings(packings, now)
        await self.reconcile_node(WORKLOADS_NODE, None, findings, index, logger)
        allocatable = {name: node.allocatable for name, node in nodes.items()}
        accounting = gpu_accounting(allocatable, pods, self.fleet.allocated_idle_gpus())
        for state, value in (("allocatable", accounting.allocatable), ("allocated", accounting.allocated),
                             ("free", accounting.free), ("allocated_idle", accounting.allocated_idle)):
            self.metrics.fleet_gpus.labels(state).set(value)
        if self.checkpoints is None:
            return
        if time.monotonic() - self._last_checkpoint >= self.settings.checkpoint_interval_seconds:
            await self.save_checkpoints()
        for ref in self.usage.forget_stale(now):
            await self.checkpoints.delete(ref)
            logger.info("forgot %s: not seen for the whole horizon", ref.key())

    async def save_checkpoints(self) -> int:
        """Write the usage of every workload with new observations; returns how many were written."""
        self._last_checkpoint = time.monotonic()
        written = 0
        for state in self.usage.dirty() if self.checkpoints is not None else []:
            try:
                await self.checkpoints.save(state, self.settings.usage)  # type: ignore[union-attr]
            except Exception:
                self.metrics.errors.labels("checkpoint").inc()
                log.warning("checkpoint of %s failed", state.ref.key(), exc_info=True)
                continue
            state.dirty = False
            written += 1
        return written

    def workload(self, ref: WorkloadRef) -> Any:
        return self.usage.workload(ref)

    # --- reports -------------------------------------------------------------------------

    async def on_report(
        self, name: str, uid: str, status: dict[str, Any], index: RecommendationIndex, body: Any, logger: kopf.Logger
    ) -> None:
        if not status:
            return
        started = time.perf_counter()
        try:
            report = ResourceReportStatus.model_validate(status)
        except ValidationError as exc:
            self.metrics.reconciles.labels("invalid").inc()
            self.metrics.errors.labels("validate-report").inc()
            message = f"status does not match the ResourceReport schema: {exc.error_count()} error(s); first: {exc.errors()[0]['msg']}"
            await self.store.event(dict(body), "Warning", "InvalidReport", message)
            logger.warning("report %s ignored: %s", name, message)
            return
        analysis = analyze(report, self.settings.policy)
        self.fleet.observe(report, analysis)
        if self.settings.workloads:
            await self._load_checkpoints(logger)
            self._observe_workloads(report)
        peer = self.fleet.peer_finding(name)
        if peer is not None:
            analysis.findings.append(peer)
        standing = standing_faults(report, self.settings.policy)
        try:
            await self.reconcile_node(name, uid, analysis.findings, index, logger, standing)
            await self._fleet_pass(index, logger)
        except Exception:
            self.metrics.reconciles.labels("error").inc()
            self.metrics.errors.labels("reconcile").inc()
            raise
        self.metrics.reconciles.labels("ok").inc()
        self.metrics.reconcile_duration.observe(time.perf_counter() - started)
        self._export_node(analysis)
        self.export_index(index, (name,))
        if self.insights is not None:
            self.insights.submit(report, analysis)

    @property
    def warm_up_seconds(self) -> float:
        """How long after a start Node events alone may run the fleet pass: until then (or the first report)
        the operator has seen too little of the fleet to resolve cross-node findings."""
        return 2 * self.settings.fleet_interval_seconds

    async def _fleet_pass(self, index: RecommendationIndex, logger: kopf.Logger) -> None:
        """Cross-node findings and the TTL sweep, at most once per fleet interval (only the active replica
        gets events)."""
        if time.monotonic() - self._last_fleet_pass < self.settings.fleet_interval_seconds:
            return
        self._last_fleet_pass = time.monotonic()
        findings = self.fleet.fleet_findings()
        try:
            findings += await self._coverage_pass(logger)
        except Exception as exc:  # the cross-node findings still stand; the next pass retries
            self.metrics.errors.labels("coverage").inc()
            logger.warning("coverage check failed: %s", exc)
            findings += coverage_findings(self._coverage, FLEET_NODE, self.coverage_thresholds)
        await self.reconcile_node(FLEET_NODE, None, findings, index, logger)
        if self.settings.workloads:
            await self._workload_pass(index, logger)
        await self._delete_expired(index)
        self.export_index(index)

    async def _coverage_pass(self, logger: kopf.Logger) -> list[Finding]:
        """GPU nodes without a report and stale reports: findings, metrics and an Event when one starts.
        Reads the nodes' GPU capacity and the reports' times from kopf's indexes (no LIST); kopf runs no handler
        before every index holds its initial listing, so right after a restart every existing report is seen."""
        if self._report_times is None or self._node_capacity is None:
            return coverage_findings(self._coverage, FLEET_NODE, self.coverage_thresholds)  # no index handed over yet
        nodes = _latest(self._node_capacity)
        if self.settings.label_gpu_capacity_nodes:
            await self._label_gpu_capacity_nodes({name: seen.as_node(name) for name, seen in nodes.items()}, logger)
        reports = _latest(self._report_times)
        coverage = assess({name: seen.gpus for name, seen in nodes.items()},
                          {name: seen.at for name, seen in reports.items()}, time.time(), self.coverage_thresholds)
        # taken before the Events are posted: a pass that starts while this one posts must not post them again
        previous, self._coverage = self._coverage, coverage
        for node in sorted(set(coverage.missing) - set(previous.missing)):
            message = f"node has {coverage.missing[node]} GPU(s) but no ResourceReport: no resource agent runs on it"
            await self.store.event({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "uid": nodes[node].uid}},
                                   "Warning", "NoResourceReport", message)
            logger.warning("node %s: %s", node, message)
        for node in sorted(set(coverage.stale) - set(previous.stale)):
            message = (f"ResourceReport not written for {coverage.stale[node]:.0f} s (more than "
                       f"{self.coverage_thresholds.stale_heartbeats:g} report heartbeats and a report interval)")
            await self.store.event({"apiVersion": API_VERSION, "kind": "ResourceReport", "metadata": {"name": node, "uid": reports[node].uid}},
                                   "Warning", "ReportStale", message)
            logger.warning("node %s: %s", node, message)
        for gauge in (self.metrics.report_age, self.metrics.report_stale, self.metrics.report_missing):
            gauge.clear()
        for node, age in coverage.ages.items():
            self.metrics.report_age.labels(node).set(age)
            self.metrics.report_stale.labels(node).set(1 if node in coverage.stale else 0)
        for node in coverage.missing:
            self.metrics.report_missing.labels(node).set(1)
        return coverage_findings(coverage, FLEET_NODE, self.coverage_thresholds)

    async def _label_gpu_capacity_nodes(self, nodes: Mapping[str, dict[str, Any]], logger: kopf.Logger) -> None:
        """Nodes with only nvidia.com/gpu capacity get the label the agent's affinity selects (one patch per change)."""
        for change in plan_labels(nodes.values(), self.settings.gpu_node_selector_terms):
            try:
                await self.store.patch_node(change.node, change.patch())
            except Exception as exc:  # RBAC/admission refusal or a vanished node: the next pass retries
                self.metrics.errors.labels("node-label").inc()
                logger.warning("node %s: %s failed: %s", change.node, "labelling" if change.add else "unlabelling", _api_error(exc))
                continue
            node = {"apiVersion": "v1", "kind": "Node", **nodes[change.node]}
            await self.store.event(node, "Normal", "GpuCapacityLabelled" if change.add else "GpuCapacityUnlabelled", change.message())
            logger.info("node %s: %s", change.node, change.message())

    async def _delete_expired(self, index: RecommendationIndex) -> None:
        """Resolved recommendations past the TTL, also of nodes that no longer report. Under the node's lock
        and judged again on the object as it is now: a report may have reopened it since the index saw it
        (deleting it then made the reopening write its status to nothing: a 404)."""
        now = now_utc()
        for entries in list(index.values()):
            for known in [entry.existing for entry in list(entries) if expired(entry.existing, now, self.settings.plan)]:
                async with self._node_locks.setdefault(known.node_name, asyncio.Lock()):
                    current = await self.store.get(known.name)
                    if current is not None and expired(_entry_of(known.name, current).existing, now, self.settings.plan):
                        await self.store.delete(known.name)

    async def reconcile_node(
        self, node: str, report_uid: str | None, node_findings: list[Finding], index: RecommendationIndex,
        logger: kopf.Logger, standing: StandingFaults = NO_STANDING_FAULTS,
    ) -> None:
        """Bring one node's recommendations in line with its findings and standing faults (serialised per node)."""
        async with self._node_locks.setdefault(node, asyncio.Lock()):
            await self._reconcile(node, report_uid, node_findings, list(index.get(node, [])), logger, standing)

    async def _reconcile(
        self, node: str, report_uid: str | None, node_findings: list[Finding], entries: list[IndexedRecommendation],
        logger: kopf.Logger, standing: StandingFaults = NO_STANDING_FAULTS,
    ) -> None:
        now = now_utc()
        known = {entry.existing.name: entry for entry in entries}
        plan = plan_reconcile(
            node_findings, [entry.existing for entry in entries], now=now, settings=self.settings.plan, standing=standing
        )
        findings = {finding.resource_name(): finding for finding in (*standing.findings, *node_findings)}
        for upsert in plan.upserts:
            await self._upsert(upsert, report_uid, known.get(upsert.name), findings[upsert.name], now, logger)
        for resolve in plan.resolves:
            await self._resolve(known[resolve.name], now, logger)
        for delete in plan.deletes:
            await self.store.delete(delete.name)
            logger.info("deleted %s: resolved longer than the TTL", delete.name)
        for name in (*plan.unchanged, *plan.held):
            await self._refresh_phase(known[name], now)

    async def _upsert(
        self, upsert: Upsert, report_uid: str | None, known: IndexedRecommendation | None, finding: Finding,
        now: datetime, logger: kopf.Logger,
    ) -> None:
        created = await self.store.apply_spec(upsert.name, upsert.spec, upsert.material_digest, report_uid)
        previous = dict(known.status) if known else {}
        decision = known.decision if known else Decision.PENDING
        snooze = known.snooze_until if known else None
        phase = decide_phase(
            active=True, decision=decision, snooze_until=snooze, action_type=upsert.spec.action.type,
            apply_result=apply_result_of(previous), now=now,
        )
        await self._write_status(
            upsert.name, previous, decision, phase.phase, phase.message, apply_result_of(previous), now,
            generation_of(created), last_seen=now,
        )
        if upsert.created:
            await self.store.event(created, "Normal", "RecommendationCreated", finding.summary)
            logger.info("created %s: %s", upsert.name, finding.summary)
        elif upsert.reopened:
            await self.store.event(created, "Normal", "RecommendationReopened", finding.summary)

    async def _refresh_phase(self, entry: IndexedRecommendation, now: datetime) -> None:
        """An unchanged finding costs no write, unless its phase moved on (a snooze ran out)."""
        if entry.action_type is None or entry.action_type not in ActionType._value2member_map_:
            return
        action_type = ActionType(entry.action_type)
        phase = decide_phase(
            active=True, decision=entry.decision, snooze_until=entry.snooze_until,
            action_type=action_type, apply_result=apply_result_of(entry.status), now=now,
        )
        if entry.existing.phase is not phase.phase and not phase.should_apply:
            previous = dict(entry.status)
            await self._write_status(entry.existing.name, previous, entry.decision, phase.phase, phase.message,
                                     apply_result_of(previous), now, previous.get("observedGeneration"))

    async def _resolve(self, entry: IndexedRecommendation, now: datetime, logger: kopf.Logger) -> None:
        previous = dict(entry.status)
        result = await self._write_status(
            entry.existing.name, previous, entry.decision, Phase.RESOLVED, "The condition cleared in the latest report.",
            apply_result_of(previous), now, previous.get("observedGeneration"), resolved_at=now,
        )
        await self.store.event(result, "Normal", "RecommendationResolved", "The condition cleared.")
        logger.info("resolved %s", entry.existing.name)

    # --- decisions ----------------------------------------------------------------------

    async def on_recommendation(
        self, name: str, spec: dict[str, Any], status: dict[str, Any], annotations: dict[str, str], body: Any,
        logger: kopf.Logger,
    ) -> None:
        entry = index_entry(name, spec, status, annotations)
        if entry.action_type is None or entry.action_type not in ActionType._value2member_map_:
            return
        action_type = ActionType(entry.action_type)
        now = now_utc()
        active = entry.existing.phase is not Phase.RESOLVED
        apply_result = apply_result_of(status)
        if entry.decision is not Decision.APPROVED and status.get("decision") == Decision.APPROVED.value:
            apply_result = None  # approval withdrawn: a later approval applies again
        phase = decide_phase(
            active=active, decision=entry.decision, snooze_until=entry.snooze_until,
            action_type=action_type, apply_result=apply_result, now=now,
        )
        if phase.should_apply:
            # kopf hands over events one by one, so this one may predate our own Applying write and the
            # result: look at the object as it is now before carrying anything out (never apply twice).
            fresh = await self.store.get(name)
            if fresh is None or apply_result_of(fresh.get("status") or {}) is not None:
                return
            await self._write_status(name, status, entry.decision, Phase.APPLYING, phase.message, None, now, generation_of(body))
            result = await self.executor.execute(spec, logger)
            await self.store.apply_result(name, result.to_wire())
            self.metrics.applies.labels("succeeded" if result.succeeded else "failed").inc()
            phase = decide_phase(
                active=True, decision=entry.decision, snooze_until=None,
                action_type=action_type, apply_result=result, now=now,
            )
            await self.store.event(
                dict(body), "Normal" if result.succeeded else "Warning",
                "Applied" if result.succeeded else "ApplyFailed", result.message or result.error or phase.message,
            )
            apply_result = result
        changed = (
            status.get("phase") != phase.phase.value
            or status.get("message") != phase.message
            or status.get("decision") != entry.decision.value
            or apply_result_of(status) != apply_result
        )
        if changed:
            if apply_result is None and apply_result_of(status) is not None:
                await self.store.apply_result(name, None)
            await self._write_status(name, status, entry.decision, phase.phase, phase.message, apply_result, now, generation_of(body))
            if status.get("decision") != entry.decision.value:
                await self.store.event(dict(body), "Normal", f"Decision{entry.decision.value}", phase.message)

    async def _write_status(
        self, name: str, previous: dict[str, Any], decision: Decision, phase: Phase, message: str,
        apply_result: ApplyResult | None, now: datetime, generation: int | None, *,
        last_seen: datetime | None = None, resolved_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Apply the whole operator-owned status, carrying over what `previous` knew."""
        status = build_status(
            previous, decision, phase, message, apply_result, now, generation, last_seen=last_seen, resolved_at=resolved_at
        )
        return await self.store.apply_status(name, status)

    # --- metrics -------------------------------------------------------------------------

    def _export_node(self, analysis: Analysis) -> None:
        counts = {"info": 0, "warning": 0, "critical": 0}
        for finding in analysis.findings:
            counts[finding.severity.value] += 1
        for severity, count in counts.items():
            self.metrics.findings.labels(analysis.node_name, severity).set(count)
        self.metrics.health.labels(analysis.node_name).set(analysis.scores.health)

    def export_index(self, index: RecommendationIndex, nodes: Iterable[str] | None = None) -> None:
        """The recommendations gauge by severity and phase, recounted for `nodes` (all when None: the fleet
        pass) and written only where a count changed (re-labelling every series on every report was most of a
        report's cost at 5,000 nodes)."""
        for node in (set(index) | set(self._recommendation_counts)) if nodes is None else nodes:
            for key, count in self._recommendation_counts.pop(node, {}).items():
                self._recommendation_totals[key] -= count
            counts: dict[tuple[str, str], int] = {}
            for entry in index.get(node, []):
                key = (entry.severity or "unknown", entry.existing.phase.value if entry.existing.phase else "Unknown")
                counts[key] = counts.get(key, 0) + 1
                self._recommendation_totals[key] = self._recommendation_totals.get(key, 0) + 1
            if counts:
                self._recommendation_counts[node] = counts
        for key, count in list(self._recommendation_totals.items()):
            if count == self._recommendation_gauge.get(key):
                continue
            if count:
                self.metrics.recommendations.labels(*key).set(count)
                self._recommendation_gauge[key] = count
            else:
                self.metrics.recommendations.remove(*key)
                del self._recommendation_totals[key]
                self._recommendation_gauge.pop(key, None)


class ReportSeen(NamedTuple):
    uid: str
    at: float | None  # status.reportedAt as unix time; None before the agent's first write


class NodeSeen(NamedTuple):
    uid: str
    gpus: int  # nvidia.com/gpu capacity
    allocatable: int = 0  # nvidia.com/gpu allocatable
    labels: tuple[tuple[str, str], ...] = ()  # what the GPU capacity labelling matches the agent's affinity terms against

    def as_node(self, name: str) -> dict[str, Any]:
        """The parts of the Node object the capacity labelling reads (and an Event names)."""
        return {
            "metadata": {"name": name, "uid": self.uid, "labels": dict(self.labels)},
            "status": {"allocatable": {GPU_RESOURCE: str(self.allocatable)}},
        }


def _entry_of(name: str, body: Mapping[str, Any]) -> IndexedRecommendation:
    """The index entry of a recommendation as read from the API server."""
    return index_entry(name, body.get("spec") or {}, body.get("status") or {}, (body.get("metadata") or {}).get("annotations") or {})


def _latest(index: kopf.Index[str, Any]) -> dict[str, Any]:
    """The one value per key of a kopf index (the last, should a key ever hold more)."""
    return {key: values[-1] for key, values in ((key, list(index[key])) for key in index) if values}


def _api_error(exc: Exception) -> str:
    """An API error's status and message (an admission policy's refusal names the rule), else the exception."""
    body = getattr(exc, "body", None)
    try:
        message = json.loads(body).get("message") if isinstance(body, str | bytes) else None
    except ValueError:
        message = None
    status = getattr(exc, "status", None)
    return f"HTTP {status}: {message}" if status and message else f"HTTP {status}: {getattr(exc, 'reason', exc)}" if status else str(exc)
