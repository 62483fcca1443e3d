"""Assemble and run the operator: kopf registry and settings, metrics, LLM, actions."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from prometheus_client import REGISTRY

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

    api_client = load_api_client()
    store = RecommendationStore(api_client, metrics)
    checkpoints = CheckpointStore(api_client, metrics) if settings.workloads else None
    service = build_insight_service(load_llm_settings(settings.llm_config), metrics.registry)
    insights = InsightWorker(service, store) if service is not None else None
    if insights is None:
        log.info("LLM insight is off (no provider configured)")
    operator: Operator
    executor = ActionExecutor(lambda node: operator.fleet.summary(node), apply_lmcache_action)
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


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    kopf_config = kopf.OperatorSettings()
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
    if settings.metrics_listen:
        options = settings.metrics_security
        reviewer = KubernetesReviewer(load_api_client()) if options.auth == EndpointAuth.KUBERNETES else None
        serve_in_background(make_metrics_server(REGISTRY, settings.metrics_listen, endpoint_security(options, reviewer)))
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
