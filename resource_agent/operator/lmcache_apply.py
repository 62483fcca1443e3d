"""Carry out an Approved `set-lmcache-config` action on the instance's internal API server.

Runtime-effective keys go to every port's `POST /conf`; start-up-only keys
(e.g. `max_local_cpu_size`) are not pretended: the result carries the patch
for the workload's LMCache settings and says a restart is needed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from resource_agent.api.findings import Action
from resource_agent.api.resources import ApplyResult
from resource_agent.api.summary import LMCacheInstanceSummary, NodeSummary
from resource_agent.lmcache.apply import PlanError, apply_config_change, plan_config_change
from resource_agent.lmcache.config import redact_conf

SPARE_MEMORY_SHARE = 0.5  # at most half of the node's lowest available memory in the window


async def apply_lmcache_action(action: Action, instance: LMCacheInstanceSummary, summary: NodeSummary) -> ApplyResult:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if not instance.urls:
        return ApplyResult(attempted_at=now, succeeded=False, attempts=0, error="the instance has no known URLs")
    try:
        conf = await _current_conf(instance.urls[0])
        plan = plan_config_change(
            action, conf,
            spare_memory_bytes=summary.memory.available_bytes.min * SPARE_MEMORY_SHARE,
            ranks=max(len(instance.urls) - 1, 1),
        )
    except (PlanError, httpx.HTTPError, ValueError) as exc:
        return ApplyResult(attempted_at=now, succeeded=False, attempts=0, error=f"cannot plan the change: {exc}")
    result = await apply_config_change(plan, instance.urls)
    key = plan.key
    if result.restart_required:
        return ApplyResult(
            attempted_at=now, succeeded=True, attempts=0, restart_required=True,
            before={key: _text(plan.previous)}, after={key: _text(plan.value)},
            patch=json.dumps(result.patch, sort_keys=True),
            message=f"{key} is read at start-up: apply the patch to the workload and restart it. " + " ".join(plan.notes),
        )
    return ApplyResult(
        attempted_at=now, succeeded=result.ok, attempts=result.attempts,
        before={key: _text(result.before)}, after={key: _text(result.after)},
        error=result.error, message=f"{key} set to {_text(plan.value)} on {len(instance.urls)} port(s)" if result.ok else None,
    )


async def _current_conf(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        response = await client.get(f"{url}/conf")
        response.raise_for_status()
        return redact_conf(response.json())


def _text(value: Any) -> str:
    return "" if value is None else str(value)
