"""Assemble and run the operator: kopf registry and settings, metrics, LLM, actions."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import kopf
from prometheus_client import REGISTRY
from pydantic import ValidationError

from resource_agent.api.resources import ResourceReportStatus
from resource_agent.api.summary import NodeSummary
from resource_agent.kube.config import load_api_client
from resource_agent.kube.review import KubernetesReviewer
from resource_agent.node_agent.httpauth import EndpointAuth
from resource_agent.node_agent.server import endpoint_security, make_metrics_server, serve_in_background
from resource_agent.operator.actions import ActionExecutor
from resource_agent.operator.checkpoints import CheckpointStore
from resource_agent.operator.handlers import Operator
from resource_agent.operator.insights import InsightWorker
from resource_agent.operator.lmcache_apply import apply_lmcache_action
from resource_agent.operator.metrics import OperatorMetrics
from resource_agent.operator.settings import OperatorSettings
from resource_agent.operator.store import RecommendationStore

log = logging.getLogger(__name__)


def build_operator(settings: OperatorSettings, registry: kopf.OperatorRegistry, metrics: OperatorMetrics) -> Operator:
    from resource_agent.llm.service import build_insight_service
    from resource_agent.llm.settings import load_llm_settings

    api_client = load_api_client(connection_pool_maxsize=API_CONCURRENCY)
    store = RecommendationStore(api_client, metrics)
    checkpoints = CheckpointStore(api_client, metrics) if settings.workloads else None
    service = build_insight_service(load_llm_settings(settings.llm_config), metrics.registry)
    insights = InsightWorker(service, store) if service is not None else None
    if insights is None:
        log.info("LLM insight is off (no provider configured)")
    executor = ActionExecutor(lambda node: latest_summary(store, node), apply_lmcache_action)
    operator = Operator(settings, store, metrics, executor, insights, checkpoints)
    operator.register(registry)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:  # kopf passes its activity kwargs (logger, settings, ...)
        return kopf.login_via_client(**kwargs)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: object) -> None:
        await operator.save_checkpoints()  # keep what was observed since the last checkpoint
        if insights is not None:
            await insights.close()

    return operator


async def latest_summary(store: RecommendationStore, node: str) -> NodeSummary | None:
    """The node's latest report, read from the API (applies are rare; the operator keeps no summaries)."""
    body = await store.get_report(node)
    try:
        return ResourceReportStatus.model_validate((body or {}).get("status") or {}) if body else None
    except ValidationError:
        return None


API_CONCURRENCY = 32  # the default executor's most threads (min(32, CPUs + 4)): the store's calls run there


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff-base: the operator has only event handlers and indexes, which never read one. kopf's default
    deep-copies every event's body (the report's whole status) to build it and then throws it away."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class QuietHandlerSuccess(logging.Filter):
    """Drop kopf's INFO "Handler '...' succeeded." (one line per report event); failures and our own lines stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and str(record.msg).endswith(" succeeded."))


def quiet_per_event_logs() -> None:
    logging.getLogger("kopf.objects").addFilter(QuietHandlerSuccess())


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    kopf_config = kopf.OperatorSettings()
    kopf_config.persistence.diffbase_storage = NoDiffBase()
    kopf_config.posting.enabled = False  # handler logs are not Events; the store posts the meaningful ones
    kopf_config.peering.priority = settings.priority
    kopf_config.peering.clusterwide = True
    kopf_config.peering.stealth = True
    if settings.peering:
        kopf_config.peering.name = settings.peering
        kopf_config.peering.mandatory = True
    else:
        kopf_config.peering.standalone = True
    kopf_config.watching.server_timeout = 300
    kopf_config.networking.request_timeout = 30
    return kopf_config


async def run_operator(settings: OperatorSettings) -> None:
    metrics = OperatorMetrics(REGISTRY)
    metrics.watch_loop(asyncio.get_running_loop())
    if settings.metrics_listen:
        options = settings.metrics_security
        reviewer = KubernetesReviewer(load_api_client()) if options.auth == EndpointAuth.KUBERNETES else None
        serve_in_background(make_metrics_server(REGISTRY, settings.metrics_listen, endpoint_security(options, reviewer)))
    if not log.isEnabledFor(logging.DEBUG):
        quiet_per_event_logs()
    registry = kopf.OperatorRegistry()
    build_operator(settings, registry, metrics)
    liveness = f"http://{settings.health_listen[0]}:{settings.health_listen[1]}/healthz" if settings.health_listen else None
    await kopf.operator(
        registry=registry,
        settings=kopf_settings(settings),
        clusterwide=True,
        standalone=settings.peering is None,
        peering_name=settings.peering,
        priority=settings.priority,
        liveness_endpoint=liveness,
    )
