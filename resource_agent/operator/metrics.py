"""The operator's Prometheus metrics."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.reconciles = Counter(
            "resource_agent_operator_reconciles", "Report reconciles, by outcome.", ["outcome"], registry=self.registry
        )
        self.reconcile_duration = Histogram(
            "resource_agent_operator_reconcile_duration_seconds",
            "Time to analyse one report and reconcile its recommendations.",
            registry=self.registry,
        )
        self.errors = Counter(
            "resource_agent_operator_errors", "Errors, by stage.", ["stage"], registry=self.registry
        )
        self.api_requests = Counter(
            "resource_agent_operator_api_requests",
            "Kubernetes API requests the operator made, by verb and resource.",
            ["verb", "resource"],
            registry=self.registry,
        )
        self.recommendations = Gauge(
            "resource_agent_operator_recommendations",
            "Recommendations known to the operator, by severity and phase.",
            ["severity", "phase"],
            registry=self.registry,
        )
        self.findings = Gauge(
            "resource_agent_operator_node_findings",
            "Findings in a node's latest report, by severity.",
            ["node", "severity"],
            registry=self.registry,
        )
        self.health = Gauge(
            "resource_agent_operator_node_health_score",
            "Node health score (0-100) from the latest report.",
            ["node"],
            registry=self.registry,
        )
        self.report_age = Gauge(
            "resource_agent_operator_node_report_age_seconds",
            "Seconds since the agent last wrote the node's ResourceReport (fleet pass).",
            ["node"],
            registry=self.registry,
        )
        self.report_stale = Gauge(
            "resource_agent_operator_node_report_stale",
            "1 when the node's ResourceReport is older than a few report intervals (fleet pass).",
            ["node"],
            registry=self.registry,
        )
        self.report_missing = Gauge(
            "resource_agent_operator_node_report_missing",
            "1 for each node with nvidia.com/gpu capacity and no ResourceReport (fleet pass).",
            ["node"],
            registry=self.registry,
        )
        self.applies = Counter(
            "resource_agent_operator_applies", "Approved actions carried out, by outcome.", ["outcome"],
            registry=self.registry,
        )
        self.fleet_gpus = Gauge(
            "resource_agent_operator_fleet_gpus",
            "GPUs of the fleet by state: allocatable (nodes), allocated (pods requesting nvidia.com/gpu), "
            "free (allocatable - allocated), allocated_idle (held by a pod, no work in the latest report).",
            ["state"],
            registry=self.registry,
        )
        self.workloads_tracked = Gauge(
            "resource_agent_operator_workloads_tracked", "Workloads with long-horizon GPU usage in memory.",
            registry=self.registry,
        )
        self.asyncio_tasks = Gauge(
            "resource_agent_operator_asyncio_tasks",
            "Unfinished asyncio tasks in the operator's event loop (kopf's watchers and workers, the operator's own).",
            registry=self.registry,
        )

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Count `loop`'s unfinished tasks at each scrape (the scrape runs on another thread)."""
        self.asyncio_tasks.set_function(lambda: len(asyncio.all_tasks(loop)))
