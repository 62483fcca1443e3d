"""Carry out an Approved `set-lmcache-config` action on the instance's internal API server.

Runtime-effective keys go to every port's `POST /conf`; start-up-only keys
(e.g. `max_local_cpu_size`) are not pretended: the result carries the patch
for the workload's LMCache settings and says a restart is needed.

Applying is idempotent per port: when every process already serves the
runtime value the action asks for (a replayed or stale event, or someone set
it by hand), nothing is posted and the result says so; when only some do (an
apply interrupted by an operator restart), only the others get the POST and
the message names the ports that were skipped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx

from resource_agent.api.findings import Action
from resource_agent.api.resources import ApplyResult
from resource_agent.api.summary import LMCacheInstanceSummary, NodeSummary
from resource_agent.api.timestamps import utc_now
from resource_agent.lmcache.apply import APPLIED, SKIPPED, PlanError, apply_config_change, plan_config_change
from resource_agent.lmcache.config import RUNTIME_EFFECTIVE_KEYS, coerce, redact_conf

SPARE_MEMORY_SHARE = 0.5  # at most half of the node's lowest available memory in the window


async def apply_lmcache_action(action: Action, instance: LMCacheInstanceSummary, summary: NodeSummary) -> ApplyResult:
    now = utc_now()
    if not instance.urls:
        return ApplyResult(attempted_at=now, succeeded=False, attempts=0, error="the instance has no known URLs")
    try:
        confs = await _current_confs(instance.urls)
        done = _already_applied(action, confs, now)
        if done is not None:
            return done
        plan = plan_config_change(
            action, _pending_conf(action, confs),
            spare_memory_bytes=summary.memory.available_bytes.min * SPARE_MEMORY_SHARE,
            ranks=instance.worker_ranks or max(len(instance.urls) - 1, 1),
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
        error=result.error, message=_applied_message(key, _text(plan.value), result.ports) if result.ok else None,
    )


def _applied_message(key: str, value: str, ports: dict[str, str]) -> str:
    """'<key> set to <value> on N port(s)', naming the written and the skipped ports when some were skipped."""
    written = [url for url, outcome in ports.items() if outcome == APPLIED]
    skipped = [url for url, outcome in ports.items() if outcome == SKIPPED]
    if not skipped:
        return f"{key} set to {value} on {len(written)} port(s)"
    return (f"{key} set to {value} on {len(written)} port(s) ({', '.join(written)}); "
            f"already {value} on {len(skipped)} port(s), not posted again ({', '.join(skipped)})")


async def _current_confs(urls: Sequence[str]) -> list[dict[str, Any]]:
    """Every process's /conf (each has its own), redacted at once."""

    async def one(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
        response = await client.get(f"{url}/conf")
        response.raise_for_status()
        return redact_conf(response.json())

    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        return list(await asyncio.gather(*(one(client, url) for url in urls)))


def _runtime_value(action: Action) -> tuple[str, Any] | None:
    """The action's runtime-effective key and its value; None for a start-up key or a value the planner rejects."""
    key = str(action.parameters.get("key", ""))
    if key not in RUNTIME_EFFECTIVE_KEYS:
        return None
    try:
        return key, coerce(key, action.parameters.get("value"))
    except (TypeError, ValueError):
        return None  # the planner explains what is wrong with the value


def _already_applied(action: Action, confs: Sequence[dict[str, Any]], now: datetime) -> ApplyResult | None:
    """A success without a POST when every process already serves the runtime value; else None (plan it)."""
    wanted = _runtime_value(action)
    if wanted is None or not confs or any(conf.get(wanted[0]) != wanted[1] for conf in confs):
        return None
    key, value = wanted
    previous = action.parameters.get("previous")
    return ApplyResult(
        attempted_at=now, succeeded=True, attempts=0,
        before={key: _text(previous if previous is not None else value)}, after={key: _text(value)},
        message=f"{key} is already {_text(value)} on all {len(confs)} port(s): nothing to post",
    )


def _pending_conf(action: Action, confs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The conf to plan from: the first process not serving the runtime value yet (an interrupted apply may have reached the others)."""
    wanted = _runtime_value(action)
    if wanted is None:
        return confs[0]
    return next((conf for conf in confs if conf.get(wanted[0]) != wanted[1]), confs[0])


def _text(value: Any) -> str:
    return "" if value is None else str(value)
