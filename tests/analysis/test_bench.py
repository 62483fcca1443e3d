import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "analyze_24h.py"


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), "--samples", "120", "--repeats", "1", *args], capture_output=True, text=True, timeout=120)


def test_bench_reports_ratios_against_json_loads_and_passes_within_budget():
    result = run_bench("--budget", "60")
    assert result.returncode == 0, result.stderr
    assert "recording: 120 samples of 'cache-thrash'" in result.stdout
    assert "x json.loads" in result.stdout and "summary + analyze" in result.stdout
    for line in ("streamed read + reduce", "reducer.summary()", "read_recording (list)", "summarize of the list"):
        assert line in result.stdout
    assert "MiB after the streamed path" in result.stdout
    assert "OK: summary + analyze" in result.stdout


def test_bench_fails_over_budget():
    result = run_bench("--budget", "0.0000001", "--scenario", "healthy-busy")
    assert result.returncode == 1
    assert "over the 1e-07 s budget" in result.stderr
