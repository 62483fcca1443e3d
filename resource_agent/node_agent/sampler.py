"""Build the enabled collectors and take samples with them.

Every module of `resource_agent.node_agent.collectors` is imported so that its
collectors register themselves; a module that fails to import is reported as
a failed collector on every sample instead of crashing the agent.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Mapping

from resource_agent.api.samples import CollectorState, CollectorStatus, Sample
from resource_agent.node_agent import collectors as collectors_package
from resource_agent.node_agent.collectors.base import (
    REGISTRY,
    Collector,
    CollectorContext,
    CollectorUnavailable,
    Registration,
    run_collectors,
)
from resource_agent.workloads.attribution import attribute

# When the simulation collector is on it fills the whole sample, so the real
# collectors default to off (an explicit --collector.<name> still turns one on).
SIMULATION_COLLECTOR = "scenario"
log = logging.getLogger(__name__)
_NOT_COLLECTOR_MODULES = {"base"}
_import_failures: dict[str, str] | None = None


def load_collectors() -> dict[str, str]:
    """Import every collector module once; returns {module name: import error} for those that failed."""
    global _import_failures
    if _import_failures is None:
        failures = {}
        for module in pkgutil.iter_modules(collectors_package.__path__):
            if module.name in _NOT_COLLECTOR_MODULES:
                continue
            try:
                importlib.import_module(f"{collectors_package.__name__}.{module.name}")
            except Exception as exc:  # a broken collector module must not take the agent down
                failures[module.name] = f"import failed: {type(exc).__name__}: {exc}"
        _import_failures = failures
    return dict(_import_failures)


def registrations() -> list[Registration]:
    """Every registered collector, sorted by name (after loading the collector modules)."""
    load_collectors()
    return sorted(REGISTRY.values(), key=lambda registration: registration.name)


def resolve_enabled(enabled: Mapping[str, bool] | None = None) -> dict[str, bool]:
    """Which collectors run: explicit choices first, else each collector's default."""
    explicit = dict(enabled or {})
    names = {registration.name: registration.enabled_by_default for registration in registrations()}
    simulated = explicit.get(SIMULATION_COLLECTOR, names.get(SIMULATION_COLLECTOR, False))
    return {
        name: explicit.get(name, default if not simulated or name == SIMULATION_COLLECTOR else False)
        for name, default in names.items()
    }


class Sampler:
    """The enabled collectors of this node, run together into one `Sample`."""

    def __init__(self, context: CollectorContext, enabled: Mapping[str, bool] | None = None) -> None:
        self.context = context
        self.enabled = resolve_enabled(enabled)
        self.collectors: list[Collector] = []
        self._broken: list[CollectorStatus] = [
            CollectorStatus(name=module, state=CollectorState.FAILED, reason=reason)
            for module, reason in sorted(load_collectors().items())
            if (enabled or {}).get(module, True)
        ]
        import_failed = {status.name for status in self._broken}
        for name, wanted in (enabled or {}).items():
            if wanted and name not in self.enabled and name not in import_failed:
                self._broken.append(CollectorStatus(name=name, state=CollectorState.FAILED, reason="no such collector"))
        for registration in registrations():
            if self.enabled[registration.name]:
                self._build(registration)

    def _build(self, registration: Registration) -> None:
        try:
            self.collectors.append(registration.factory(self.context))
        except CollectorUnavailable as exc:
            self._broken.append(CollectorStatus(name=registration.name, state=CollectorState.UNAVAILABLE, reason=str(exc)))
        except Exception as exc:  # a collector that cannot start is reported, the others still run
            reason = f"could not start: {type(exc).__name__}: {exc}"
            self._broken.append(CollectorStatus(name=registration.name, state=CollectorState.FAILED, reason=reason))

    def sample(self, timestamp: float | None = None) -> Sample:
        """Run every collector once; collectors that could not load or start are listed too."""
        sample = run_collectors(self.collectors, timestamp)
        attribute(sample)  # GPU -> pod, once every collector ran (kubelet pod-resources, else process cgroups)
        sample.collectors.extend(status.model_copy() for status in self._broken)
        return sample

    def close(self) -> None:
        for collector in self.collectors:
            try:
                collector.close()
            except Exception:  # closing is best effort; one failure must not leak the others
                log.warning("closing collector %s failed", collector.name, exc_info=True)
        self.collectors = []

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
