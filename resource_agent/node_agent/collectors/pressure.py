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

from pathlib import Path

from resource_agent.api.samples import IrqPressure, PressureLine, PressureResource, PressureSample, Sample
from resource_agent.node_agent.collectors.base import Collector, CollectorContext, CollectorUnavailable, register_collector

RESOURCES = ("cpu", "memory", "io")
FULL_ONLY_RESOURCES = ("irq",)


class PressureFormatError(ValueError):
    """A PSI file that does not look like the kernel's format."""


def parse_pressure_lines(text: str, source: str = "PSI") -> dict[str, PressureLine]:
    """The lines of one PSI file by kind ("some", "full")."""
    lines: dict[str, PressureLine] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        kind, *fields = raw.split()
        try:
            values = dict(field.split("=", 1) for field in fields)
            lines[kind] = PressureLine(
                avg10=float(values["avg10"]),
                avg60=float(values["avg60"]),
                avg300=float(values["avg300"]),
                total_microseconds=int(values["total"]),
            )
        except (KeyError, ValueError) as exc:
            raise PressureFormatError(f"{source} line {number}: cannot parse {raw!r} ({exc})") from exc
    return lines


def parse_pressure(text: str, source: str = "PSI") -> PressureResource:
    """Parse a cpu, memory or io PSI file ("some" line, optional "full" line)."""
    lines = parse_pressure_lines(text, source)
    if "some" not in lines:
        raise PressureFormatError(f"{source}: no 'some' line")
    return PressureResource(some=lines["some"], full=lines.get("full"))


def parse_irq_pressure(text: str, source: str = "PSI") -> IrqPressure:
    """Parse /proc/pressure/irq (a "full" line only)."""
    lines = parse_pressure_lines(text, source)
    if "full" not in lines:
        raise PressureFormatError(f"{source}: no 'full' line")
    return IrqPressure(full=lines["full"])


class PressureCollector(Collector):
    name = "pressure"

    def __init__(self, context: CollectorContext) -> None:
        self.directory = context.host_proc / "pressure"

    def update(self, sample: Sample) -> None:
        if not self.directory.is_dir():
            raise CollectorUnavailable(f"PSI not available: {self.directory} does not exist (kernel < 4.20 or CONFIG_PSI off)")
        resources: dict[str, PressureResource | IrqPressure] = {}
        unreadable: list[str] = []
        for resource in RESOURCES + FULL_ONLY_RESOURCES:
            path: Path = self.directory / resource
            try:
                text = path.read_text()
            except OSError as exc:  # absent, or EOPNOTSUPP when booted with psi=0 (irq: without IRQ time accounting)
                if resource not in FULL_ONLY_RESOURCES:  # irq is absent before 6.1 and optional everywhere
                    unreadable.append(f"{path}: {exc.strerror or exc}")
                continue
            resources[resource] = parse_irq_pressure(text, str(path)) if resource in FULL_ONLY_RESOURCES else parse_pressure(text, str(path))
        if not resources:
            raise CollectorUnavailable("PSI not available: " + "; ".join(unreadable))
        sample.pressure = PressureSample(**resources)


@register_collector("pressure")
def _pressure(context: CollectorContext) -> Collector:
    return PressureCollector(context)
