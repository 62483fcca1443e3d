"""The `gpu` collector: NVIDIA GPUs through NVML (`node_agent.nvml_collector`).

pynvml is a large module (about 2.4 MiB resident), so it is imported only once NVML's library
loads: the gate probes `libnvidia-ml.so.1` as pynvml itself loads it, and on a node without
NVIDIA's driver reports "NVML not available" and probes again at most once a minute (a driver
the GPU operator installs later is found). Where pynvml is already imported (a fake NVML in tests)
it is used as it is.
"""

from __future__ import annotations

import ctypes
import sys
import time

from resource_agent.api.samples import Sample
from resource_agent.node_agent.collectors.base import Collector, CollectorContext, CollectorUnavailable, register_collector

NVML_LIBRARY = "libnvidia-ml.so.1"  # what pynvml's _LoadNvmlLibrary opens on Linux
PROBE_RETRY_SECONDS = 60.0


class NvmlGate(Collector):
    """The NVML collector, created when NVML's library loads."""

    name = "gpu"

    def __init__(self, context: CollectorContext) -> None:
        self.context = context
        self._collector: Collector | None = None
        self._next_probe = 0.0
        self._probe_error = ""

    def update(self, sample: Sample) -> None:
        if self._collector is None:
            self._collector = self._load()
        self._collector.update(sample)

    def _load(self) -> Collector:
        if "pynvml" not in sys.modules:
            if time.monotonic() < self._next_probe:
                raise CollectorUnavailable(f"NVML not available: {self._probe_error}")
            try:
                ctypes.CDLL(NVML_LIBRARY)
            except OSError as exc:
                self._probe_error = f"NVML Shared Library Not Found ({exc})"
                self._next_probe = time.monotonic() + PROBE_RETRY_SECONDS
                raise CollectorUnavailable(f"NVML not available: {self._probe_error}") from exc
        from resource_agent.node_agent.nvml_collector import GpuCollector  # pynvml from here on

        return GpuCollector(self.context)

    def close(self) -> None:
        if self._collector is not None:
            self._collector.close()

    def status_reason(self) -> str | None:
        return self._collector.status_reason() if self._collector is not None else None


@register_collector("gpu")
def _gpu(context: CollectorContext) -> Collector:
    return NvmlGate(context)
