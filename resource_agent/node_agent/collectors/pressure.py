"""Linux pressure stall information (PSI) from <host_proc>/pressure/{cpu,memory,io,irq}.

Format (Documentation/accounting/psi.rst): one line per kind,
"some avg10=.. avg60=.. avg300=.. total=..", then "full ..." (system-wide cpu
"full" since 5.13, always zero). /proc/pressure/irq (6.1+, with
CONFIG_IRQ_TIME_ACCOUNTING) has only a "full" line: kernel/sched/psi.c
psi_show() sets `only_full = res == PSI_IRQ`; it fails with EOPNOTSUPP when
IRQ time accounting is off at boot. node_exporter reads the same four files
(collector/pressure_linux.go: node_pressure_irq_stalled_seconds_total from irq
"full").
"""

from __future__ import annotations

import re
from pathlib import Path

from resource_agent.api.samples import IrqPressure, PressureLine, PressureResource, PressureSample, Sample
from resource_agent.node_agent.collectors.base import Collector, CollectorContext, CollectorUnavailable, register_collector

RESOURCES = ("cpu", "memory", "io")
FULL_ONLY_RESOURCES = ("irq",)


_DECIMAL = re.compile(r"\A[0-9]+(\.[0-9]+)?\Z")
_UNSIGNED = re.compile(r"\A[0-9]+\Z")
MAX_PROBLEM_TEXT = 80


class PressureFormatError(ValueError):
    """A PSI file that does not look like the kernel's format."""


def parse_pressure_lines(text: str, source: str = "PSI", problems: list[str] | None = None) -> dict[str, PressureLine]:
    """The lines of one PSI file by kind ("some", "full").

    A malformed line raises PressureFormatError, unless `problems` is given: then it is skipped
    and reported there, and the other lines are kept."""
    lines: dict[str, PressureLine] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        kind, *fields = raw.split()
        try:
            values = dict(field.split("=", 1) for field in fields)
            line = PressureLine(
                avg10=_share(values["avg10"]),
                avg60=_share(values["avg60"]),
                avg300=_share(values["avg300"]),
                total_microseconds=_counter(values["total"]),
            )
        except (KeyError, ValueError) as exc:
            quoted = raw if len(raw) <= MAX_PROBLEM_TEXT else raw[:MAX_PROBLEM_TEXT] + "..."
            message = f"{source} line {number}: cannot parse {quoted!r} ({type(exc).__name__}: {str(exc)[:MAX_PROBLEM_TEXT]})"
            if problems is None:
                raise PressureFormatError(message) from exc
            problems.append(message)
            continue
        lines[kind] = line
    return lines


def _share(text: str) -> float:
    """An avgN value: a percentage, 0-100 (the kernel prints it with two decimals)."""
    if not _DECIMAL.match(text) or not 0.0 <= (value := float(text)) <= 100.0:
        raise ValueError(f"not a percentage: {text[:MAX_PROBLEM_TEXT]!r}")
    return value


def _counter(text: str) -> int:
    if not _UNSIGNED.match(text):
        raise ValueError(f"not a counter: {text[:MAX_PROBLEM_TEXT]!r}")
    return int(text)


def parse_pressure(text: str, source: str = "PSI", problems: list[str] | None = None) -> PressureResource:
    """Parse a cpu, memory or io PSI file ("some" line, optional "full" line)."""
    lines = parse_pressure_lines(text, source, problems)
    if "some" not in lines:
        raise PressureFormatError(f"{source}: no 'some' line")
    return PressureResource(some=lines["some"], full=lines.get("full"))


def parse_irq_pressure(text: str, source: str = "PSI", problems: list[str] | None = None) -> IrqPressure:
    """Parse /proc/pressure/irq (a "full" line only)."""
    lines = parse_pressure_lines(text, source, problems)
    if "full" not in lines:
        raise PressureFormatError(f"{source}: no 'full' line")
    return IrqPressure(full=lines["full"])


class PressureCollector(Collector):
    name = "pressure"

    def __init__(self, context: CollectorContext) -> None:
        self.directory = context.host_proc / "pressure"
        self._problems: list[str] = []

    def status_reason(self) -> str | None:
        """The malformed PSI lines or files the last update skipped (the others were read)."""
        return "; ".join(self._problems) if self._problems else None

    def update(self, sample: Sample) -> None:
        if not self.directory.is_dir():
            raise CollectorUnavailable(f"PSI not available: {self.directory} does not exist (kernel < 4.20 or CONFIG_PSI off)")
        resources: dict[str, PressureResource | IrqPressure] = {}
        unreadable: list[str] = []
        problems: list[str] = []
        self._problems = problems
        for resource in RESOURCES + FULL_ONLY_RESOURCES:
            path: Path = self.directory / resource
            try:
                text = path.read_text()
            except (OSError, UnicodeDecodeError) as exc:  # absent, or EOPNOTSUPP when booted with psi=0 (irq: without IRQ time accounting)
                if resource not in FULL_ONLY_RESOURCES:  # irq is absent before 6.1 and optional everywhere
                    unreadable.append(f"{path}: {getattr(exc, 'strerror', None) or exc}")
                continue
            try:
                if resource in FULL_ONLY_RESOURCES:
                    resources[resource] = parse_irq_pressure(text, str(path), problems)
                else:
                    resources[resource] = parse_pressure(text, str(path), problems)
            except PressureFormatError as exc:  # this file is unusable: report it, keep the other resources
                problems.append(str(exc))
        if not resources:
            if problems:
                raise PressureFormatError("; ".join(problems))
            raise CollectorUnavailable("PSI not available: " + "; ".join(unreadable))
        sample.pressure = PressureSample(**resources)


@register_collector("pressure")
def _pressure(context: CollectorContext) -> Collector:
    return PressureCollector(context)
