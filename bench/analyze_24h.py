"""Benchmark: read + summarise + analyse a 24-hour recording of an 8-GPU node.

Generates 17,280 samples (24 h at 5 s) of a scenario, writes them as JSON Lines
to a temporary file once, then times on that file, against plain `json.loads`
of every line (the peer): the streamed path `resource-agent analyze` takes
(`reduce_recording`: each sample parsed and added to a `WindowReducer`, none
kept), the reducer's final `summary()` + `analyze` of it, and, for comparison,
the list path (`read_recording` of all samples, then `summarize` of the list).
Ratios are against the peer measured in the same run. Times are CPU seconds of
this process (`time.process_time`), best of `--repeats` where a step can be
repeated: the machine may be shared, and wall time would count the other
tenants. Peak RSS is the process's high-water mark after each path (the
streamed path runs first, so its figure is its own). Exits 1 when summary +
analyze takes more than the budget (1 s by default): reading and parsing is
its own line, with its own ratio.

    .venv/bin/python bench/analyze_24h.py [--scenario cache-thrash] [--budget 1.0]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from resource_agent.analysis.engine import analyze
from resource_agent.node_agent.recording import read_recording, reduce_recording, write_recording
from resource_agent.node_agent.window import summarize
from resource_agent.scenarios import generate

SAMPLES = 24 * 3600 // 5
GPUS = 8
T = TypeVar("T")


def timed(function: Callable[[], T], repeats: int) -> tuple[T, float]:
    """The result and the least CPU time of `repeats` runs."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.process_time()
        result = function()
        best = min(best, time.process_time() - started)
    return result, best  # type: ignore[return-value]


def parse_lines(path: Path) -> int:
    with path.open(encoding="utf-8") as handle:
        return sum(1 for line in handle if json.loads(line))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="cache-thrash")
    parser.add_argument("--samples", type=int, default=SAMPLES)
    parser.add_argument("--budget", type=float, default=1.0, help="CPU seconds allowed for the final summary + analyse")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "24h.jsonl"
        started = time.perf_counter()
        count = write_recording(path, generate(args.scenario, samples=args.samples, interval_seconds=5.0, gpus=GPUS))
        generated = time.perf_counter() - started
        size = path.stat().st_size
        print(f"recording: {count} samples of {args.scenario!r}, {GPUS} GPUs, {size / 1e6:.1f} MB (generated in {generated:.1f} s)")

        _, peer = timed(lambda: parse_lines(path), args.repeats)
        rss_start = peak_rss_mib()
        reducer, streamed = timed(lambda: reduce_recording(path), 1)  # once: its peak RSS is measured
        rss_streamed = peak_rss_mib()
        summary, summarized = timed(lambda r=reducer: r.summary("bench-node"), args.repeats)
        analysis, analyzed = timed(lambda: analyze(summary), args.repeats)
        del reducer
        samples, read = timed(lambda: read_recording(path), 1)  # once: it keeps every sample
        rss_list = peak_rss_mib()
        listed, summarized_list = timed(lambda: summarize(samples, "bench-node"), args.repeats)
        if listed != summary:
            print("FAIL: the streamed summary differs from summarize of the list", file=sys.stderr)
            return 1

    work = summarized + analyzed
    rows = [
        ("json.loads per line (peer)", peer),
        ("streamed read + reduce", streamed),
        ("reducer.summary()", summarized),
        ("analyze", analyzed),
        ("summary + analyze", work),
        ("read_recording (list)", read),
        ("summarize of the list", summarized_list),
    ]
    for label, seconds in rows:
        print(f"{label:28s} {seconds * 1000:9.1f} ms   {seconds / peer:6.2f}x json.loads")
    print(f"peak RSS: {rss_start:.0f} MiB before, {rss_streamed:.0f} MiB after the streamed path, {rss_list:.0f} MiB after the list path")
    print(f"findings: {len(analysis.findings)}; health {analysis.scores.health:g}")
    if work > args.budget:
        print(f"FAIL: summary + analyze took {work:.3f} s, over the {args.budget:g} s budget", file=sys.stderr)
        return 1
    print(f"OK: summary + analyze {work:.3f} s <= {args.budget:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
