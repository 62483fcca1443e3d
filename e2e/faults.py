"""Checks shared by the fault tests (e2e/test_faults_*.py): what must hold after each fault."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devtools.demo.stack import ManagedProcess, wait_until
from e2e.loop import identities

MIB = 2**20
RSS_GROWTH_BOUND_BYTES = 64 * MIB  # what a process may grow by across one fault


def rss_bytes(process: ManagedProcess) -> int:
    """Resident set size of the process (Linux /proc)."""
    assert process.popen is not None
    for line in Path(f"/proc/{process.popen.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {process.name}")


def decisions(recommendations: Iterable[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """name -> (uid, spec.decision)."""
    return {r["metadata"]["name"]: (r["metadata"]["uid"], r["spec"].get("decision", "Pending")) for r in recommendations}


def assert_converged(before: dict[str, tuple[str, str]], after: list[dict[str, Any]]) -> None:
    """No duplicate recommendation, none recreated (same uid), no human decision lost."""
    seen = identities(after)
    assert len(seen) == len(set(seen)), f"duplicate recommendations: {sorted(seen)}"
    now = decisions(after)
    for name, (uid, decision) in before.items():
        assert name in now, f"{name} disappeared"
        assert now[name][0] == uid, f"{name} was recreated"
        assert now[name][1] == decision, f"{name}: decision {decision} became {now[name][1]}"


def reported_at(report: dict[str, Any] | None) -> datetime | None:
    stamp = ((report or {}).get("status") or {}).get("reportedAt")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None


def seconds_until(predicate: Callable[[], object], timeout: float, what: str, since: float | None = None) -> float:
    """Seconds from ``since`` (a time.monotonic(); default: now) until ``predicate`` holds (polled every 0.2 s)."""
    started = time.monotonic() if since is None else since
    wait_until(predicate, timeout, interval=0.2, what=what)
    return time.monotonic() - started


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)  # reportedAt has whole seconds


def assert_alive(processes: Iterable[ManagedProcess], pids: dict[str, int]) -> None:
    """Every process still runs, and is the one that ran before the fault (no restart)."""
    for process in processes:
        assert process.alive, f"{process.name} died:\n{process.tail()}"
        assert process.popen is not None and process.popen.pid == pids[process.name], f"{process.name} was restarted"


def pids_of(processes: Iterable[ManagedProcess]) -> dict[str, int]:
    return {p.name: p.popen.pid for p in processes if p.popen is not None}
