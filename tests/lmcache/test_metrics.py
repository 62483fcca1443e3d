"""The parser and port combination on the real LMCache 0.5.6 exposition."""

from __future__ import annotations

from pathlib import Path

import pytest

from resource_agent.lmcache.metrics import ExpositionError, Histogram, combine, interval_mean, parse_exposition

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lmcache"


def load(name: str):
    return parse_exposition((FIXTURES / name).read_text())


def test_real_worker_exposition_parses_counters_gauges_and_histograms():
    worker = load("worker1.prom")
    rank = ("worker", "1")
    assert worker.values["num_requested_tokens_total"][rank] == 3584
    assert worker.values["num_hit_tokens_total"][rank] == 1280
    assert worker.values["local_cache_usage"][rank] == 4 * 2**30
    assert worker.values["time_to_retrieve_count"][rank] == 3
    assert worker.values["put_failed_count"][rank] == 2
    assert worker.model_name == "meta-llama/Llama-3.1-8B-Instruct"
    assert worker.ranks == {rank}


def test_all_ports_combined_tokens_once_usage_and_failures_summed():
    combined = combine([load("scheduler.prom"), load("worker0.prom"), load("worker1.prom")])
    # TP ranks see the same requests: tokens counted once, not per rank
    assert combined.totals["requested_tokens"] == 3584
    assert combined.totals["hit_tokens"] == 1280
    assert combined.totals["lookup_tokens"] == 3584  # from the scheduler port
    assert combined.totals["lookup_hits"] == 1280
    assert combined.totals["evictions"] == 4 + 5
    assert combined.totals["remote_errors"] == 0 + 2  # put_failed_count of worker 1
    # ... and its parts, kept apart for the rules
    assert combined.totals["put_failures"] == 2 and combined.totals["get_failures"] == 0
    assert combined.totals["ping_errors"] == 0 and combined.totals["ping_successes"] == 2  # one per worker
    assert combined.local_cpu_usage_bytes == (3 + 4) * 2**30
    assert combined.remote_ping_seconds == pytest.approx(0.0025)
    assert combined.healthy is True
    assert combined.worker_ranks == 2
    assert combined.histograms["time_to_retrieve"].count == 6


def test_two_ports_of_one_process_count_once():
    worker = load("worker0.prom")
    assert combine([worker, worker]).totals == combine([worker]).totals
    assert combine([worker, worker]).local_cpu_usage_bytes == 3 * 2**30


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('lmcache:num_hit_tokens_total{role="worker" 12\n', "malformed"),
        ("lmcache:num_hit_tokens_total NaNx\n", "malformed"),
        ("# HELP up ok\n# TYPE up gauge\nup 1\n", "no lmcache: series"),
        ("lmcache:local_cache_usage{role=\"worker\",worker_id=\"0\"} +Inf\n", "non-finite"),  # nothing else left
    ],
)
def test_bad_expositions_raise_a_clear_error(body, message):
    with pytest.raises(ExpositionError, match=message):
        parse_exposition(body)


def test_interval_mean_uses_the_increase_and_handles_resets():
    assert interval_mean(None, Histogram(1.0, 10)) is None
    assert interval_mean(Histogram(1.0, 10), Histogram(1.0, 10)) is None
    assert interval_mean(Histogram(1.0, 10), Histogram(3.0, 20)) == pytest.approx(0.2)
    assert interval_mean(Histogram(5.0, 50), Histogram(0.6, 2)) == pytest.approx(0.3)  # reset


def _simulated_expositions() -> list[tuple[str, str]]:
    from devtools.lmcache_simulator import PROFILES, SimulatedInstance

    bodies = []
    for profile in sorted(PROFILES):
        sim = SimulatedInstance(port=16999, workers=2, profile=profile, clock=lambda: 1234.5)  # not started: no sockets
        bodies += [(f"{profile}:{port}", sim.exposition(port).decode()) for port in sim.ports]
    return bodies


@pytest.mark.parametrize(
    ("name", "text"),
    [(name, (FIXTURES / name).read_text()) for name in ("scheduler.prom", "worker0.prom", "worker1.prom")] + _simulated_expositions(),
)
def test_parsing_only_the_series_combine_reads_changes_nothing(name: str, text: str) -> None:
    """The parser is handed ~25 of a port's ~130 sample lines; every combined figure, the ranks and the model stay."""
    read, every = parse_exposition(text), parse_exposition(text, series=None)
    assert read.ranks == every.ranks and read.model_name == every.model_name
    assert combine([read]) == combine([every])
    assert set(read.values) < set(every.values)
