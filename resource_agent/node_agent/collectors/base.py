"""The collector interface, registry and runner (after node_exporter's collector.go).

A collector has one method, `update`, which fills its section of a `Sample`.
`CollectorUnavailable` means "no data here" (no NVML, no PSI) and is not a
failure; any other exception is a failure, recorded with its reason, and never
stops the other collectors.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from resource_agent.api.samples import CollectorState, CollectorStatus, Sample


class CollectorUnavailable(Exception):
    """Nothing to collect on this machine; the message says why."""


@dataclass(frozen=True)
class CollectorContext:
    """Settings every collector may read."""

    host_proc: Path = Path("/proc")
    host_sys: Path = Path("/sys")
    host_root: Path = Path("/")  # the host's / (like node_exporter --path.rootfs), for filesystem usage
    node_name: str | None = None
    lmcache_urls: tuple[str, ...] = ()
    serving_urls: tuple[str, ...] = ()  # ENGINE=URL specs of serving engines (vLLM, SGLang)
    scenario: str | None = None
    scenario_seed: int = 0
    options: dict[str, str] = field(default_factory=dict)


class Collector(ABC):
    """One source of measurements."""

    name: str

    @abstractmethod
    def update(self, sample: Sample) -> None:
        """Fill this collector's section of `sample`, or raise CollectorUnavailable."""

    def close(self) -> None:  # noqa: B027  (optional hook: most collectors hold nothing to release)
        """Release resources (NVML handles, HTTP clients)."""

    def status_reason(self) -> str | None:
        """A note on the last successful update (e.g. functions the driver lacks), or None."""
        return None


CollectorFactory = Callable[[CollectorContext], Collector]


@dataclass(frozen=True)
class Registration:
    name: str
    enabled_by_default: bool
    factory: CollectorFactory


REGISTRY: dict[str, Registration] = {}


def register_collector(name: str, *, enabled_by_default: bool = True) -> Callable[[CollectorFactory], CollectorFactory]:
    """Register a collector factory; it gets a `--collector.<name>` switch."""

    def decorate(factory: CollectorFactory) -> CollectorFactory:
        REGISTRY[name] = Registration(name, enabled_by_default, factory)
        return factory

    return decorate


def run_collectors(collectors: Iterable[Collector], timestamp: float | None = None) -> Sample:
    """Run every collector once into a new sample, timing each and recording its state."""
    sample = Sample(timestamp=time.time() if timestamp is None else timestamp)
    for collector in collectors:
        started = time.perf_counter()
        reason: str | None
        try:
            collector.update(sample)
        except CollectorUnavailable as exc:
            state, reason = CollectorState.UNAVAILABLE, str(exc)
        except Exception as exc:  # a crash in one collector must not stop the others
            state, reason = CollectorState.FAILED, f"{type(exc).__name__}: {exc}"
        else:
            state, reason = CollectorState.OK, collector.status_reason()
        sample.collectors.append(
            CollectorStatus(
                name=collector.name,
                state=state,
                reason=reason,
                duration_seconds=time.perf_counter() - started,
            )
        )
    return sample
