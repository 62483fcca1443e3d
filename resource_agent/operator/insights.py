"""LLM insight in the operator: explain a node's findings in the background.

The report handler never waits for the LLM. A node's latest analysis is
queued (one slot per node, so a slow provider holds no backlog); the worker
asks the insight service and writes the answer into `status.insight` of the
node's recommendations under its own field manager. A node whose findings
have the same fingerprint as the last one written costs no call and no write;
a changed set waits for the service's debounce unless a finding is new or
more severe (see `resource_agent.llm.budget.Debouncer`).
"""

from __future__ import annotations

import asyncio
import logging

from resource_agent.api.findings import Analysis
from resource_agent.api.summary import NodeSummary
from resource_agent.llm.fingerprint import fingerprint
from resource_agent.llm.service import InsightService
from resource_agent.operator.store import RecommendationStore

log = logging.getLogger(__name__)


class InsightWorker:
    def __init__(self, service: InsightService, store: RecommendationStore) -> None:
        self._service = service
        self._store = store
        self._pending: dict[str, tuple[NodeSummary, Analysis]] = {}
        self._written: dict[str, str] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def submit(self, summary: NodeSummary, analysis: Analysis) -> None:
        """Queue a node's latest analysis (replacing an older one still waiting)."""
        node = analysis.node_name
        if not analysis.findings or self._written.get(node) == fingerprint(node, analysis.findings):
            return
        if not self._service.due(node, analysis.findings):
            return
        self._pending[node] = (summary, analysis)
        task = self._tasks.get(node)
        if task is None or task.done():
            self._tasks[node] = asyncio.get_running_loop().create_task(self._drain(node))

    async def _drain(self, node: str) -> None:
        while node in self._pending:
            summary, analysis = self._pending.pop(node)
            current = fingerprint(node, analysis.findings)
            if self._written.get(node) == current:
                continue
            try:
                insight = await self._service.explain(node, analysis.findings, summary)
                if insight is None:
                    continue
                wire = insight.to_wire()
                for finding in analysis.findings:
                    await self._store.apply_insight(finding.resource_name(), wire)
                self._written[node] = current
            except Exception:  # the insight is optional: never let it break the operator
                log.exception("writing the LLM insight for node %s failed", node)

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        await self._service.close()
