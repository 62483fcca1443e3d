"""Parsing real-shaped vLLM and SGLang expositions, and the window's latency quantiles."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from resource_agent.api.samples import ServingSample
from resource_agent.node_agent.serving_summary import ServingReducer, bucket_quantile
from resource_agent.serving.discovery import Endpoint
from resource_agent.serving.metrics import ExpositionError, parse_exposition
from resource_agent.serving.sample import instance_samples

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "serving"
VLLM = Endpoint(id="llm/vllm-0", engine="vllm", url="http://10.0.0.5:8000/metrics", pod="vllm-0", namespace="llm")
TTFT = "vllm:time_to_first_token_seconds"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_vllm_v1_data_parallel_engines_are_separate_groups() -> None:
    groups = parse_exposition(fixture("vllm-0.11-dp2-scrape1.prom"), "vllm")
    assert [(g.model_name, g.engine_index) for g in groups] == [("meta-llama/Llama-3.1-8B-Instruct", "0"), ("meta-llama/Llama-3.1-8B-Instruct", "1")]
    healthy, bound = groups
    assert healthy.gauges["kv_cache_usage"] == pytest.approx(0.55) and bound.gauges["kv_cache_usage"] == pytest.approx(0.985)
    assert bound.gauges["requests_waiting"] == 25 and bound.counters["preemptions"] > 0
    assert healthy.cache_config["gpu_memory_utilization"] == "0.9" and healthy.cache_config["num_gpu_blocks"] == "27975"
    assert set(healthy.finished_by_reason) == {"stop", "length", "abort"}
    assert sum(healthy.finished_by_reason.values()) == healthy.counters["requests_finished"]
    ttft = healthy.histograms["ttft"]
    assert len(ttft.bounds) == 22 and ttft.bounds[0] == 0.001 and ttft.bounds[-1] == 2560.0
    assert ttft.counts[-1] == healthy.counters["requests_finished"]


def test_samples_carry_percent_and_config() -> None:
    samples = instance_samples(VLLM, parse_exposition(fixture("vllm-0.11-dp2-scrape1.prom"), "vllm"))
    assert samples[1].kv_cache_usage_percent == pytest.approx(98.5)
    assert samples[0].gpu_memory_utilization == 0.9 and samples[0].block_size == 16 and samples[0].num_gpu_blocks == 27975
    assert samples[0].instance == "llm/vllm-0" and samples[0].engine_index == "0"


def test_legacy_twins_count_once_and_old_names_alone_are_read() -> None:
    both = parse_exposition(fixture("vllm-0.10-legacy-names.prom"), "vllm")[0]
    text = fixture("vllm-0.10-legacy-names.prom")
    new_only = "\n".join(
        line for line in text.splitlines()
        if not any(old in line for old in ("gpu_cache_usage_perc", "gpu_prefix_cache", "time_per_output_token"))
    )
    assert parse_exposition(new_only, "vllm")[0].counters == both.counters  # the twins are not added up
    old_only = "\n".join(
        line for line in text.splitlines()
        if not any(new in line for new in ("kv_cache_usage_perc", "vllm:prefix_cache_", "inter_token_latency"))
    )
    old = parse_exposition(old_only, "vllm")[0]
    assert old.gauges["kv_cache_usage"] == both.gauges["kv_cache_usage"]
    assert old.counters["prefix_cache_queries"] == both.counters["prefix_cache_queries"]
    assert old.histograms["inter_token"].bounds == both.histograms["inter_token"].bounds


def test_vllm_v0_without_engine_label() -> None:
    [group] = parse_exposition(fixture("vllm-v0-old-names.prom"), "vllm")
    assert group.engine_index is None and group.model_name == "mistralai/Mistral-7B-Instruct-v0.3"
    assert group.gauges == {"requests_running": 12, "requests_waiting": 3, "kv_cache_usage": 0.42, "prefix_cache_hit_rate": 0.31}
    assert group.counters["preemptions"] == 7 and group.histograms["inter_token"].counts[-1] == 2400


def test_sglang() -> None:
    [group] = parse_exposition(fixture("sglang.prom"), "sglang")
    assert group.model_name == "Qwen/Qwen2.5-7B-Instruct"
    assert group.gauges["requests_running"] == 40 and group.gauges["kv_cache_usage"] == pytest.approx(0.55)
    assert group.gauges["max_total_num_tokens"] == 400_000
    assert group.counters["prefix_cache_hits"] == pytest.approx(0.5 * group.counters["prefix_cache_queries"])
    assert set(group.histograms) == {"ttft", "inter_token", "e2e", "queue"}
    assert group.histograms["queue"].bounds[0] == 0.0


@pytest.mark.parametrize(
    ("body", "engine", "message"),
    [
        ("# HELP up x\n# TYPE up gauge\nup 1\n", "vllm", "no vllm: series"),
        (fixture("sglang.prom"), "vllm", "no vllm: series"),
        ("vllm:num_requests_running{model_name=\"m\" 1\n", "vllm", "malformed"),
    ],
)
def test_not_the_engines_metrics(body: str, engine: str, message: str) -> None:
    with pytest.raises(ExpositionError, match=message):
        parse_exposition(body, engine)


# --- the window's quantiles against PromQL ----------------------------------------------------


def promql_histogram_quantile(q: float, buckets: dict[float, float]) -> float:
    """promql/quantile.go bucketQuantile, written from its source: {upper bound (inf included): count}."""
    ordered = sorted(buckets.items())
    assert math.isinf(ordered[-1][0])
    counts = [count for _, count in ordered]
    for i in range(1, len(counts)):  # ensureMonotonic
        counts[i] = max(counts[i], counts[i - 1])
    observations = counts[-1]
    rank = q * observations
    b = next(i for i, count in enumerate(counts) if count >= rank)
    if b == len(ordered) - 1:
        return ordered[-2][0]
    if b == 0 and ordered[0][0] <= 0:
        return ordered[0][0]
    start, end, count = 0.0, ordered[b][0], counts[b]
    if b > 0:
        start = ordered[b - 1][0]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)


def buckets_of(text: str, name: str, engine: str) -> dict[float, float]:
    buckets = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{name}_bucket" and sample.labels.get("engine") == engine:
                buckets[float(sample.labels["le"])] = sample.value
    return buckets


def window_of(*scrapes: str) -> list:
    reducer = ServingReducer()
    for position, text in enumerate(scrapes):
        reducer.add(60.0 * position, ServingSample(instances=instance_samples(VLLM, parse_exposition(text, "vllm"))))
    return reducer.instances()


@pytest.mark.parametrize("engine", ["0", "1"])
def test_window_ttft_p95_is_histogram_quantile_of_the_increase(engine: str) -> None:
    first, second = fixture("vllm-0.11-dp2-scrape1.prom"), fixture("vllm-0.11-dp2-scrape2.prom")
    before, after = buckets_of(first, TTFT, engine), buckets_of(second, TTFT, engine)
    increase = {bound: after[bound] - before[bound] for bound in after}
    summary = next(s for s in window_of(first, second) if s.engine_index == engine)
    assert summary.ttft_seconds is not None
    assert summary.ttft_seconds.p95 == pytest.approx(promql_histogram_quantile(0.95, increase), rel=1e-12)
    assert summary.ttft_seconds.p50 == pytest.approx(promql_histogram_quantile(0.5, increase), rel=1e-12)
    assert summary.ttft_seconds.count == increase[math.inf]
    # never the cumulative buckets: the first scrape's observations are outside the window
    assert summary.ttft_seconds.count < after[math.inf]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_window_ttft_p95_matches_promtool(tmp_path: Path) -> None:
    """promtool (Prometheus 2.x: closed ranges, so two samples 1m apart span [1m] with no extrapolation)."""
    version = subprocess.run(["promtool", "--version"], capture_output=True, text=True).stdout
    if "version 2." not in version:
        pytest.skip("Prometheus 3 ranges are left-open and extrapolate; this check is written for 2.x")
    first, second = fixture("vllm-0.11-dp2-scrape1.prom"), fixture("vllm-0.11-dp2-scrape2.prom")
    before, after = buckets_of(first, TTFT, "1"), buckets_of(second, TTFT, "1")
    summary = next(s for s in window_of(first, second) if s.engine_index == "1")
    series = "\n".join(
        f"      - series: '{TTFT}_bucket{{le=\"{'+Inf' if math.isinf(bound) else bound}\",engine=\"1\"}}'\n        values: '{before[bound]} {after[bound]}'"
        for bound in before
    )
    (tmp_path / "rules.yaml").write_text("groups: []\n")
    (tmp_path / "test.yaml").write_text(
        f"""rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
{series}
    promql_expr_test:
      - expr: histogram_quantile(0.95, increase({TTFT}_bucket[1m]))
        eval_time: 1m
        exp_samples:
          - labels: '{{engine="1"}}'
            value: {summary.ttft_seconds.p95!r}
"""
    )
    result = subprocess.run(["promtool", "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_counter_reset_counts_the_restarted_engine_in_full() -> None:
    first, second = fixture("vllm-0.11-dp2-scrape1.prom"), fixture("vllm-0.11-dp2-scrape2.prom")
    # scrape1 -> scrape2 -> the engine restarted and served scrape1's worth again
    summary = next(s for s in window_of(first, second, first) if s.engine_index == "0")
    one = parse_exposition(first, "vllm")[0]
    two = parse_exposition(second, "vllm")[0]
    expected = (two.counters["generation_tokens"] - one.counters["generation_tokens"]) + one.counters["generation_tokens"]
    assert summary.generation_tokens_per_second == pytest.approx(expected / 120.0)
    ttft = summary.ttft_seconds
    assert ttft is not None and ttft.count == (two.histograms["ttft"].counts[-1] - one.histograms["ttft"].counts[-1]) + one.histograms["ttft"].counts[-1]


def test_bucket_quantile_edges() -> None:
    assert bucket_quantile(0.95, [1.0, 2.0], [0, 0, 0]) is None  # nothing observed: NaN in PromQL
    assert bucket_quantile(0.99, [1.0, 2.0], [0, 1, 10]) == 2.0  # in +Inf: the highest finite bound
    assert bucket_quantile(0.5, [1.0, 2.0], [4, 4, 4]) == pytest.approx(0.5)  # first bucket starts at 0
    assert bucket_quantile(0.5, [0.0, 1.0], [3, 4, 4]) == 0.0  # a bound at or below 0
    assert bucket_quantile(0.5, [1.0, 2.0], [4, 2, 4]) == pytest.approx(0.5)  # made monotonic first
