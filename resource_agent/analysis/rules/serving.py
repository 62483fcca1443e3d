"""Serving-engine rules (vLLM, SGLang): tell idle, starved, queueing and KV-bound replicas apart.

NVML's utilisation overstates work and a serving engine pre-allocates its GPU memory, so the
GPU alone cannot tell an idle replica from a saturated one. These rules read what the engine
reports about its own work (`NodeSummary.serving`): its queue, KV-cache use, preemptions,
latency histograms and prefix-cache hits.
"""

from __future__ import annotations

from collections.abc import Mapping

from resource_agent.analysis.rule import RuleContext, rule
from resource_agent.analysis.support import action, evidence, make_finding, serving_sensitive, serving_target, window_seconds
from resource_agent.api.findings import Action, ActionType, Category, Evidence, Finding, Severity
from resource_agent.api.summary import GpuSummary, NodeSummary, ServingInstanceSummary

KV_BOUND = "serving-kv-cache-bound"
SCHEDULER_BOUND = "serving-scheduler-bound"
IDLE_REPLICA = "serving-idle-replica"
LATENCY_SLO = "serving-latency-slo"
LOW_PREFIX_HIT = "serving-prefix-cache-low-hit-rate"

# the engines' names for the settings the actions change
MEMORY_SETTING = {"vllm": "gpu_memory_utilization", "sglang": "mem_fraction_static"}
BATCH_SETTING = {"vllm": "max_num_seqs", "sglang": "max_running_requests"}
MAX_MEMORY_FRACTION = 0.95  # above this the engine leaves too little for activations and CUDA graphs


def engines(summary: NodeSummary) -> list[ServingInstanceSummary]:
    """The serving engines with figures in the window."""
    return [engine for engine in summary.serving.instances if engine.reachable and engine.samples > 0]


def engine_gpus(summary: NodeSummary, engine: ServingInstanceSummary) -> list[GpuSummary]:
    return [gpu for gpu in summary.gpu.devices if gpu.index in engine.gpu_indices]


def engines_on_gpu(summary: NodeSummary, gpu: GpuSummary) -> list[ServingInstanceSummary]:
    """The serving engines whose pod holds `gpu` (known when the GPU's processes carry the pod's uid)."""
    return [engine for engine in engines(summary) if gpu.index in engine.gpu_indices]


def queueing(engine: ServingInstanceSummary, waiting_mean_min: float) -> bool:
    waiting = engine.requests_waiting
    return waiting is not None and waiting.mean >= waiting_mean_min


def _label(engine: ServingInstanceSummary) -> str:
    model = f" ({engine.model_name})" if engine.model_name else ""
    index = f" engine {engine.engine_index}" if engine.engine_index else ""
    return f"{engine.engine} {engine.pod or engine.instance}{index}{model}"


def _finding(summary: NodeSummary, ctx: RuleContext, engine: ServingInstanceSummary, severity: Severity, text: str,
             proof: list[Evidence], act: Action, impact: str) -> Finding:
    return make_finding(summary, ctx, severity=severity, target=serving_target(engine), text=text, evidence=proof,
                        action=act, impact=impact, sensitive=serving_sensitive(engine))


def _kv_action(engine: ServingInstanceSummary) -> tuple[Action, str]:
    """Chosen from what the summary shows: memory headroom first, then offload, then replicas."""
    setting = MEMORY_SETTING.get(engine.engine, "gpu_memory_utilization")
    fraction = engine.gpu_memory_utilization
    if fraction is not None and fraction < MAX_MEMORY_FRACTION - 0.01:
        target = min(round(fraction + 0.05, 2), MAX_MEMORY_FRACTION)
        return (
            action(ActionType.TUNE_SERVING_ENGINE, instance=engine.instance, setting=setting, value=f"{target:g}", previous=f"{fraction:g}",
                   alternatives="shorter max_model_len; KV offload (LMCache); more replicas"),
            f"raise {setting} from {fraction:g} to {target:g} (or shorten max_model_len)",
        )
    if engine.lmcache_instance is None and engine.engine == "vllm":
        return (
            action(ActionType.TUNE_SERVING_ENGINE, instance=engine.instance, setting="kv_transfer_config",
                   value="LMCacheConnectorV1", alternatives="shorter max_model_len; more replicas"),
            "offload KV to CPU memory with LMCache (or shorten max_model_len, or add replicas)",
        )
    return (
        action(ActionType.SCALE_SERVING_REPLICAS, instance=engine.instance, direction="up", model=engine.model_name),
        "add replicas (or shorten max_model_len)",
    )


@rule(
    KV_BOUND,
    actions=(ActionType.TUNE_SERVING_ENGINE, ActionType.SCALE_SERVING_REPLICAS),
    family="serving",
    category=Category.SERVING,
    weight=75,
    defaults={"waiting_mean_min": 1.0, "kv_usage_p95_min": 90.0, "preemptions_min": 1.0},
)
def kv_cache_bound(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """Requests wait while the KV cache is nearly full (p95 of `vllm:kv_cache_usage_perc` or
    `sglang:token_usage` at least `kv_usage_p95_min` %) or the engine preempts running requests
    (at least `preemptions_min` in the window): the batch cannot grow because there is no room
    for more sequences' KV, so requests queue and preempted ones recompute. The action is chosen
    from the summary: raise the engine's memory fraction when it is below 0.95, else offload KV
    with LMCache when the engine has none, else add replicas; a shorter max_model_len is always
    an alternative."""
    limits = ctx.limits
    findings = []
    for engine in engines(summary):
        kv, waiting = engine.kv_cache_usage_percent, engine.requests_waiting
        if waiting is None or not queueing(engine, limits["waiting_mean_min"]):
            continue
        full = kv is not None and kv.p95 >= limits["kv_usage_p95_min"]
        preempting = (engine.preemptions or 0.0) >= limits["preemptions_min"]
        if not (full or preempting):
            continue
        act, what = _kv_action(engine)
        usage = f"KV cache at {kv.p95:.0f}% (p95)" if kv is not None else "KV cache use unknown"
        preempted = f", {engine.preemptions:.0f} preemptions" if engine.preemptions else ""
        proof = [evidence(summary, "serving.requests_waiting", "mean", waiting.mean, limits["waiting_mean_min"])]
        if kv is not None:
            proof.append(evidence(summary, "serving.kv_cache_usage_percent", "p95", kv.p95, limits["kv_usage_p95_min"], ">=", "%"))
        proof.append(evidence(summary, "serving.preemptions", "increase", engine.preemptions or 0.0, limits["preemptions_min"]))
        findings.append(_finding(
            summary, ctx, engine, Severity.WARNING,
            f"{_label(engine)} is KV-cache bound: {waiting.mean:.1f} requests waiting on average, {usage}{preempted}; {what}",
            proof, act, "Room for more sequences' KV lets the batch grow: shorter queues and time to first token, no recomputation.",
        ))
    return findings


@rule(
    SCHEDULER_BOUND,
    actions=(ActionType.TUNE_SERVING_ENGINE,),
    family="serving",
    category=Category.SERVING,
    weight=60,
    defaults={"waiting_mean_min": 1.0, "kv_usage_p95_max": 60.0, "sm_utilization_mean_max": 60.0, "host_cpu_busy_percent_min": 90.0},
)
def scheduler_bound(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """Requests wait while the KV cache has room (p95 below `kv_usage_p95_max` %), nothing is
    preempted and the engine's GPUs are not busy (SM utilisation mean below
    `sm_utilization_mean_max` %, where the engine's GPUs are known): the engine does not admit
    the work it has memory for. Either the batch limit is too low (vLLM max_num_seqs /
    max_num_batched_tokens, SGLang --max-running-requests) or the engine's CPU side (tokenising,
    scheduling) cannot keep up; a host CPU at least `host_cpu_busy_percent_min` % busy points at
    the CPU."""
    limits = ctx.limits
    findings = []
    for engine in engines(summary):
        kv, waiting = engine.kv_cache_usage_percent, engine.requests_waiting
        if waiting is None or kv is None or not queueing(engine, limits["waiting_mean_min"]):
            continue
        if kv.p95 >= limits["kv_usage_p95_max"] or (engine.preemptions or 0.0) > 0:
            continue
        gpus = [gpu.sm_utilization_percent.mean for gpu in engine_gpus(summary, engine) if gpu.sm_utilization_percent]
        if gpus and max(gpus) >= limits["sm_utilization_mean_max"]:
            continue
        cpu = summary.cpu.utilization_percent
        cpu_bound = cpu is not None and cpu.mean >= limits["host_cpu_busy_percent_min"]
        setting = BATCH_SETTING.get(engine.engine, "max_num_seqs")
        if cpu_bound:
            act = action(ActionType.TUNE_SERVING_ENGINE, instance=engine.instance, setting="cpu", reason="host CPU saturated",
                         alternatives=f"{setting}")
            what = f"the host CPU is {cpu.mean:.0f}% busy: give the engine more CPU"  # type: ignore[union-attr]
        else:
            running = engine.requests_running
            value = f"{int(running.max * 2)}" if running is not None and running.max > 0 else None
            act = action(ActionType.TUNE_SERVING_ENGINE, instance=engine.instance, setting=setting, value=value,
                         previous=f"{running.max:.0f} running (max)" if running is not None else None,
                         alternatives="max_num_batched_tokens; CPU for the engine")
            what = f"raise {setting} (or max_num_batched_tokens)"
        busy = f", GPU SM utilisation {max(gpus):.0f}%" if gpus else ""
        proof = [
            evidence(summary, "serving.requests_waiting", "mean", waiting.mean, limits["waiting_mean_min"]),
            evidence(summary, "serving.kv_cache_usage_percent", "p95", kv.p95, limits["kv_usage_p95_max"], "<", "%"),
        ]
        if gpus:
            proof.append(evidence(summary, "gpu.sm_utilization_percent", "mean", max(gpus), limits["sm_utilization_mean_max"], "<", "%"))
        findings.append(_finding(
            summary, ctx, engine, Severity.WARNING,
            f"{_label(engine)} queues {waiting.mean:.1f} requests on average with its KV cache at {kv.p95:.0f}% (p95){busy}: "
            f"scheduler or CPU bound; {what}",
            proof, act, "Admitting the queued requests into the batch uses the KV cache and GPU already paid for.",
        ))
    return findings


def is_idle_replica(engine: ServingInstanceSummary, limits: Mapping[str, float]) -> bool:
    """The engine finished, ran and queued nothing over the window (with `IDLE_REPLICA`'s thresholds)."""
    running, waiting, rate = engine.requests_running, engine.requests_waiting, engine.requests_per_second
    if running is None or running.max > 0 or (waiting is not None and waiting.max > 0):
        return False
    return rate is not None and rate <= limits["requests_per_second_max"]


@rule(
    IDLE_REPLICA,
    actions=(ActionType.SCALE_SERVING_REPLICAS,),
    family="serving",
    category=Category.SERVING,
    weight=15,
    defaults={"requests_per_second_max": 0.0, "warning_window_seconds": 3600.0},
)
def idle_replica(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """An engine that finished no requests (at most `requests_per_second_max` per second), ran
    none and queued none over the window holds its GPUs for nothing: a candidate for
    consolidation or scale-to-zero. Traffic has lulls, so over a short window this is
    information; it becomes a warning once the window covers `warning_window_seconds`."""
    limits = ctx.limits
    severity = Severity.WARNING if window_seconds(summary) >= limits["warning_window_seconds"] else Severity.INFO
    findings = []
    for engine in engines(summary):
        running, rate = engine.requests_running, engine.requests_per_second
        if running is None or rate is None or not is_idle_replica(engine, limits):
            continue
        gpus = f" on GPU {', '.join(str(i) for i in engine.gpu_indices)}" if engine.gpu_indices else ""
        findings.append(_finding(
            summary, ctx, engine, severity,
            f"{_label(engine)}{gpus} served no requests in {engine.window_seconds:.0f} s",
            [evidence(summary, "serving.requests_per_second", "mean", rate, limits["requests_per_second_max"], "<="),
             evidence(summary, "serving.requests_running", "max", running.max, 0.0, "<=")],
            action(ActionType.SCALE_SERVING_REPLICAS, instance=engine.instance, direction="zero", model=engine.model_name),
            "Consolidating or scaling the replica to zero frees its GPUs.",
        ))
    return findings


def _cause(engine: ServingInstanceSummary, latency_p95: float, limits: Mapping[str, float]) -> tuple[str, Action]:
    """The likely cause of a slow first token from the other signals, and what to do."""
    queue = engine.queue_time_seconds.p95 if engine.queue_time_seconds else None
    kv = engine.kv_cache_usage_percent
    if (engine.preemptions or 0.0) > 0 or (kv is not None and kv.p95 >= limits["kv_usage_p95_min"]):
        act, _ = _kv_action(engine)
        return "the KV cache is full (requests wait for room, preempted ones recompute)", act
    if queue is not None and queue >= limits["queue_share_min"] * latency_p95:
        if kv is not None and kv.p95 < limits["kv_usage_p95_room_max"]:  # queued with KV room: the batch limit
            setting = BATCH_SETTING.get(engine.engine, "max_num_seqs")
            return (f"requests spend {queue:.2f} s (p95) queued while the KV cache has room (batch limit or CPU)",
                    action(ActionType.TUNE_SERVING_ENGINE, instance=engine.instance, setting=setting, alternatives="max_num_batched_tokens; CPU for the engine"))
        return (f"requests spend {queue:.2f} s (p95) queued", action(ActionType.SCALE_SERVING_REPLICAS, instance=engine.instance,
                                                                     direction="up", model=engine.model_name))
    return "prefill or decode itself is slow (long prompts, large batches or a slow GPU)", action(
        ActionType.TUNE_SERVING_ENGINE, instance=engine.instance, setting="max_num_batched_tokens",
        alternatives="chunked prefill; smaller batches; a faster GPU")


@rule(
    LATENCY_SLO,
    actions=(ActionType.TUNE_SERVING_ENGINE, ActionType.SCALE_SERVING_REPLICAS),
    family="serving",
    category=Category.SERVING,
    weight=55,
    defaults={"ttft_p95_seconds_max": 2.0, "inter_token_p95_seconds_max": 0.2, "requests_min": 20.0,
              "queue_share_min": 0.5, "kv_usage_p95_min": 90.0, "kv_usage_p95_room_max": 60.0},
)
def latency_slo(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """The window's time to first token or inter-token latency p95 (the quantile of the
    histogram's increase in the window, as PromQL's histogram_quantile(0.95, increase(...))
    gives) above the SLO the policy names (`ttft_p95_seconds_max`, `inter_token_p95_seconds_max`),
    over at least `requests_min` requests. The finding names the likely cause from the other
    signals: a full KV cache or preemptions, time spent queued (queue p95 at least
    `queue_share_min` of the TTFT p95: the batch limit when the KV cache has room, p95 below
    `kv_usage_p95_room_max` %, else too few replicas), else the compute itself."""
    limits = ctx.limits
    findings = []
    for engine in engines(summary):
        ttft, itl = engine.ttft_seconds, engine.inter_token_latency_seconds
        breaches = []
        if ttft is not None and ttft.p95 is not None and ttft.count >= limits["requests_min"] and ttft.p95 > limits["ttft_p95_seconds_max"]:
            breaches.append(("time to first token", "serving.ttft_seconds", ttft.p95, limits["ttft_p95_seconds_max"]))
        if itl is not None and itl.p95 is not None and itl.count >= limits["requests_min"] and itl.p95 > limits["inter_token_p95_seconds_max"]:
            breaches.append(("inter-token latency", "serving.inter_token_latency_seconds", itl.p95, limits["inter_token_p95_seconds_max"]))
        if not breaches:
            continue
        cause, act = _cause(engine, breaches[0][2], limits)
        what = "; ".join(f"{name} p95 {value:.2f} s above the {slo:g} s SLO" for name, _, value, slo in breaches)
        findings.append(_finding(
            summary, ctx, engine, Severity.WARNING,
            f"{_label(engine)}: {what}; likely cause: {cause}",
            [evidence(summary, metric, "p95", value, slo, ">", "s") for _, metric, value, slo in breaches],
            act, "Brings the replica back within its latency SLO.",
        ))
    return findings


@rule(
    LOW_PREFIX_HIT,
    actions=(ActionType.TUNE_SERVING_ENGINE, ActionType.INVESTIGATE),
    family="serving",
    category=Category.SERVING,
    weight=25,
    defaults={"queries_per_second_min": 1000.0, "hit_rate_max": 0.1, "lmcache_hit_rate_min": 0.3, "kv_usage_p95_min": 90.0},
)
def prefix_cache_low_hit_rate(summary: NodeSummary, ctx: RuleContext) -> list[Finding]:
    """Many prompt tokens looked up in the prefix cache (at least `queries_per_second_min`
    tokens per second) with few found (hit rate at most `hit_rate_max`). On its own that may be
    a workload without shared prefixes: information. It is a warning when the prefixes do
    repeat and the GPU cache loses them: the linked LMCache instance finds at least
    `lmcache_hit_rate_min` of its lookups (so the same prefixes come back), or the KV cache is
    full (p95 at least `kv_usage_p95_min` %, evicting cached blocks). Then more KV room or
    prefix-aware routing (the same prefix to the same replica) saves the prefill."""
    limits = ctx.limits
    caches = {cache.instance: cache for cache in summary.lmcache.instances}
    findings = []
    for engine in engines(summary):
        rate, queries = engine.prefix_cache_hit_rate, engine.prefix_cache_queries
        if rate is None or queries is None or engine.window_seconds <= 0:
            continue
        per_second = queries / engine.window_seconds
        if per_second < limits["queries_per_second_min"] or rate > limits["hit_rate_max"]:
            continue
        cache = caches.get(engine.lmcache_instance or "")
        lmcache_rate = cache.lookup_hit_rate if cache is not None else None
        kv = engine.kv_cache_usage_percent
        reused = lmcache_rate is not None and lmcache_rate >= limits["lmcache_hit_rate_min"]
        full = kv is not None and kv.p95 >= limits["kv_usage_p95_min"]
        severity = Severity.WARNING if reused or full else Severity.INFO
        if full:
            setting = MEMORY_SETTING.get(engine.engine, "gpu_memory_utilization")
            act = action(ActionType.TUNE_SERVING_ENGINE, instance=engine.instance, setting=setting, alternatives="prefix-aware routing")
            why = f"the KV cache is full ({kv.p95:.0f}% p95) and evicts cached prefixes"  # type: ignore[union-attr]
        elif reused:
            act = action(ActionType.TUNE_SERVING_ENGINE, instance=engine.instance, setting="routing", value="prefix-aware",
                         alternatives=f"larger {MEMORY_SETTING.get(engine.engine, 'gpu_memory_utilization')}")
            why = f"LMCache finds {lmcache_rate:.0%} of the same prompts: the prefixes repeat but not on this GPU cache"
        else:
            act = action(ActionType.INVESTIGATE, hint="check whether prompts share prefixes (system prompts, few-shot) and whether routing spreads them")
            why = "no sign the prefixes repeat"
        proof = [
            evidence(summary, "serving.prefix_cache_hit_rate", "ratio", rate, limits["hit_rate_max"], "<="),
            evidence(summary, "serving.prefix_cache_queries", "per_second", per_second, limits["queries_per_second_min"], ">=", "tokens/s"),
        ]
        if lmcache_rate is not None:
            proof.append(evidence(summary, "lmcache.lookup_hit_rate", "ratio", lmcache_rate, limits["lmcache_hit_rate_min"]))
        findings.append(_finding(
            summary, ctx, engine, severity,
            f"{_label(engine)} finds {rate:.0%} of {per_second:.0f} prompt tokens/s in its prefix cache; {why}",
            proof, act, "Cached prefixes skip their prefill: less GPU time and a faster first token.",
        ))
    return findings


RULES = (kv_cache_bound, scheduler_bound, idle_replica, latency_slo, prefix_cache_low_hit_rate)
