"""WorkloadUsageCheckpoints: the operator's long-horizon usage per workload, kept in the cluster (the Kubernetes edge).

One object per workload, in the workload's namespace, written whole with one server-side apply
(the CRD has no status subresource) at most every checkpoint interval and only for workloads
with new observations; listed once when the operator starts reconciling, so a restart or a new
active replica continues the history.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from resource_agent.api.names import API_VERSION, GROUP, OPERATOR_FIELD_MANAGER, VERSION
from resource_agent.api.timestamps import utc_now
from resource_agent.api.usage import (
    CHECKPOINT_KIND,
    CHECKPOINT_PLURAL,
    WorkloadRef,
    WorkloadUsageCheckpointSpec,
    WorkloadUsageCheckpointStatus,
)
from resource_agent.operator.metrics import OperatorMetrics
from resource_agent.workloads.usage import UsageSettings, WorkloadState

APPLY_PATCH = "application/apply-patch+yaml"
WORKLOAD_KIND_LABEL = f"{GROUP}/workload-kind"
_DNS_INVALID = re.compile(r"[^a-z0-9-]+")
log = logging.getLogger(__name__)


def checkpoint_name(ref: WorkloadRef) -> str:
    """A DNS-1123 name per (kind, name) in the namespace: readable, with a digest against collisions."""
    digest = hashlib.sha256(f"{ref.kind.value}\0{ref.name}".encode()).hexdigest()[:8]
    readable = _DNS_INVALID.sub("-", f"{ref.kind.value}-{ref.name}".lower()).strip("-")[:200].strip("-")
    return f"{readable}-{digest}"


class CheckpointStore:
    def __init__(self, api_client: client.ApiClient, metrics: OperatorMetrics) -> None:
        self._objects = client.CustomObjectsApi(api_client)
        self._metrics = metrics

    async def load(self) -> list[tuple[WorkloadRef, WorkloadUsageCheckpointStatus]]:
        """Every checkpoint in the cluster (one LIST); unreadable ones are skipped with a warning."""
        self._metrics.api_requests.labels("list", CHECKPOINT_PLURAL).inc()
        try:
            result: Any = await asyncio.to_thread(self._objects.list_cluster_custom_object, GROUP, VERSION, CHECKPOINT_PLURAL)
        except ApiException as exc:
            log.warning("cannot list %s (HTTP %s): workload usage starts empty", CHECKPOINT_PLURAL, exc.status)
            return []
        loaded = []
        for item in result.get("items", []):
            try:
                spec = WorkloadUsageCheckpointSpec.model_validate(item.get("spec") or {})
                status = WorkloadUsageCheckpointStatus.model_validate(item.get("status") or {})
            except ValidationError as exc:
                log.warning("ignoring checkpoint %s: %s", item.get("metadata", {}).get("name"), exc.errors()[0]["msg"])
                continue
            loaded.append((spec.target, status))
        return loaded

    async def save(self, state: WorkloadState, settings: UsageSettings) -> None:
        ref = state.ref
        name = checkpoint_name(ref)
        status = WorkloadUsageCheckpointStatus(checkpointed_at=utc_now(), usage=state.usage(settings))
        body: dict[str, Any] = {
            "apiVersion": API_VERSION, "kind": CHECKPOINT_KIND,
            "metadata": {"name": name, "namespace": ref.namespace, "labels": {WORKLOAD_KIND_LABEL: ref.kind.value}},
            "spec": state.spec(settings).to_wire(), "status": status.to_wire(),
        }
        self._metrics.api_requests.labels("apply", CHECKPOINT_PLURAL).inc()
        response: Any = await asyncio.to_thread(
            self._objects.patch_namespaced_custom_object, GROUP, VERSION, ref.namespace, CHECKPOINT_PLURAL, name, body,
            field_manager=OPERATOR_FIELD_MANAGER, force=True, _content_type=APPLY_PATCH, _preload_content=False,
        )
        json.loads(response.data)

    async def delete(self, ref: WorkloadRef) -> None:
        self._metrics.api_requests.labels("delete", CHECKPOINT_PLURAL).inc()
        try:
            await asyncio.to_thread(
                self._objects.delete_namespaced_custom_object, GROUP, VERSION, ref.namespace, CHECKPOINT_PLURAL, checkpoint_name(ref)
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
