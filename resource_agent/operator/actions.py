"""Carrying out Approved actions.

Only actions whose catalog entry says `operator_applies` get here (today:
LMCache configuration). The LMCache applier is injected so the operator core
stays testable without HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import ValidationError

from resource_agent.api.findings import Action, ActionType
from resource_agent.api.resources import ApplyResult
from resource_agent.api.summary import LMCacheInstanceSummary, NodeSummary
from resource_agent.api.timestamps import utc_now

LMCacheApplier = Callable[[Action, LMCacheInstanceSummary, NodeSummary], Awaitable[ApplyResult]]
SummaryLookup = Callable[[str], Awaitable[NodeSummary | None]]  # the node's latest report, read when applying


def failed(message: str, attempts: int = 0) -> ApplyResult:
    return ApplyResult(
        attempted_at=utc_now(),
        succeeded=False,
        attempts=attempts,
        error=message,
    )


class ActionExecutor:
    def __init__(self, latest_summary: SummaryLookup, lmcache_applier: LMCacheApplier | None = None) -> None:
        self._latest_summary = latest_summary
        self._lmcache_applier = lmcache_applier

    async def execute(self, spec: Mapping[str, Any], logger: logging.Logger | logging.LoggerAdapter[Any]) -> ApplyResult:
        """Carry out the spec's action; failures come back as a result, never as an exception."""
        try:
            action = Action.model_validate(spec.get("action") or {})
        except ValidationError as exc:
            return failed(f"invalid action: {exc.errors()[0]['msg']}")
        if action.type is not ActionType.SET_LMCACHE_CONFIG:
            return failed(f"the operator does not carry out '{action.type.value}'")
        if self._lmcache_applier is None:
            return failed("LMCache apply is not configured in this operator")
        node = str(spec.get("nodeName", ""))
        instance_name = str(action.parameters.get("instance", ""))
        summary = await self._latest_summary(node)
        instance = next(
            (i for i in (summary.lmcache.instances if summary else []) if i.instance == instance_name), None
        )
        if summary is None or instance is None:
            return failed(f"LMCache instance {instance_name!r} is not in node {node!r}'s latest report")
        try:
            return await self._lmcache_applier(action, instance, summary)
        except Exception as exc:  # a broken endpoint must not crash the operator
            logger.exception("applying %s to %s failed", action.type.value, instance_name)
            return failed(f"{type(exc).__name__}: {exc}")
