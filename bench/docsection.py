"""Shared by the benchmarks: the machine and versions they ran on, and their section of a doc.

Run the benchmarks as modules from the repository root (`python -m bench.report_size`)."""

from __future__ import annotations

import os
import platform
from importlib.metadata import version
from pathlib import Path


def versions(*packages: str) -> str:
    return ", ".join(f"{p} {version(p)}" for p in packages)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} CPUs (shared), Linux {platform.release()}, Python {platform.python_version()}"


def write_section(path: Path, marker: str, lines: list[str]) -> None:
    """Replace the text between the two `marker` lines of `path` (appended when absent) with `lines`."""
    section = "\n".join([marker, *lines, marker])
    old = path.read_text() if path.exists() else "# Performance\n"
    if marker in old:
        head, _, rest = old.partition(marker)
        _, _, tail = rest.partition(marker)
        path.write_text(head + section + tail)
    else:
        path.write_text(old.rstrip("\n") + "\n\n" + section + "\n")
