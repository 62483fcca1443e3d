"""The operator's writes to ResourceRecommendations (the Kubernetes edge).

The synchronous kubernetes client runs in worker threads so kopf's event loop
never blocks. Every request is counted in the operator metrics.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from resource_agent.api.names import (
    API_VERSION,
    GROUP,
    NODE_LABEL,
    OPERATOR_FIELD_MANAGER,
    RECOMMENDATION_PLURAL,
    REPORT_PLURAL,
    RULE_LABEL,
    VERSION,
)
from resource_agent.api.resources import RecommendationSpec, RecommendationStatus
from resource_agent.api.timestamps import rfc3339, utc_now
from resource_agent.operator.metrics import OperatorMetrics
from resource_agent.operator.planning import SPEC_DIGEST_ANNOTATION

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
INSIGHT_FIELD_MANAGER = "resource-agent-insight"
APPLY_FIELD_MANAGER = "resource-agent-apply"  # owns status.applyResult: status writes from stale views never drop it
KIND = "ResourceRecommendation"
EVENT_NAMESPACE = "default"

log = logging.getLogger(__name__)


class RecommendationStore:
    def __init__(self, api_client: client.ApiClient, metrics: OperatorMetrics) -> None:
        self._objects = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._metrics = metrics

    async def apply_spec(
        self, name: str, spec: RecommendationSpec, digest: str, report_uid: str | None
    ) -> dict[str, Any]:
        """Create or update the operator-owned part of a recommendation (never spec.decision)."""
        metadata: dict[str, Any] = {
            "name": name,
            "labels": {NODE_LABEL: spec.node_name, RULE_LABEL: spec.rule[:63]},
            "annotations": {SPEC_DIGEST_ANNOTATION: digest},
        }
        if report_uid:
            metadata["ownerReferences"] = [
                {"apiVersion": API_VERSION, "kind": "ResourceReport", "name": spec.node_name, "uid": report_uid}
            ]
        body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec.to_wire()}
        return await self._call("apply", self._objects.patch_cluster_custom_object, name, body, OPERATOR_FIELD_MANAGER)

    async def apply_status(
        self, name: str, status: RecommendationStatus, manager: str = OPERATOR_FIELD_MANAGER
    ) -> dict[str, Any]:
        wire = status.to_wire()
        if manager == OPERATOR_FIELD_MANAGER:
            wire.pop("insight", None)  # owned by the insight field manager
            wire.pop("applyResult", None)  # owned by the apply field manager
        body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "status": wire}
        return await self._call("apply-status", self._objects.patch_cluster_custom_object_status, name, body, manager)

    async def apply_result(self, name: str, result: dict[str, Any] | None) -> dict[str, Any]:
        """Record what carrying out the action did; None forgets it (approval withdrawn)."""
        status = {"applyResult": result} if result is not None else {}
        body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "status": status}
        return await self._call(
            "apply-status", self._objects.patch_cluster_custom_object_status, name, body, APPLY_FIELD_MANAGER
        )

    async def get(self, name: str) -> dict[str, Any] | None:
        self._metrics.api_requests.labels("get", RECOMMENDATION_PLURAL).inc()
        try:
            found = await asyncio.to_thread(
                self._objects.get_cluster_custom_object, GROUP, VERSION, RECOMMENDATION_PLURAL, name
            )
            return cast(dict[str, Any], found)  # the client types custom objects as object: they are the JSON dict
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def apply_insight(self, name: str, insight: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "status": {"insight": insight}}
        return await self._call(
            "apply-status", self._objects.patch_cluster_custom_object_status, name, body, INSIGHT_FIELD_MANAGER
        )

    async def delete(self, name: str) -> None:
        self._metrics.api_requests.labels("delete", RECOMMENDATION_PLURAL).inc()
        try:
            await asyncio.to_thread(
                self._objects.delete_cluster_custom_object, GROUP, VERSION, RECOMMENDATION_PLURAL, name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def event(self, obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
        """Record a Kubernetes Event about a cluster-scoped object (in namespace `default`, as kubectl expects)."""
        metadata = obj.get("metadata", {})
        moment = utc_now()
        body = {
            "metadata": {"generateName": f"{metadata.get('name', 'resource-agent')[:200]}."},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", API_VERSION), "kind": obj.get("kind", KIND),
                "name": metadata.get("name"), "uid": metadata.get("uid"),
            },
            "type": kind,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": OPERATOR_FIELD_MANAGER},
            "reportingComponent": OPERATOR_FIELD_MANAGER,
            "firstTimestamp": rfc3339(moment),
            "lastTimestamp": rfc3339(moment),
            "count": 1,
        }
        self._metrics.api_requests.labels("create", "events").inc()
        try:
            await asyncio.to_thread(self._core.create_namespaced_event, EVENT_NAMESPACE, body)  # type: ignore[arg-type]  # validate_call builds the CoreV1Event from the dict
        except ApiException as exc:  # events are best effort: never fail a reconcile over one
            self._metrics.errors.labels("event").inc()
            log.warning("posting event %s for %s failed: HTTP %s", reason, metadata.get("name"), exc.status)

    async def get_report(self, name: str) -> dict[str, Any] | None:
        """A node's ResourceReport (the action executor reads the latest when it applies: the operator keeps
        only a slim record per node)."""
        self._metrics.api_requests.labels("get", REPORT_PLURAL).inc()
        try:
            found = await asyncio.to_thread(self._objects.get_cluster_custom_object, GROUP, VERSION, REPORT_PLURAL, name)
            return cast(dict[str, Any], found)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def patch_node(self, name: str, patch: dict[str, Any]) -> None:
        """A JSON merge patch of a Node (the operator's GPU capacity label; admission allows nothing else)."""
        self._metrics.api_requests.labels("patch", "nodes").inc()
        await asyncio.to_thread(self._core.patch_node, name, patch, _content_type=MERGE_PATCH)

    async def _call(self, verb: str, method: Any, name: str, body: dict[str, Any], manager: str) -> dict[str, Any]:
        self._metrics.api_requests.labels(verb, RECOMMENDATION_PLURAL).inc()
        # Raw response: the generated client maps only 200 to a body, and an apply that creates answers 201.
        response = await asyncio.to_thread(
            method, GROUP, VERSION, RECOMMENDATION_PLURAL, name, body,
            field_manager=manager, force=True, _content_type=APPLY_PATCH, _preload_content=False,
        )
        applied: dict[str, Any] = json.loads(response.data)
        return applied
