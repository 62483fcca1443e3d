"""Linux pressure stall information (PSI) from <host_proc>/pressure/{cpu,memory,io}."""

from __future__ import annotations

from pathlib import Path

from resource_agent.api.samples import PressureLine, PressureResource, PressureSample, Sample
from resource_agent.node_agent.collectors.base import Collector, CollectorContext, CollectorUnavailable, register_collector

RESOURCES = ("cpu", "memory", "io")


class PressureFormatError(ValueError):
    """A PSI file that does not look like the kernel's format."""


def parse_pressure(text: str, source: str = "PSI") -> PressureResource:
    """Parse one PSI file ("some avg10=.. avg60=.. avg300=.. total=..", optional "full ..." line)."""
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
    if "some" not in lines:
        raise PressureFormatError(f"{source}: no 'some' line")
    return PressureResource(some=lines["some"], full=lines.get("full"))


class PressureCollector(Collector):
    name = "pressure"

    def __init__(self, context: CollectorContext) -> None:
        self.directory = context.host_proc / "pressure"

    def update(self, sample: Sample) -> None:
        if not self.directory.is_dir():
            raise CollectorUnavailable(f"PSI not available: {self.directory} does not exist (kernel < 4.20 or CONFIG_PSI off)")
        resources: dict[str, PressureResource] = {}
        unreadable: list[str] = []
        for resource in RESOURCES:
            path: Path = self.directory / resource
            try:
                text = path.read_text()
            except OSError as exc:  # absent, or EOPNOTSUPP when booted with psi=0
                unreadable.append(f"{path}: {exc.strerror or exc}")
                continue
            resources[resource] = parse_pressure(text, str(path))
        if not resources:
            raise CollectorUnavailable("PSI not available: " + "; ".join(unreadable))
        sample.pressure = PressureSample(**resources)


@register_collector("pressure")
def _pressure(context: CollectorContext) -> Collector:
    return PressureCollector(context)
